import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, generateKeys } from '../../format/index.js';
import { DecodePool, type FileTable } from '../../agent/decode-pool.js';
import { restoreTime, timeArg } from '../../agent/file-times.js';

/** The microsecond a restore must give the file: the recorded nanoseconds, rounded down. */
function wantedNs(mtimeNs: string): bigint {
  const ns = BigInt(mtimeNs);
  const us = ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n);
  return us * 1000n;
}

const CASES = [
  '1795753244011000000', // a whole millisecond: the nearest double fell 1 µs short (backup-types, fresh-clone npm test)
  '1795753244000000000', // a whole second
  '1795753244999999999', // the last nanosecond of a second
  '1700000000123456789',
  '4102444800000001000', // 2100-01-01, one microsecond in
  '0',
  '-1500000000', // before 1970: Node sets "now" for a negative number
  '-1',
  '-86400000000001',
];

describe('restored modification times keep their microsecond', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-file-times-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('sets each recorded time to its exact microsecond, before 1970 too', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    for (const ns of CASES) {
      const t = timeArg(restoreTime(ns));
      utimesSync(file, t, t);
      assert.equal(lstatSync(file, { bigint: true }).mtimeNs, wantedNs(ns), `mtime ${ns}`);
    }
  });

  it('keeps 3,000 whole milliseconds 8 hours apart, 1,000 days in all (the times tools that keep milliseconds set)', () => {
    const file = join(dir, 'sweep');
    writeFileSync(file, 'x');
    const wrong: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const ns = (1_795_753_244_000n + BigInt(i) * 28_800_001n) * 1_000_000n;
      const t = timeArg(restoreTime(ns.toString()));
      utimesSync(file, t, t);
      const got = lstatSync(file, { bigint: true }).mtimeNs;
      if (got !== ns) wrong.push(`${ns} -> ${got}`);
    }
    assert.deepEqual(wrong.slice(0, 5), []);
  });

  it('the decode workers give files written whole, files written in parts and folders their exact times', async () => {
    const codec = new BlobCodec(generateKeys());
    const pool = new DecodePool(codec, 2, { cells: 2, cellSize: 64 << 10 });
    try {
      const times = ['1795753244011000000', '-1500000000', '1795753244999999999'];
      const table: FileTable = {
        paths: [join(dir, 'whole'), join(dir, 'parts'), join(dir, 'empty')],
        tmpPrefix: '.kura-restore-times-',
        modes: Uint16Array.from([0o644, 0o644, 0o644]),
        mtimes: Float64Array.from(times, restoreTime),
        pieces: Uint32Array.from([1, 2, 0]),
      };
      await pool.broadcast({ kind: 'table', table });
      const plain = Buffer.from('some text '.repeat(20));
      const stored = codec.encode(plain);
      for (const writes of [
        [0, 0],
        [1, 0],
        [1, plain.length],
      ]) {
        const buf = await pool.acquire(stored.length);
        buf.bytes.set(stored);
        const job = {
          ids: codec.id(plain),
          blobs: Float64Array.from([0, stored.length, plain.length, 1]),
          writes: Float64Array.from(writes),
        };
        assert.deepEqual(await pool.decode(buf, job), []);
      }
      assert.deepEqual(await pool.run({ kind: 'finish', files: [1, 2] }), []);
      const folder = join(dir, 'folder');
      await mkdir(folder);
      const folderNs = '-86400000000001';
      const meta = { path: folder, mode: 0o755, mtime: restoreTime(folderNs) };
      assert.deepEqual(await pool.run({ kind: 'setup', mkdirs: [], symlinks: [], replace: false, dirMetas: [meta] }), []);
      table.paths.forEach((path, i) => assert.equal(lstatSync(path, { bigint: true }).mtimeNs, wantedNs(times[i]!), path));
      assert.equal(lstatSync(folder, { bigint: true }).mtimeNs, wantedNs(folderNs));
    } finally {
      await pool.close();
    }
  });
});
