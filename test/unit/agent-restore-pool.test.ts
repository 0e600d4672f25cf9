import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, generateKeys } from '../../format/index.js';
import { DecodePool, type DecodeJob, type FileTable } from '../../agent/decode-pool.js';

const keys = generateKeys();
const codec = new BlobCodec(keys);
const MTIME = 1_700_000_000.123456;

/** The stored bytes of plains back to back, as one ranged GET returns them, and the job's blob table. */
function fetched(plains: Buffer[], writes: number[][]): { bytes: Buffer; job: Pick<DecodeJob, 'ids' | 'blobs' | 'writes'> } {
  const stored = plains.map((p) => codec.encode(p));
  let offset = 0;
  const blobs = plains.flatMap((p, i) => {
    const row = [offset, stored[i]!.length, p.length, writes[i]!.length / 2];
    offset += stored[i]!.length;
    return row;
  });
  const bytes = Buffer.concat(stored);
  return {
    bytes,
    job: { ids: plains.map((p) => codec.id(p)).join(''), blobs: Float64Array.from(blobs), writes: Float64Array.from(writes.flat()) },
  };
}

describe('the restore decode pool writes verified blobs straight into files', () => {
  let dir: string;
  let pool: DecodePool;
  let table: FileTable;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-restore-pool-'));
    pool = new DecodePool(keys, 2, 1 << 20);
    const names = ['whole.txt', 'parts.bin', 'empty', 'damaged.bin'];
    table = {
      paths: names.map((n) => join(dir, n)),
      tmpPrefix: '.kura-restore-test-',
      modes: Uint16Array.from([0o640, 0o600, 0o444, 0o644]),
      mtimes: Float64Array.from(names, () => MTIME),
      pieces: Uint32Array.from([1, 2, 0, 1]),
    };
    await pool.broadcast({ kind: 'table', table });
  });

  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a one-piece file whole with its mode and mtime, and a blob used twice into both places', async () => {
    const a = Buffer.from('hello '.repeat(100));
    const b = Buffer.alloc(3000, 7);
    const { bytes, job } = fetched(
      [a, b],
      [
        [0, 0, 1, 0],
        [1, a.length],
      ],
    );
    await pool.reserve(bytes.length);
    assert.deepEqual(await pool.decode(bytes, job), []);
    assert.deepEqual(await readFile(join(dir, 'whole.txt')), a);
    const st = await stat(join(dir, 'whole.txt'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(Math.floor(st.mtimeMs), Math.floor(MTIME * 1000));
    assert.deepEqual(await pool.run({ kind: 'finish', files: [1, 2] }), []);
    assert.deepEqual(await readFile(join(dir, 'parts.bin')), Buffer.concat([a, b]));
    assert.equal((await stat(join(dir, 'parts.bin'))).mode & 0o7777, 0o600);
    assert.equal((await stat(join(dir, 'empty'))).size, 0);
    assert.equal((await stat(join(dir, 'empty'))).mode & 0o7777, 0o444);
  });

  it('reports a damaged blob by its index, still writes the good one beside it, and leaves no file or temporary file for it', async () => {
    const good = Buffer.from('fine');
    const { bytes, job } = fetched(
      [good, Buffer.from('will be altered')],
      [
        [0, 0],
        [3, 0],
      ],
    );
    bytes[bytes.length - 1]! ^= 0xff;
    await pool.reserve(bytes.length);
    const failures = await pool.decode(bytes, job);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.index, 1);
    assert.equal(failures[0]!.write, -1);
    assert.deepEqual(await readFile(join(dir, 'whole.txt')), good, 'the good blob of the same job is written');
    assert.equal(await stat(join(dir, 'damaged.bin')).catch(() => null), null);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.kura-restore-')),
      [],
    );
  });

  it('names a file it cannot finish instead of failing the whole job', async () => {
    const failures = await pool.run({ kind: 'finish', files: [3] });
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.index, 0);
    assert.match(failures[0]!.message, /ENOENT/);
  });

  it('refuses a job once its worker has stopped instead of waiting for ever', async () => {
    const stopped = new DecodePool(null, 1);
    await stopped.close();
    await assert.rejects(stopped.run({ kind: 'finish', files: [] }), /decode worker stopped/);
  });
});
