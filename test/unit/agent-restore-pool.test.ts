import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, generateKeys } from '../../format/index.js';
import { DecodePool, type DecodeJob, type FileTable, type JobFailure } from '../../agent/decode-pool.js';

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

/** What restore does with one ranged GET: bytes into a buffer of the pool, then a decode job. */
async function decodeFetched(pool: DecodePool, bytes: Buffer, job: Pick<DecodeJob, 'ids' | 'blobs' | 'writes'>): Promise<JobFailure[]> {
  const buf = await pool.acquire(bytes.length);
  buf.bytes.set(bytes);
  return pool.decode(buf, job);
}

describe('the restore decode pool writes verified blobs straight into files', () => {
  let dir: string;
  let pool: DecodePool;
  let table: FileTable;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-restore-pool-'));
    pool = new DecodePool(codec, 2, { cells: 2, cellSize: 64 << 10 });
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
    assert.deepEqual(await decodeFetched(pool, bytes, job), []);
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

  it('decodes a run larger than a cell from memory of its own, and the cells stay usable', async () => {
    const big = randomBytes(100 << 10);
    const { bytes, job } = fetched([big], [[0, 0]]);
    assert.ok(bytes.length > 64 << 10);
    assert.deepEqual(await decodeFetched(pool, bytes, job), []);
    assert.deepEqual(await readFile(join(dir, 'whole.txt')), big);
    const small = fetched([Buffer.from('small')], [[0, 0]]);
    assert.deepEqual(await decodeFetched(pool, small.bytes, small.job), []);
    assert.deepEqual(await readFile(join(dir, 'whole.txt')), Buffer.from('small'));
  });

  it('hands out at most as many buffers as it has cells until one is given back', async () => {
    const held = [await pool.acquire(10), await pool.acquire(10)];
    assert.notEqual(held[0]!.cell, held[1]!.cell);
    let third: Awaited<ReturnType<DecodePool['acquire']>> | null = null;
    const waiting = pool.acquire(10).then((b) => (third = b));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(third, null, 'no cell is free');
    pool.release(held[0]!);
    await waiting;
    assert.equal(third!.cell, held[0]!.cell);
    pool.release(held[1]!);
    pool.release(third!);
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
    const failures = await decodeFetched(pool, bytes, job);
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
    const stopped = new DecodePool(new BlobCodec(null), 1);
    await stopped.close();
    await assert.rejects(stopped.run({ kind: 'finish', files: [] }), /decode worker stopped/);
  });
});
