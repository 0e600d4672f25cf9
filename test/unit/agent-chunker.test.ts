import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkBuffer, chunkFile, chunkStream, DEFAULT_CHUNKER, type ChunkerParams, type GearKernel } from '../../agent/chunker.js';

const MIB = 1024 * 1024;
const SMALL: ChunkerParams = { min: 2048, avg: 8192, max: 32768 };
/** The chunker of repositories made before the config named a normalization level (level 2). */
const LEGACY: ChunkerParams = { min: 256 * 1024, avg: MIB, max: 4 * MIB };
/** The level 0 chunker of repositories made before new ones got 256/512 KiB (their config keeps it). */
const PREVIOUS: ChunkerParams = { min: 384 * 1024, avg: 896 * 1024, max: 4 * MIB, normalization: 0 };

/** Reproducible pseudo-random bytes, so a failure can be replayed. */
const seededBytes = (seed: string, length: number): Buffer => createHash('shake256', { outputLength: length }).update(seed).digest();
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const lengths = (chunks: Buffer[]): number[] => chunks.map((c) => c.length);

/** A small deterministic PRNG (xorshift32) for piece sizes. */
function pieceSizes(seed: number, lo: number, hi: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return lo + ((x >>> 0) % (hi - lo + 1));
  };
}

async function* inPieces(buf: Buffer, nextSize: () => number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length;) {
    const end = Math.min(buf.length, at + nextSize());
    yield Buffer.from(buf.subarray(at, end)); // a fresh buffer per piece, like a stream
    at = end;
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

function assertSizes(chunks: Buffer[], params: ChunkerParams): void {
  chunks.forEach((c, i) => {
    assert.ok(c.length <= params.max, `chunk ${i} is ${c.length} bytes, over max`);
    if (i < chunks.length - 1) assert.ok(c.length >= params.min, `chunk ${i} is ${c.length} bytes, under min`);
  });
}

describe('FastCDC chunker', () => {
  const data32 = seededBytes('kura chunker 32 MiB', 32 * MIB);

  it('cuts 32 MiB into chunks that concatenate to the input, within [min, max] and averaging about 0.5 MiB', () => {
    const chunks = chunkBuffer(data32);
    assert.ok(Buffer.concat(chunks).equals(data32));
    assertSizes(chunks, DEFAULT_CHUNKER);
    const mean = data32.length / chunks.length;
    assert.ok(mean > 0.4 * MIB && mean < 0.7 * MIB, `mean chunk size ${mean}`);
  });

  it('cuts the same bytes at the same places every time (golden boundaries pin the format)', () => {
    const golden = chunkBuffer(seededBytes('kura chunker golden', 8 * MIB));
    assert.deepEqual(
      lengths(golden),
      [
        350519, 584131, 326092, 402658, 285406, 339328, 540905, 319701, 387990, 363979, 410312, 402419, 442093, 388010, 544245, 302647,
        574924, 551967, 441240, 430042,
      ],
    );
    const previous = chunkBuffer(seededBytes('kura chunker golden', 8 * MIB), PREVIOUS);
    assert.deepEqual(
      lengths(previous),
      [419611, 515039, 491557, 583510, 1139023, 751969, 410312, 402419, 511500, 900722, 470820, 920844, 441240, 430042],
    );
    // Repositories made before the config named a normalization level chunk at level 2.
    const legacy = chunkBuffer(seededBytes('kura chunker golden', 8 * MIB), LEGACY);
    assert.deepEqual(lengths(legacy), [934650, 1075067, 1139023, 861497, 1145296, 388010, 582119, 1391664, 441240, 430042]);
    const small = lengths(chunkBuffer(seededBytes('kura chunker golden small', 256 * 1024), SMALL));
    assert.equal(small.length, 30);
    assert.deepEqual(small.slice(0, 8), [9067, 6279, 14804, 8611, 8662, 6848, 10445, 12501]);
    assert.equal(sha256(Buffer.from(small.join(','))), '61d3f3028d283def42db2a1c6cc21ba832b293ae3cd19acfeea422cf73e48a1e');
    assert.deepEqual(lengths(chunkBuffer(data32)), lengths(chunkBuffer(Buffer.from(data32))));
  });

  it('changes at most 3 chunks when a few bytes are inserted in the middle or deleted', () => {
    const before = new Set(chunkBuffer(data32).map(sha256));
    const mid = 16 * MIB + 12345;
    const inserted = Buffer.concat([data32.subarray(0, mid), Buffer.from('hello!!'), data32.subarray(mid)]);
    const deleted = Buffer.concat([data32.subarray(0, 5 * MIB), data32.subarray(5 * MIB + 100)]);
    for (const changed of [inserted, deleted]) {
      const after = chunkBuffer(changed).map(sha256);
      const fresh = after.filter((id) => !before.has(id));
      assert.ok(fresh.length >= 1 && fresh.length <= 3, `${fresh.length} new chunks of ${after.length}`);
      assert.ok(after.length - fresh.length >= before.size - 3);
    }
  });

  it('gives a stream of 1..100-byte pieces the same boundaries as one big buffer', async () => {
    // 6 MiB: the test runner's promise hooks make each of the ~120 000 pieces cost microseconds.
    const data = data32.subarray(0, 6 * MIB);
    const whole = lengths(chunkBuffer(data));
    assert.ok(whole.length >= 4);
    const streamed = await collect(chunkStream(inPieces(data, pieceSizes(7, 1, 100))));
    assert.deepEqual(lengths(streamed), whole);
    assert.ok(Buffer.concat(streamed).equals(data));
    const small = seededBytes('small params', MIB);
    const smallStreamed = await collect(chunkStream(inPieces(small, pieceSizes(9, 1, 100)), SMALL));
    assert.deepEqual(lengths(smallStreamed), lengths(chunkBuffer(small, SMALL)));
    assertSizes(smallStreamed, SMALL);
  });

  it('gives pieces of awkward sizes around max the same boundaries too', async () => {
    for (const [lo, hi] of [
      [4 * MIB - 1, 4 * MIB + 1],
      [100_000, 3 * MIB],
      [60 * 1024, 70 * 1024],
    ] as const) {
      const streamed = await collect(chunkStream(inPieces(data32, pieceSizes(lo, lo, hi))));
      assert.deepEqual(lengths(streamed), lengths(chunkBuffer(data32)), `pieces of ${lo}..${hi}`);
    }
  });

  it('finds its old cuts again soon after a 1 MiB insertion (level 0), sooner than level 2 does', () => {
    const newBytes = (params: ChunkerParams): number => {
      const before = new Set(chunkBuffer(data32, params).map(sha256));
      let total = 0;
      for (let k = 1; k <= 12; k++) {
        const at = Math.floor((data32.length * k) / 13) + 4321 * k;
        const changed = Buffer.concat([data32.subarray(0, at), seededBytes(`insert ${k}`, MIB), data32.subarray(at)]);
        for (const c of chunkBuffer(changed, params)) if (!before.has(sha256(c))) total += c.length;
      }
      return total / 12;
    };
    const level0 = newBytes(DEFAULT_CHUNKER);
    // The insertion itself, the chunk it lands in (about 0.6 MiB when weighted by size), a little more.
    assert.ok(level0 < 2 * MIB, `level 0: ${(level0 / MIB).toFixed(2)} MiB of new chunks per 1 MiB inserted`);
    assert.ok(level0 < newBytes(LEGACY), 'level 0 stores less than level 2 after an insertion');
  });

  it('cuts identically with the wasm kernel and the TypeScript reference kernel', () => {
    const kernels: GearKernel[] = ['wasm', 'js'];
    const [a, b] = kernels.map((kernel) => lengths(chunkBuffer(data32, DEFAULT_CHUNKER, { kernel })));
    assert.deepEqual(a, b);
    const small = seededBytes('kernels, small params', 4 * MIB);
    const [c, d] = kernels.map((kernel) => lengths(chunkBuffer(small, SMALL, { kernel })));
    assert.ok(c!.length > 200);
    assert.deepEqual(c, d);
  });

  it('returns no chunk for empty input and one chunk for input up to min', async () => {
    assert.deepEqual(chunkBuffer(Buffer.alloc(0)), []);
    assert.deepEqual(await collect(chunkStream([])), []);
    for (const size of [1, 1000, DEFAULT_CHUNKER.min]) {
      const buf = data32.subarray(0, size);
      const chunks = chunkBuffer(buf);
      assert.equal(chunks.length, 1);
      assert.ok(chunks[0]!.equals(buf));
    }
  });

  it('cuts data without content boundaries (zeros) at max', () => {
    assert.deepEqual(lengths(chunkBuffer(Buffer.alloc(10 * MIB))), [4 * MIB, 4 * MIB, 2 * MIB]);
  });

  it('chunks a file like the same bytes in memory, and an empty file into nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kura-chunker-'));
    try {
      const data = data32.subarray(0, 9 * MIB + 17);
      await writeFile(join(dir, 'f'), data);
      await writeFile(join(dir, 'empty'), '');
      const chunks = await collect(chunkFile(join(dir, 'f')));
      assert.deepEqual(lengths(chunks), lengths(chunkBuffer(data)));
      assert.ok(Buffer.concat(chunks).equals(data));
      assert.deepEqual(await collect(chunkFile(join(dir, 'empty'))), []);
      await assert.rejects(collect(chunkFile(join(dir, 'missing'))), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses parameters that are out of range or out of order', () => {
    for (const bad of [
      { min: 10, avg: 8192, max: 32768 },
      { min: 4096, avg: 2048, max: 32768 },
      { min: 2048, avg: 8192, max: 4096 },
      { min: 2048, avg: 8192.5, max: 32768 },
      { min: 2 * 1024 * MIB, avg: 2 * 1024 * MIB, max: 2 * 1024 * MIB },
      { min: 2048, avg: 8192, max: 32768, normalization: 4 },
      { min: 2048, avg: 8192, max: 32768, normalization: 1.5 },
      { min: 8192, avg: 8200, max: 32768, normalization: 0 },
    ]) {
      assert.throws(() => chunkBuffer(Buffer.alloc(1), bad), RangeError, JSON.stringify(bad));
    }
  });
});
