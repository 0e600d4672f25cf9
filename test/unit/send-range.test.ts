import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sendRange } from '../../gateway/storage/send-range.js';

/** A slow sink: it takes each piece after a tick, so the sender meets back-pressure and pooled buffers come back late. */
function sink(highWaterMark = 64 << 10): { out: Writable; bytes: () => Buffer } {
  const got: Buffer[] = [];
  const out = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      got.push(Buffer.from(chunk));
      setImmediate(done);
    },
  });
  return { out, bytes: () => Buffer.concat(got) };
}

describe('gateway storage: sendRange streams a byte range through pooled buffers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-send-range-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('sends whole files and inner ranges byte for byte, several at once', async () => {
    const data = randomBytes((5 << 20) + 12345);
    const path = join(dir, 'pack');
    await writeFile(path, data);
    const ranges: [number, number][] = [
      [0, data.length - 1],
      [1, 1],
      [(1 << 20) - 3, (3 << 20) + 7],
      [data.length - 10, data.length - 1],
    ];
    const sinks = ranges.map(() => sink());
    await Promise.all(ranges.map(([s, e], i) => sendRange(path, s, e, sinks[i]!.out)));
    ranges.forEach(([s, e], i) => assert.deepEqual(sinks[i]!.bytes(), data.subarray(s, e + 1), `range ${s}-${e}`));
  });

  it('refuses a range past the end of the file, and a missing file', async () => {
    const path = join(dir, 'short');
    await writeFile(path, Buffer.alloc(1000, 1));
    await assert.rejects(sendRange(path, 0, 4999, sink().out), /ended at byte 1000/);
    await assert.rejects(sendRange(join(dir, 'none'), 0, 10, sink().out), /ENOENT/);
  });

  it('stops without waiting for ever when the client goes away mid-download', async () => {
    const path = join(dir, 'big');
    await writeFile(path, randomBytes(8 << 20));
    const { out } = sink(16 << 10);
    let written = 0;
    const origWrite = out.write.bind(out);
    out.write = ((chunk: Buffer, cb?: (err?: Error | null) => void) => {
      written += chunk.length;
      if (written > 2 << 20) setImmediate(() => out.destroy());
      return origWrite(chunk, cb);
    }) as typeof out.write;
    await sendRange(path, 0, (8 << 20) - 1, out);
    assert.ok(out.destroyed);
    assert.ok(written < 8 << 20, `it stopped sending (${written} bytes handed over)`);
  });
});
