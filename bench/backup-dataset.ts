/**
 * The data set of the backup benchmark (bench/backup.ts): made by the shared deterministic generator
 * (`gen-dataset.mjs`), kept pristine in a cache folder between runs, copied for each tool, mutated
 * identically, and compared with what a restore brought back.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Scale = 'default' | 'small' | 'tiny';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The shared generator beside the checkout, or the pinned copy in bench/ when a clone stands alone. */
export const DEFAULT_GENERATOR = [
  resolve(HERE, '../../../shared/bench/gen-dataset.mjs'),
  resolve(HERE, '../../bench/gen-dataset.mjs'),
].find((p) => existsSync(p))!;

export interface Dataset {
  dir: string;
  files: number;
  bytes: number;
}

/** Relative path → size, for every regular file under a folder. */
export type Manifest = Map<string, number>;

export interface Verification {
  files: number;
  bytes: number;
  sampled: number;
}

/** What `gen-dataset.mjs mutate` reports: the bytes that really changed (added, patched, inserted). */
export interface Mutation {
  files: number;
  bytes: number;
  changedBytes: number;
}

/** Runs a command to its end; resolves with its stdout, rejects with the tail of its stderr. */
export function runToEnd(cmd: string, args: string[], cwd?: string): Promise<string> {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  return new Promise((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolvePromise(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${err.slice(-4000)}`));
    });
  });
}

/** The last line of a command's output that parses as JSON (the generator prints one). */
function lastJson(text: string): Record<string, unknown> {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
  }
  throw new Error(`no JSON in output: ${text.slice(-500)}`);
}

/** Every regular file under `dir`, without following symlinks. */
export async function manifestOf(dir: string): Promise<Manifest> {
  const out: Manifest = new Map();
  const visit = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile()) out.set(relative(dir, path), (await lstat(path)).size);
    }
  };
  await visit(dir);
  return out;
}

export function totalBytes(m: Manifest): number {
  let sum = 0;
  for (const size of m.values()) sum += size;
  return sum;
}

/** Bytes of every regular file under `dir` (0 when it does not exist). */
export async function bytesUnder(dir: string): Promise<number> {
  const exists = await lstat(dir).catch(() => null);
  return exists ? totalBytes(await manifestOf(dir)) : 0;
}

// ---------------------------------------------------------------- the pristine cache

function cacheDir(scale: Scale): string {
  return join(tmpdir(), `kura-bench-dataset-${scale}`);
}

/**
 * The pristine data set of `scale`: the cached copy when its files and bytes match what the generator
 * reported when it made it (the summary is written only after the folder is complete), else a fresh one.
 */
export async function pristineDataset(generator: string, scale: Scale, progress: (line: string) => void): Promise<Dataset> {
  const dir = cacheDir(scale);
  const summaryFile = `${dir}.json`;
  const summary = await readFile(summaryFile, 'utf8').then(
    (t) => JSON.parse(t) as Dataset,
    () => null,
  );
  if (summary) {
    progress(`checking the cached data set ${dir}…`);
    const m = await manifestOf(dir).catch(() => null);
    if (m && m.size === summary.files && totalBytes(m) === summary.bytes) return { dir, files: m.size, bytes: totalBytes(m) };
    progress('the cached data set is incomplete or changed; making it again');
  }
  return createDataset(generator, scale, dir, progress);
}

async function createDataset(generator: string, scale: Scale, dir: string, progress: (line: string) => void): Promise<Dataset> {
  await rm(`${dir}.json`, { force: true });
  await rm(dir, { recursive: true, force: true });
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  progress(`creating the ${scale} data set in ${dir} (deterministic; kept for later runs)…`);
  try {
    const made = lastJson(await runToEnd(process.execPath, [generator, 'create', partial, '--scale', scale]));
    await rename(partial, dir);
    const dataset: Dataset = { dir, files: Number(made.files), bytes: Number(made.bytes) };
    await writeFile(`${dir}.json`, JSON.stringify({ ...made, files: dataset.files, bytes: dataset.bytes }) + '\n');
    return dataset;
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

/** `cp -a`: a working copy with the same modes and times, so both tools see the same files. */
export async function copyDataset(from: string, to: string): Promise<void> {
  await runToEnd('cp', ['-a', from, to]);
}

/** The generator's "day of changes"; the same seed and round give the same changes on every copy. */
export async function mutateDataset(generator: string, dir: string, round = 1): Promise<Mutation> {
  const out = lastJson(await runToEnd(process.execPath, [generator, 'mutate', dir, '--seed', '1', '--round', String(round)]));
  return { files: Number(out.files), bytes: Number(out.bytes), changedBytes: Number(out.changedBytes) };
}

// ---------------------------------------------------------------- verifying a restore

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * `sampleSize` files spread evenly over the sorted list, plus the first three large files (`media/`,
 * which include the two that the mutation changed by inserting bytes in the middle).
 */
function sampleOf(m: Manifest, sampleSize: number): string[] {
  const names = [...m.keys()].sort();
  const step = Math.max(1, Math.floor(names.length / sampleSize));
  const picked = new Set(names.filter((_, i) => i % step === 0).slice(0, sampleSize));
  for (const name of names.filter((n) => n.startsWith('media/')).slice(0, 3)) picked.add(name);
  return [...picked];
}

/**
 * Checks that `restored` holds the same files with the same sizes as `source` (every file), and the
 * same bytes for a sample of them (SHA-256). Throws naming the first difference.
 */
export async function verifyRestore(source: string, restored: string, sampleSize = 200): Promise<Verification> {
  const [want, got] = await Promise.all([manifestOf(source), manifestOf(restored)]);
  if (got.size !== want.size) throw new Error(`restore of ${source} has ${got.size} files, expected ${want.size}`);
  for (const [name, size] of want) {
    const restoredSize = got.get(name);
    if (restoredSize !== size) throw new Error(`restored ${name}: ${restoredSize ?? 'missing'} bytes, expected ${size}`);
  }
  const sample = sampleOf(want, sampleSize);
  for (const name of sample) {
    const [a, b] = await Promise.all([sha256Of(join(source, name)), sha256Of(join(restored, name))]);
    if (a !== b) throw new Error(`restored ${name} differs from the source (SHA-256)`);
  }
  return { files: got.size, bytes: totalBytes(got), sampled: sample.length };
}

/**
 * Where a restore put the backed-up folder `source` inside `target`: `target/<name>` (what both tools
 * do for one folder) or `target/<absolute path>` (restic for several).
 */
export async function restoredRoot(target: string, source: string): Promise<string> {
  const name = source.split('/').filter(Boolean).pop() ?? '';
  for (const candidate of [join(target, name), join(target, source)]) {
    if ((await lstat(candidate).catch(() => null))?.isDirectory()) return candidate;
  }
  throw new Error(`cannot find ${source} restored inside ${target}`);
}
