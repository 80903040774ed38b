// Positional reads and writes of whole buffers on a file descriptor, finishing short transfers: what segment
// files are read and written with. Callback fs rather than fs/promises: no FileHandle per segment, and one
// libuv request per transfer on the hot path.
import fs from 'node:fs';

/** Writes `buffers` back to back at `position` (one writev; the rest of a short write from one buffer). */
export function writeFully(fd: number, buffers: Buffer[], position: number): Promise<void> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  return new Promise((resolve, reject) => {
    fs.writev(fd, buffers, position, (error, written) => {
      if (error) return reject(error);
      if (written === total) return resolve();
      // A short write (rare on a regular file): write the rest from one buffer.
      const rest = Buffer.concat(buffers).subarray(written);
      writeRest(fd, rest, position + written).then(resolve, reject);
    });
  });
}

async function writeRest(fd: number, rest: Buffer, position: number): Promise<void> {
  while (rest.length > 0) {
    const written = await new Promise<number>((resolve, reject) =>
      fs.write(fd, rest, 0, rest.length, position, (error, n) => (error ? reject(error) : resolve(n))),
    );
    if (written === 0) throw new Error('segment write made no progress');
    rest = rest.subarray(written);
    position += written;
  }
}

/** Reads exactly `length` bytes at `position` into `into` (or a new buffer); fails if the file ends first. */
export function readFully(fd: number, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const out = into ?? Buffer.allocUnsafe(length);
  if (length === 0) return Promise.resolve(out);
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      fs.read(fd, out, done, length - done, position + done, (error, n) => {
        if (error) return reject(error);
        if (n === 0) return reject(new Error(`segment ends before ${position + length}`));
        if (done + n === length) return resolve(out);
        step(done + n);
      });
    };
    step(0);
  });
}
