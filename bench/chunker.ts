/**
 * Chunking benchmark: how fast agent/chunker.ts cuts random (incompressible) data in memory, with
 * the wasm kernel (the one backups use) and the TypeScript reference kernel, and through
 * chunkStream fed 8 MiB pieces (as chunkFile reads) and 64 KiB pieces (a default fs read stream).
 * Nothing touches the disk.
 *
 *   node dist/bench/chunker.js [--size-mib 256] [--runs 5] [--json]
 *
 * MB means 10^6 bytes. Each case runs --runs times in turn with the others, so a change in the
 * machine's load falls on all of them; the best and the median run are reported, by wall clock and
 * per CPU-second of this process (one core: chunking is single-threaded). It also checks that every
 * case cut at the same places.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { chunkBuffer, chunkStream, DEFAULT_CHUNKER, FILE_READ_SIZE } from '../agent/chunker.js';

const MIB = 1024 * 1024;
const MB = 1e6;

interface Case {
  name: string;
  /** Cuts the data and returns the chunk lengths. */
  run(data: Buffer): Promise<number[]>;
}

interface Result {
  name: string;
  bestMBps: number;
  medianMBps: number;
  bestMBperCpuSecond: number;
  chunks: number;
  meanChunkKiB: number;
  runsMBps: number[];
}

const CASES: Case[] = [
  { name: 'wasm kernel, chunkBuffer', run: async (data) => chunkBuffer(data, DEFAULT_CHUNKER, { kernel: 'wasm' }).map((c) => c.length) },
  { name: 'js kernel, chunkBuffer', run: async (data) => chunkBuffer(data, DEFAULT_CHUNKER, { kernel: 'js' }).map((c) => c.length) },
  { name: 'wasm kernel, chunkStream, 8 MiB pieces', run: async (data) => streamLengths(data, FILE_READ_SIZE) },
  { name: 'wasm kernel, chunkStream, 64 KiB pieces', run: async (data) => streamLengths(data, 64 * 1024) },
];

async function streamLengths(data: Buffer, pieceSize: number): Promise<number[]> {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let at = 0; at < data.length; at += pieceSize) yield data.subarray(at, at + pieceSize);
  }
  const out: number[] = [];
  for await (const chunk of chunkStream(pieces())) out.push(chunk.length);
  return out;
}

function parseOptions(): { sizeMib: number; runs: number; json: boolean } {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '256' },
      runs: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
    },
  });
  const sizeMib = Number(values['size-mib']);
  const runs = Number(values.runs);
  if (!Number.isInteger(sizeMib) || sizeMib < 1 || !Number.isInteger(runs) || runs < 1)
    throw new Error('--size-mib and --runs take positive integers');
  return { sizeMib, runs, json: values.json };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(data: Buffer, runs: number): Promise<Result[]> {
  const wall = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
  const cpu = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
  const cuts = new Map<string, number[]>();
  for (let r = 0; r < runs; r++) {
    for (const c of CASES) {
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const lengths = await c.run(data);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const used = process.cpuUsage(cpu0);
      wall.get(c.name)!.push(data.length / MB / seconds);
      cpu.get(c.name)!.push(data.length / MB / ((used.user + used.system) / 1e6));
      cuts.set(c.name, lengths);
    }
  }
  const reference = JSON.stringify(cuts.get(CASES[0]!.name));
  for (const [name, lengths] of cuts)
    if (JSON.stringify(lengths) !== reference) throw new Error(`${name} cut differently from ${CASES[0]!.name}`);
  return CASES.map((c) => {
    const mbps = wall.get(c.name)!;
    const chunks = cuts.get(c.name)!.length;
    return {
      name: c.name,
      bestMBps: Math.round(Math.max(...mbps)),
      medianMBps: Math.round(median(mbps)),
      bestMBperCpuSecond: Math.round(Math.max(...cpu.get(c.name)!)),
      chunks,
      meanChunkKiB: Math.round(data.length / chunks / 1024),
      runsMBps: mbps.map(Math.round),
    };
  });
}

function printTable(results: Result[], sizeMib: number, runs: number): void {
  const { min, avg, max } = DEFAULT_CHUNKER;
  console.log(`FastCDC on ${sizeMib} MiB of random data, min/avg/max ${min / 1024}/${avg / 1024}/${max / 1024} KiB, best of ${runs}`);
  console.log(['case'.padEnd(42), 'best MB/s', 'median MB/s', 'MB/cpu-s', 'chunks', 'mean KiB'].join('  '));
  for (const r of results) {
    const cells = [r.bestMBps, r.medianMBps, r.bestMBperCpuSecond, r.chunks, r.meanChunkKiB].map((v, i) =>
      String(v).padStart([9, 11, 8, 6, 8][i]!),
    );
    console.log([r.name.padEnd(42), ...cells].join('  '));
  }
}

async function main(): Promise<void> {
  const { sizeMib, runs, json } = parseOptions();
  const data = randomBytes(sizeMib * MIB);
  const results = await measure(data, runs);
  if (json) console.log(JSON.stringify({ sizeMib, runs, params: DEFAULT_CHUNKER, results }, null, 2));
  else printTable(results, sizeMib, runs);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
