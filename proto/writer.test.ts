import test from 'ava';
import { COPY_THRESHOLD, FrameWriter, HEADER_SIZE, Op } from './index.ts';

function writerInto(chunks: Uint8Array[]): FrameWriter {
  return new FrameWriter({ write: (chunk) => chunks.push(chunk) });
}

test("a released writer's slab goes to the next writer, and a frame after its release never lands in it", (t) => {
  const first: Uint8Array[] = [];
  const a = writerInto(first);
  a.frame(Op.GET, 0, 1, 0, 0, 'a-key', null);
  a.flush();
  const slab = first[0]!.buffer;
  a.release();

  const second: Uint8Array[] = [];
  const b = writerInto(second);
  b.frame(Op.GET, 0, 2, 0, 0, 'b-key', null);
  // A late answer to the closed connection, before b flushes.
  a.frame(Op.GET, 0, 3, 0, 0, 'late!', null);
  a.flush();
  b.flush();
  t.is(second[0]!.buffer, slab, 'the slab was reused');
  t.not(first[1]!.buffer, slab, 'the late frame went elsewhere');
  t.is(second[0]!.length, HEADER_SIZE + 5);
  t.is(Buffer.from(second[0]!).subarray(HEADER_SIZE).toString(), 'b-key');
  t.is(Buffer.from(first[1]!).subarray(HEADER_SIZE).toString(), 'late!');
});

test('release tells the owner of a value queued by reference that its memory is free', (t) => {
  const chunks: Uint8Array[] = [];
  const writer = writerInto(chunks);
  const errors: (Error | null | undefined)[] = [];
  writer.frame(Op.PUT, 0, 1, 0, 0, 'big', Buffer.alloc(COPY_THRESHOLD + 1), (error) => errors.push(error));
  writer.release();
  t.is(errors.length, 1);
  t.true(errors[0] instanceof Error);
  writer.flush();
  t.is(chunks.length, 0, 'nothing queued before the release is written after it');
});
