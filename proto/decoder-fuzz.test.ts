/**
 * Fuzzes FrameDecoder in-process against the reference model in test/helpers/fuzz.ts: streams of valid, mutated,
 * truncated and random frames and huge declared lengths, cut into random chunks. The decoder must report exactly
 * what the model says (every frame with its fields and body, every oversize header, the one malformed header that
 * kills it, nothing after), never throw out of push(), and never allocate a body larger than its limit.
 *
 * SATCHEL_FUZZ_FRAMES sets how many frames (default 1,000,000); SATCHEL_FUZZ_SEED replays a run (the seed is
 * printed).
 */
import test from 'ava';
import {
  encodeFrame,
  envCount,
  FrameGenerator,
  fuzzSeed,
  Growing,
  type ModelEvent,
  ModelEventKind,
  modelDecode,
  Rng,
  randomChunks,
} from '../test/helpers/fuzz.ts';
import { FrameDecoder, type FrameDecoderOptions, type FrameView } from './decoder.ts';
import { HEADER_SIZE, Op, type SatchelError } from './index.ts';

const FRAMES = envCount('SATCHEL_FUZZ_FRAMES', 1_000_000);
const LIMITS = [0, 16, 100, 1024, 4096, 4096, 65_536, 65_536, 1 << 20];
const MAX_FAILURES = 10;

/**
 * Checks one stream's decoder callbacks against the model, in order. One instance serves every stream (its
 * callbacks are made once: a closure per stream costs more than the decoding).
 */
class StreamCheck {
  stream: Buffer = Buffer.alloc(0);
  model!: ReturnType<typeof modelDecode>;
  maxBody = 0;
  next = 0;
  problems: string[] = [];
  largestAllocation = 0;
  decoder: FrameDecoder | null = null;
  readonly options: FrameDecoderOptions;
  readonly hookedOptions: FrameDecoderOptions;

  constructor(private readonly allocUnsafe: (size: number) => Buffer) {
    this.options = {
      maxBody: 0,
      onFrame: (f) => this.onFrame(f),
      onOversize: (f) => this.onOversize(f),
      onError: (error) => this.onError(error),
    };
    this.hookedOptions = { ...this.options, allocate: (size) => this.allocate(size) };
  }

  start(stream: Buffer, model: ReturnType<typeof modelDecode>, maxBody: number): void {
    this.stream = stream;
    this.model = model;
    this.maxBody = maxBody;
    this.next = 0;
    this.problems = [];
    this.largestAllocation = 0;
  }

  private expect(kind: ModelEventKind, what: string): ModelEvent | undefined {
    const e = this.model.events[this.next++];
    if (e === undefined) this.problems.push(`${what} #${this.next - 1}: the model expects nothing more`);
    else if (e.kind !== kind) this.problems.push(`${what} #${this.next - 1}: the model expects event kind ${e.kind}`);
    else return e;
    return undefined;
  }

  private sameHeader(f: FrameView, e: ModelEvent, what: string): void {
    if (
      f.code !== e.code ||
      f.flags !== e.flags ||
      f.id !== e.id ||
      f.epoch !== e.epoch ||
      f.arg !== e.arg ||
      f.keyLength !== e.keyLength ||
      f.bodyLength !== e.bodyLength
    ) {
      this.problems.push(
        `${what} #${this.next - 1}: header ${JSON.stringify([f.code, f.flags, f.id, f.epoch, f.arg, f.keyLength, f.bodyLength])}, model ${JSON.stringify([e.code, e.flags, e.id, e.epoch, e.arg, e.keyLength, e.bodyLength])}`,
      );
    }
  }

  private onFrame(f: FrameView): void {
    if (this.decoder?.dead === true) this.problems.push('onFrame after onError');
    const e = this.expect(ModelEventKind.Frame, 'frame');
    if (e === undefined) return;
    this.sameHeader(f, e, 'frame');
    if (f.bodyStart < 0 || f.bodyStart + f.bodyLength > f.buf.length)
      this.problems.push(`frame #${this.next - 1}: body outside its buffer`);
    else if (f.buf.compare(this.stream, e.bodyStart, e.bodyStart + e.bodyLength, f.bodyStart, f.bodyStart + f.bodyLength) !== 0)
      this.problems.push(`frame #${this.next - 1}: body differs`);
    if (f.owned && (f.bodyStart !== 0 || f.buf.length !== f.bodyLength))
      this.problems.push(`frame #${this.next - 1}: owned buffer is not the body alone`);
  }

  private onOversize(f: FrameView): void {
    if (this.decoder?.dead === true) this.problems.push('onOversize after onError');
    const e = this.expect(ModelEventKind.Oversize, 'oversize');
    if (e === undefined) return;
    this.sameHeader(f, e, 'oversize');
    if (f.buf.length !== 0) this.problems.push(`oversize #${this.next - 1}: buf is not empty`);
  }

  private onError(error: SatchelError): void {
    if (this.expect(ModelEventKind.Error, 'error') === undefined) return;
    if (error.code !== 'BAD_REQUEST' || !error.message.startsWith('malformed frame'))
      this.problems.push(`error #${this.next - 1}: ${error.code} ${error.message}`);
  }

  private allocate(size: number): Buffer {
    if (size > this.maxBody) this.problems.push(`allocate(${size}) over maxBody ${this.maxBody}`);
    // The body being assembled is the next frame's, or the one the stream ends inside.
    const e = this.model.events[this.next];
    const end = this.model.end;
    const expected = e === undefined ? (end.state === 'body' ? end.bodyLength : -1) : e.kind === ModelEventKind.Frame ? e.bodyLength : -1;
    if (size !== expected) this.problems.push(`allocate(${size}) but the body being assembled is ${expected}`);
    this.largestAllocation = Math.max(this.largestAllocation, size);
    return this.allocUnsafe(size);
  }
}

test('FrameDecoder against the reference model: fuzzed streams in random chunks', (t) => {
  const seed = fuzzSeed();
  t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${FRAMES} frames`);
  const rng = new Rng(seed);
  const failures: string[] = [];
  let sessions = 0;
  let frames = 0;
  let pieces = 0;
  let bytes = 0;
  const outcome = { decoded: 0, oversize: 0, malformed: 0, cutShort: 0 };
  let largestAllocation = 0;
  const generators = new Map<number, FrameGenerator>();
  const built = new Growing();
  const check = new StreamCheck(Buffer.allocUnsafe);

  // The decoder's default allocator is Buffer.allocUnsafe: watch what it is asked for while push() runs.
  const allocUnsafe = Buffer.allocUnsafe;
  let watching = false;
  let requested = 0;
  Buffer.allocUnsafe = ((size: number) => {
    if (watching && size > requested) requested = size;
    return allocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;

  // Stack traces are not needed here, and capturing one per malformed header was half the test's time.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const started = performance.now();
  try {
    while (frames < FRAMES && failures.length < MAX_FAILURES) {
      const session = sessions++;
      const maxBody = rng.pick(LIMITS);
      let generator = generators.get(maxBody);
      if (generator === undefined)
        generators.set(
          maxBody,
          (generator = new FrameGenerator(rng, {
            maxBody,
            maxValue: Math.min(maxBody + 64, 8192),
            tokens: ['v1.job-1.0123456789abcdef0123456789abcdef'],
          })),
        );
      // Pieces go on while the decoder would still be reading them: not past a malformed header (the decoder is
      // dead) nor into a skip of more than 64 KiB (it would skip them all).
      built.reset();
      let model = modelDecode(built.view(), maxBody);
      const want = rng.range(1, 64);
      for (let i = 0; i < want; i++) {
        built.append(generator.piece());
        pieces++;
        model = modelDecode(built.view(), maxBody, model.events, model);
        if (model.end.state === 'dead' || (model.end.state === 'skip' && model.end.remaining > 65_536)) break;
      }
      // Often finish what the stream left open (the rest of a body, or of a skipped oversize one) and add a PING,
      // so the decoder must come back in step after whatever came before.
      const end = model.end;
      if ((end.state === 'body' || end.state === 'skip') && end.remaining <= 65_536 && rng.chance(0.5)) {
        built.append(Buffer.alloc(end.remaining));
        built.append(encodeFrame({ code: Op.PING, id: 7 }));
      } else if (end.state === 'header' && end.partial === 0 && rng.chance(0.5)) {
        built.append(encodeFrame({ code: Op.PING, id: 7 }));
      }
      const stream = built.view();
      model = modelDecode(stream, maxBody, model.events, model);
      frames += model.events.length;
      bytes += stream.length;
      for (const e of model.events) {
        if (e.kind === ModelEventKind.Frame) outcome.decoded++;
        else if (e.kind === ModelEventKind.Oversize) outcome.oversize++;
        else outcome.malformed++;
      }
      if (model.end.state !== 'dead' && !(model.end.state === 'header' && model.end.partial === 0)) outcome.cutShort++;

      const hooked = rng.chance(0.5);
      check.start(stream, model, maxBody);
      const decoder = (check.decoder = new FrameDecoder(hooked ? check.hookedOptions : check.options));
      check.options.maxBody = check.hookedOptions.maxBody = maxBody;
      requested = 0;
      for (const chunk of randomChunks(rng, stream)) {
        watching = !hooked;
        try {
          decoder.push(chunk);
        } catch (error) {
          check.problems.push(`push threw ${String(error)}`);
          break;
        } finally {
          watching = false;
        }
      }
      const problems = check.problems;
      if (requested > maxBody) problems.push(`Buffer.allocUnsafe(${requested}) over maxBody ${maxBody}`);
      largestAllocation = Math.max(largestAllocation, requested, check.largestAllocation);
      if (check.next !== model.events.length) problems.push(`${check.next} callbacks, the model expects ${model.events.length}`);
      if (decoder.dead !== (model.end.state === 'dead')) problems.push(`decoder.dead is ${decoder.dead}, model ends ${model.end.state}`);
      if (problems.length > 0) {
        const head = stream.subarray(0, 256).toString('hex');
        failures.push(
          `session ${session} (maxBody ${maxBody}, ${stream.length} bytes, starts ${head}): ${problems.slice(0, 3).join('; ')}`,
        );
      }
    }
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
    Error.stackTraceLimit = stackTraceLimit;
  }
  const seconds = (performance.now() - started) / 1000;
  const kinds = new Map<string, number>();
  for (const g of generators.values()) for (const [k, n] of Object.entries(g.counts)) kinds.set(k, (kinds.get(k) ?? 0) + n);
  t.log(
    `${frames.toLocaleString('en')} frames through the decoder (decoded ${outcome.decoded}, oversize ${outcome.oversize}, malformed ${outcome.malformed}) ` +
      `in ${sessions.toLocaleString('en')} streams, ${(bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s; ` +
      `${pieces.toLocaleString('en')} pieces generated (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
      `streams left mid-frame ${outcome.cutShort}; largest body allocated ${largestAllocation} bytes`,
  );
  t.deepEqual(failures, [], `seed ${seed}`);
  t.true(frames >= FRAMES || failures.length > 0);
});

test('huge declared lengths: nothing the size of the declaration is allocated, the body is skipped as it arrives', (t) => {
  for (const bodyLength of [0xffffffff, 0x80000000, 2 ** 30 + 1]) {
    let allocated = 0;
    let oversize = 0;
    const frames: number[] = [];
    const decoder = new FrameDecoder({
      maxBody: 2 ** 30,
      onFrame: (f) => frames.push(f.id),
      onOversize: () => oversize++,
      onError: (error) => t.fail(error.message),
      allocate: (size) => {
        allocated += size;
        return Buffer.allocUnsafe(size);
      },
    });
    const arrayBuffers = process.memoryUsage().arrayBuffers;
    decoder.push(encodeFrame({ code: Op.PUT, id: 1, bodyLength, keyLength: 0 }));
    // A few MiB of the body, then the stream is abandoned: nothing was buffered.
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 4; i++) decoder.push(chunk);
    t.is(oversize, 1);
    t.is(allocated, 0);
    t.deepEqual(frames, []);
    t.true(process.memoryUsage().arrayBuffers - arrayBuffers < 64 * 2 ** 20, 'no large buffer held');
  }
  // One just within the limit that is then sent whole is decoded; the header alone allocates only its body.
  const seen: number[] = [];
  const decoder = new FrameDecoder({
    maxBody: 100,
    onFrame: (f) => seen.push(f.bodyLength),
    onOversize: () => t.fail(),
    onError: () => t.fail(),
  });
  const frame = encodeFrame({ code: Op.PUT, id: 2, key: Buffer.from('k'), value: Buffer.alloc(99) });
  decoder.push(frame.subarray(0, HEADER_SIZE));
  decoder.push(frame.subarray(HEADER_SIZE));
  t.deepEqual(seen, [100]);
});
