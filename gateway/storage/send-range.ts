import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** Read size, and the size of the pooled buffers. */
const PIECE = 1 << 20;
/** Buffers kept for reuse across requests; more are made while many downloads run at once. */
const POOL_MAX = 16;
const pool: Buffer[] = [];

/**
 * Streams bytes start..end (inclusive) of the file at path into out, reading into pooled buffers
 * that go back to the pool once the socket has taken them (the write's callback).
 *
 * A read stream allocates a fresh 1 MiB buffer per read, and V8 answers that much external memory with
 * full garbage collections, whose cost grows with everything else the gateway holds: measured here
 * during a 1.7 GB restore after a backup, 2.1 s of collection and 7 s of gateway CPU against 3 s with
 * reused buffers. Resolves when the last byte is handed to out (out is not ended); rejects when the
 * file cannot be read or ends early, and stops quietly when out is destroyed (the client left).
 */
export async function sendRange(path: string, start: number, end: number, out: Writable): Promise<void> {
  const fh = await open(path, 'r');
  try {
    for (let at = start; at <= end && !out.destroyed;) {
      const buf = pool.pop() ?? Buffer.allocUnsafeSlow(PIECE);
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, 0, Math.min(PIECE, end + 1 - at), at));
      } catch (err) {
        giveBack(buf);
        throw err;
      }
      if (bytesRead === 0) {
        giveBack(buf);
        throw new Error(`the file ended at byte ${at}, before byte ${end}`);
      }
      at += bytesRead;
      const more = out.write(buf.subarray(0, bytesRead), () => giveBack(buf));
      if (!more) await drained(out);
    }
  } finally {
    await fh.close();
  }
}

function giveBack(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

/** Resolves on 'drain', or when out closes or fails (the caller then sees out.destroyed). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    out.on('drain', done).on('close', done).on('error', done);
  });
}
