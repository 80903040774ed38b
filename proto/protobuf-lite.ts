/**
 * Just enough protocol buffers for the control-plane messages a client sends and reads (control-schema.ts):
 * strings, bools, uint32s, doubles, nested and repeated messages and repeated strings, proto3 rules (a field at
 * its default is not sent unless `optional`; a missing one reads as its default, a missing message as null).
 * Unknown fields are skipped, so a newer server's replies still read. No dependency: functions load none.
 */
import { SatchelError } from './errors.ts';

export type ScalarType = 'string' | 'bool' | 'uint32' | 'double';

export interface FieldSchema {
  no: number;
  name: string;
  type: ScalarType | MessageSchema;
  repeated?: boolean;
  /** proto3 `optional`: sent when set, even at its default; absent (undefined) when not received. */
  optional?: boolean;
}

export type MessageSchema = readonly FieldSchema[];

const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

class Writer {
  private parts: Buffer[] = [];
  length = 0;

  varint(value: number): void {
    const bytes: number[] = [];
    let v = value >>> 0 === value ? value : Math.max(0, Math.floor(value));
    while (v > 0x7f) {
      bytes.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
    this.push(Buffer.from(bytes));
  }

  tag(no: number, wire: number): void {
    this.varint(no * 8 + wire);
  }

  push(bytes: Buffer): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function isDefault(type: FieldSchema['type'], value: unknown): boolean {
  if (typeof type !== 'string') return value === null || value === undefined;
  return value === '' || value === 0 || value === false;
}

export function encodeMessage(schema: MessageSchema, value: Record<string, unknown>): Buffer {
  const out = new Writer();
  for (const field of schema) {
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    for (const item of field.repeated ? (v as unknown[]) : [v]) {
      if (!field.repeated && !field.optional && isDefault(field.type, item)) continue;
      writeField(out, field, item);
    }
  }
  return out.finish();
}

function writeField(out: Writer, field: FieldSchema, value: unknown): void {
  switch (field.type) {
    case 'string': {
      const bytes = Buffer.from(String(value), 'utf8');
      out.tag(field.no, LENGTH);
      out.varint(bytes.length);
      out.push(bytes);
      return;
    }
    case 'bool':
      out.tag(field.no, VARINT);
      out.varint(value === true ? 1 : 0);
      return;
    case 'uint32':
      out.tag(field.no, VARINT);
      out.varint(Number(value) >>> 0);
      return;
    case 'double': {
      const bytes = Buffer.allocUnsafe(8);
      bytes.writeDoubleLE(Number(value));
      out.tag(field.no, FIXED64);
      out.push(bytes);
      return;
    }
    default: {
      const bytes = encodeMessage(field.type, value as Record<string, unknown>);
      out.tag(field.no, LENGTH);
      out.varint(bytes.length);
      out.push(bytes);
    }
  }
}

const bad = (why: string) => new SatchelError('UNAVAILABLE', `a control-plane reply does not decode: ${why}`);

export function decodeMessage(schema: MessageSchema, bytes: Buffer): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const field of schema) {
    if (field.repeated) value[field.name] = [];
    else if (field.optional) continue;
    else if (typeof field.type !== 'string') value[field.name] = null;
    else value[field.name] = field.type === 'string' ? '' : field.type === 'bool' ? false : 0;
  }
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= bytes.length) throw bad('truncated varint');
      const byte = bytes[at++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw bad('varint over 10 bytes');
  };
  while (at < bytes.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    const field = schema.find((f) => f.no === no);
    let raw: number | Buffer;
    if (wire === VARINT) raw = varint();
    else if (wire === FIXED64) {
      if (at + 8 > bytes.length) throw bad('truncated 64-bit field');
      raw = bytes.subarray(at, at + 8);
      at += 8;
    } else if (wire === LENGTH) {
      const length = varint();
      if (at + length > bytes.length) throw bad('truncated field');
      raw = bytes.subarray(at, at + length);
      at += length;
    } else if (wire === FIXED32) {
      if (at + 4 > bytes.length) throw bad('truncated 32-bit field');
      raw = bytes.subarray(at, at + 4);
      at += 4;
    } else throw bad(`wire type ${wire}`);
    if (field === undefined) continue; // a field a newer server added
    const read = readField(field, wire, raw);
    if (field.repeated) (value[field.name] as unknown[]).push(read);
    else value[field.name] = read;
  }
  return value;
}

function readField(field: FieldSchema, wire: number, raw: number | Buffer): unknown {
  const expect = (wanted: number) => {
    if (wire !== wanted) throw bad(`field ${field.name} arrived as wire type ${wire}`);
  };
  switch (field.type) {
    case 'string':
      expect(LENGTH);
      return (raw as Buffer).toString('utf8');
    case 'bool':
      expect(VARINT);
      return raw !== 0;
    case 'uint32':
      expect(VARINT);
      return (raw as number) % 2 ** 32;
    case 'double':
      expect(FIXED64);
      return (raw as Buffer).readDoubleLE(0);
    default:
      expect(LENGTH);
      return decodeMessage(field.type, raw as Buffer);
  }
}
