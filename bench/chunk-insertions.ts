/**
 * What an insertion costs the chunker: 1 MiB of random bytes is inserted at a number of places in
 * the large files of the shared data set (gen-dataset.mjs, the files its mutation inserts into), and
 * the bytes of the chunks that did not exist before are counted, for the chunker of new repositories,
 * for the level 0 one that new repositories got before (384/896 KiB) and for the one of repositories
 * made before the config named a normalization level. That is what
 * an incremental backup stores for such a change, before compression. restic is not in it: its
 * chunker is not callable from here, and its polynomial is drawn anew for each repository.
 *
 *   node dist/bench/chunk-insertions.js [--scale default] [--insertions 600] [--json]
 *
 * The places and the inserted bytes come from a fixed seed, so every run measures the same
 * insertions. Only the stretch from the last cut before the insertion to where the old cuts come back
 * is cut again (a chunk boundary depends only on the bytes since the previous one), at most 32 MiB.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chunkBuffer, DEFAULT_CHUNKER, type ChunkerParams } from '../agent/chunker.js';
import { DEFAULT_GENERATOR, pristineDataset, type Scale } from './backup-dataset.js';

const MIB = 1024 * 1024;
const WINDOW = 32 * MIB;
const CHUNKERS: { name: string; params: ChunkerParams }[] = [
  { name: 'new repositories (level 0)', params: DEFAULT_CHUNKER },
  { name: 'earlier level 0 repositories', params: { min: 384 * 1024, avg: 896 * 1024, max: 4 * MIB, normalization: 0 } },
  { name: 'older repositories (level 2)', params: { min: 256 * 1024, avg: MIB, max: 4 * MIB } },
];

interface Result {
  chunker: string;
  params: ChunkerParams;
  meanChunkMiB: number;
  /** New chunk bytes per insertion, in MiB (the 1 MiB inserted included). */
  meanNewMiB: number;
  medianNewMiB: number;
  p90NewMiB: number;
}

/** xorshift32: the same places every run. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const idOf = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');

function cutsOf(chunks: Buffer[]): number[] {
  let at = 0;
  return chunks.map((c) => (at += c.length));
}

/** New chunk bytes when `insert` goes in at `at`, given the file's chunks before (ids, cut offsets). */
function newBytes(file: Buffer, ids: Set<string>, cuts: number[], at: number, insert: Buffer, params: ChunkerParams): number {
  const from = cuts.filter((c) => c <= at).pop() ?? 0;
  const to = Math.min(file.length, at + WINDOW);
  const changed = Buffer.concat([file.subarray(from, at), insert, file.subarray(at, to)]);
  const resync = new Set(cuts.filter((c) => c > at).map((c) => c - from + insert.length));
  let total = 0;
  let end = 0;
  for (const chunk of chunkBuffer(changed, params)) {
    end += chunk.length;
    if (!ids.has(idOf(chunk))) total += chunk.length;
    if (end > at - from + insert.length && resync.has(end)) break;
  }
  return total;
}

async function measure(files: Buffer[], insertions: number): Promise<Result[]> {
  return CHUNKERS.map(({ name, params }) => {
    const before = files.map((f) => {
      const chunks = chunkBuffer(f, params);
      return { ids: new Set(chunks.map(idOf)), cuts: cutsOf(chunks), count: chunks.length };
    });
    const random = prng(0x6b757261);
    const costs: number[] = [];
    for (let i = 0; i < insertions; i++) {
      const k = i % files.length;
      const file = files[k]!;
      const at = Math.floor(random() * file.length);
      const insert = createHash('shake256', { outputLength: MIB }).update(`insertion ${i}`).digest();
      costs.push(newBytes(file, before[k]!.ids, before[k]!.cuts, at, insert, params) / MIB);
    }
    costs.sort((a, b) => a - b);
    const bytes = files.reduce((n, f) => n + f.length, 0);
    const chunks = before.reduce((n, b) => n + b.count, 0);
    return {
      chunker: name,
      params,
      meanChunkMiB: bytes / chunks / MIB,
      meanNewMiB: costs.reduce((n, c) => n + c, 0) / costs.length,
      medianNewMiB: costs[Math.floor(costs.length / 2)]!,
      p90NewMiB: costs[Math.floor(costs.length * 0.9)]!,
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: 'default' },
      insertions: { type: 'string', default: '600' },
      json: { type: 'boolean', default: false },
    },
  });
  const scale = values.scale as Scale;
  if (!['default', 'small', 'tiny'].includes(scale)) throw new Error('--scale takes default, small or tiny');
  const insertions = Number(values.insertions);
  if (!Number.isInteger(insertions) || insertions < 1) throw new Error('--insertions takes a positive integer');
  const dataset = await pristineDataset(DEFAULT_GENERATOR, scale, (line) => process.stderr.write(`[bench] ${line}\n`));
  const media = join(dataset.dir, 'media');
  const names = (await readdir(media)).sort();
  const files = await Promise.all(names.map((n) => readFile(join(media, n))));
  const results = await measure(files, insertions);
  if (values.json) return console.log(JSON.stringify({ scale, insertions, files: names.length, results }, null, 2));
  console.log(`${insertions} insertions of 1 MiB of random bytes into the ${names.length} large files of the ${scale} data set`);
  console.log('New chunk bytes per insertion (the inserted MiB included), MiB:');
  console.log(['chunker'.padEnd(30), 'min/avg/max KiB'.padEnd(16), 'mean chunk', '  mean', 'median', '   p90'].join('  '));
  for (const r of results) {
    const { min, avg, max } = r.params;
    console.log(
      [
        r.chunker.padEnd(30),
        `${min / 1024}/${avg / 1024}/${max / 1024}`.padEnd(16),
        r.meanChunkMiB.toFixed(2).padStart(10),
        r.meanNewMiB.toFixed(2).padStart(6),
        r.medianNewMiB.toFixed(2).padStart(6),
        r.p90NewMiB.toFixed(2).padStart(6),
      ].join('  '),
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
