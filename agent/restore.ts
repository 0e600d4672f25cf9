import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { TreeEntry } from '../format/index.js';
import { chunkFile } from './chunker.js';
import { restoreTime } from './file-times.js';
import { DecodePool, defaultWorkers, type DecodeJob, type FileTable, type JobFailure, type SetupJob } from './decode-pool.js';
import { readRangeInto, type Remote } from './remote.js';
import type { BlobLocation, Repository, SnapshotInfo } from './repository.js';
import { BlobReader, mergeRuns, packPath, TreeCache, TreeLoader } from './trees.js';

export interface RestoreOptions {
  target: string;
  /** Only these paths inside the snapshot (e.g. 'Documents/report.txt'); everything when empty. */
  paths: string[];
  /** Called once the work is known: files to write and their bytes. */
  onPlan?: (files: number, bytes: number) => void;
  onFile?: (done: RestoreCounts) => void;
  onBytes?: (bytes: number) => void;
  /**
   * The backup's local tree cache (trees.ts), read but never written here: on the PC that made the
   * snapshot, its trees come from disk instead of the gateway.
   */
  treeCache?: string;
}

export interface RestoreCounts {
  files: number;
  restored: number;
  skipped: number;
  bytes: number;
  failed: { path: string; reason: string }[];
  /** Files of the marked baseline (never uploaded): left to the baseline image, not restored. */
  baseline: number;
}

/**
 * Neighbouring blobs of a pack are fetched by one ranged GET (mergeRuns) of at most this many bytes
 * (a single larger blob gets a request of its own), into one cell of the pool's slab. Larger requests
 * cost the gateway less CPU (8 MiB against 4: about 1.5 s less over a 1.7 GB restore), and the slab
 * keeps memory fixed at cells × RUN_MAX; 16 MiB saved little more and starts decoding later.
 */
const RUN_MAX = 8 << 20;
/** Concurrent ranged GETs: the gateway remote keeps 4 sockets alive. */
const FETCHERS = 6;
/** Files without content, finished per worker job. */
const EMPTY_BATCH = 256;

/** One blob of a pack and every place its plaintext goes: (file index, position) pairs. */
interface BlobUse {
  loc: BlobLocation;
  writes: number[];
}

/** One ranged GET and its decode job, in typed arrays: the main thread keeps little for its GC to trace. */
interface Run {
  pack: string;
  start: number;
  size: number;
  job: Pick<DecodeJob, 'ids' | 'blobs' | 'writes'>;
}

/** What a snapshot holds below the selected paths, in walk order (folders before what they hold). */
interface Layout {
  dirs: { path: string; entry: TreeEntry }[];
  links: { path: string; target: string }[];
  files: { rel: string; entry: TreeEntry }[];
}

/** The planned transfer: only what it needs, so that trees and the index can be collected meanwhile. */
interface Work {
  table: FileTable;
  sizes: Float64Array;
  runs: Run[];
  /** Files without content, and files with a blob the index lacks (with its id). */
  empty: number[];
  missing: { file: number; id: string }[];
  dirMetas: SetupJob['dirMetas'];
}

/**
 * Restores a snapshot into target: downloads only the byte ranges it needs (ranged GETs on packs,
 * neighbouring blobs merged), verifies every blob, writes each file under a temporary name and renames
 * it into place, then sets modes and times. Files already there and verified are skipped, so an
 * interrupted restore resumes. A damaged blob fails only the files that use it, which are named.
 * Decoding and file writes run on worker threads (DecodePool); this thread fetches and keeps count.
 */
export async function runRestore(repo: Repository, snapshot: SnapshotInfo, given: RestoreOptions): Promise<RestoreCounts> {
  const opts = { ...given, paths: restorePaths(given.paths) };
  const counts: RestoreCounts = { files: 0, restored: 0, skipped: 0, bytes: 0, failed: [], baseline: 0 };
  const workers = defaultWorkers();
  // Fetched bytes in flight: one run per fetcher, plus one queued per extra worker.
  const pool = new DecodePool(repo.codec, workers, { cells: FETCHERS + workers - 1, cellSize: RUN_MAX });
  try {
    const { work, setup } = await planWork(repo, snapshot, opts, pool, counts);
    opts.onPlan?.(
      work.sizes.length,
      work.sizes.reduce((n, size) => n + size, 0),
    );
    // The first ranged GETs run while the folders are still being made; their bytes wait in the
    // pool's cells until the folders and the file table are on the workers (see Transfer.ready).
    const ready = Promise.all([setup, pool.broadcast({ kind: 'table', table: work.table })]).then(
      () => null,
      (err: unknown) => err,
    );
    await new Transfer(pool, repo.remote, opts, counts, work, ready).run();
    await pool.run({ kind: 'setup', mkdirs: [], symlinks: [], replace: false, dirMetas: work.dirMetas });
  } finally {
    await pool.close();
  }
  return counts;
}

/**
 * Loads the snapshot's trees and plans the files still to write. Its folders and links are being
 * made on a worker when it returns: `setup` settles once they are.
 */
async function planWork(repo: Repository, snapshot: SnapshotInfo, opts: RestoreOptions, pool: DecodePool, counts: RestoreCounts) {
  const [index, cache] = await Promise.all([repo.index(), opts.treeCache ? TreeCache.load(opts.treeCache) : null]);
  // The cached trees are opened on the pool's workers, idle until the transfer, while this thread decodes them.
  const trees = new TreeLoader(new BlobReader(repo.remote, index, repo.codec, cache, pool));
  const root = repo.body(snapshot).tree;
  const wanted = (rel: string) => selected(rel, opts.paths);
  await trees.preload(root, wanted);
  const layout: Layout = { dirs: [], links: [], files: [] };
  const asked = new Set(opts.paths);
  await walk(trees, root, '', wanted, (rel, entry) => {
    asked.delete(rel);
    place(layout, opts, rel, entry, counts);
  });
  if (asked.size > 0) {
    const list = [...asked].map((p) => JSON.stringify(p)).join(', ');
    throw new Error(`not in snapshot ${snapshot.id.slice(0, 12)}: ${list} (paths start with the backed-up folder's name; see kura ls)`);
  }
  // Into a folder that did not exist, nothing can be restored already: skip the per-file checks.
  const fresh = !(await lstat(opts.target).catch(() => null));
  await mkdir(opts.target, { recursive: true });
  // The folders are made on one worker, in walk order, while this thread plans the transfer and the
  // first ranged GETs run; nothing is written before they are all made. That wait (0.2 to 0.75 s
  // for the benchmark's 6,273 folders) is cheaper than every way tried of hiding it, each measured
  // in 4 to 8 alternated pairs of restores of the benchmark set (average wall time): folders made as
  // their first file is written, +0.46 s; made half on each worker, +1.3 s; made level by level
  // during the tree preload, +0.61 s; made while the transfer runs, each run waiting for its
  // folders, +0.39 s. Each raised the restore's kernel time (by 0.5 to 2 s): ext4 makes folders and
  // files dearer when their order or concurrency changes.
  const setup = pool.run({ kind: 'setup', mkdirs: layout.dirs.map((d) => d.path), symlinks: layout.links, replace: !fresh, dirMetas: [] });
  // Handled here so that a failure while the plan is made is not an unhandled rejection; the
  // transfer still sees it through `setup`.
  setup.catch(() => undefined);
  const files = fresh ? layout.files : await unrestored(layout.files, repo, opts, counts);
  counts.files += files.length;
  const work = planTransfer(files, index, opts.target);
  work.dirMetas = layout.dirs.reverse().map((d) => ({ path: d.path, mode: d.entry.mode & 0o7777, mtime: restoreTime(d.entry.mtimeNs) }));
  return { work, setup };
}

/** target/rel as a native path (rel is '/'-separated and normal, target absolute), without path.join's normalising. */
function under(target: string, rel: string): string {
  const native = sep === '/' ? rel : rel.split('/').join(sep);
  return target.endsWith(sep) ? target + native : target + sep + native;
}

function place(layout: Layout, opts: RestoreOptions, rel: string, entry: TreeEntry, counts: RestoreCounts): void {
  if (!selected(rel, opts.paths)) return;
  const path = under(opts.target, rel);
  if (entry.baseline) counts.baseline++;
  else if (entry.type === 'dir') layout.dirs.push({ path, entry });
  else if (entry.type === 'symlink') layout.links.push({ path, target: entry.target ?? '' });
  else layout.files.push({ rel, entry });
}

/** The files not already restored and verified; the others are counted as skipped. */
async function unrestored(files: Layout['files'], repo: Repository, opts: RestoreOptions, counts: RestoreCounts) {
  const todo: Layout['files'] = [];
  for (let i = 0; i < files.length; i += 32) {
    const batch = files.slice(i, i + 32);
    const done = await Promise.all(batch.map((f) => alreadyRestored(join(opts.target, f.rel), f.entry, repo)));
    batch.forEach((f, j) => {
      if (!done[j]) todo.push(f);
      else {
        counts.files++;
        counts.skipped++;
        opts.onFile?.(counts);
      }
    });
  }
  return todo;
}

/** The file table for the workers, and the blobs to fetch grouped by pack into runs of neighbours. */
function planTransfer(files: Layout['files'], index: Map<string, BlobLocation>, target: string): Work {
  const table: FileTable = {
    paths: files.map((f) => under(target, f.rel)),
    tmpPrefix: `.kura-restore-${randomBytes(6).toString('hex')}-`,
    modes: Uint16Array.from(files, (f) => f.entry.mode & 0o7777),
    mtimes: Float64Array.from(files, (f) => restoreTime(f.entry.mtimeNs)),
    pieces: Uint32Array.from(files, (f) => f.entry.content?.length ?? 0),
  };
  const work: Work = { table, sizes: Float64Array.from(files, (f) => f.entry.size), runs: [], empty: [], missing: [], dirMetas: [] };
  const byPack = new Map<string, Map<string, BlobUse>>();
  files.forEach(({ entry }, i) => {
    const content = entry.content ?? [];
    // One index lookup per piece: the lookups are most of the planning's time.
    const locs = content.map((id) => index.get(id));
    const missing = locs.indexOf(undefined);
    if (missing >= 0) work.missing.push({ file: i, id: content[missing]! });
    else if (content.length === 0) work.empty.push(i);
    else addWrites(i, locs as BlobLocation[], byPack);
  });
  work.runs = [...byPack.values()].flatMap((uses) => mergeRuns([...uses.values()], RUN_MAX).map(toRun));
  return work;
}

/** Adds file's pieces (their index entries, in order) to the uses of their packs. */
function addWrites(file: number, locs: BlobLocation[], byPack: Map<string, Map<string, BlobUse>>): void {
  let position = 0;
  for (const loc of locs) {
    const uses = byPack.get(loc.pack) ?? new Map<string, BlobUse>();
    byPack.set(loc.pack, uses);
    const use = uses.get(loc.id) ?? { loc, writes: [] };
    uses.set(loc.id, use);
    use.writes.push(file, position);
    position += loc.plainLength;
  }
}

/** The run's decode job, filled in place (no arrays per blob: a restore plans tens of thousands). */
function toRun(uses: BlobUse[]): Run {
  const first = uses[0]!.loc;
  const last = uses[uses.length - 1]!.loc;
  const blobs = new Float64Array(4 * uses.length);
  const writes = new Float64Array(uses.reduce((n, u) => n + u.writes.length, 0));
  let w = 0;
  uses.forEach(({ loc, writes: pairs }, i) => {
    blobs[4 * i] = loc.offset - first.offset;
    blobs[4 * i + 1] = loc.length;
    blobs[4 * i + 2] = loc.plainLength;
    blobs[4 * i + 3] = pairs.length / 2;
    writes.set(pairs, w);
    w += pairs.length;
  });
  const ids = uses.map((u) => u.loc.id).join('');
  return { pack: first.pack, start: first.offset, size: last.offset + last.length - first.offset, job: { ids, blobs, writes } };
}

/**
 * The transfer: runs are fetched FETCHERS at a time while the pool decodes and writes earlier ones;
 * bytes between a GET and the end of its job are bounded by the pool. A file is settled (renamed, or
 * removed and named as failed) once all its pieces are done.
 */
class Transfer {
  private readonly jobs = new Set<Promise<void>>();
  /** Pieces of each file not yet written (or given up). */
  private readonly remaining: Uint32Array;
  private readonly failed = new Map<number, string>();
  /** The first job that broke (a worker or the file system, not a blob): it stops the restore. */
  private broken: unknown = null;

  constructor(
    private readonly pool: DecodePool,
    private readonly remote: Remote,
    private readonly opts: RestoreOptions,
    private readonly counts: RestoreCounts,
    private readonly work: Work,
    /**
     * Settles once the folders are made and every worker has the file table: null, or why that
     * failed (which stops the restore). Nothing is written before.
     */
    private readonly ready: Promise<unknown>,
  ) {
    this.remaining = work.table.pieces.slice();
  }

  async run(): Promise<void> {
    const runs = this.work.runs.reverse();
    const fetcher = async () => {
      for (let run = runs.pop(); run && this.broken === null; run = runs.pop()) await this.fetchRun(run);
    };
    const fetching = Promise.all(Array.from({ length: FETCHERS }, fetcher));
    const notReady = await this.ready;
    if (notReady !== null) this.broken ??= notReady;
    else {
      for (const { file, id } of this.work.missing) this.fail(file, `blob ${id.slice(0, 12)} is missing`);
      const empty = this.work.empty;
      for (let i = 0; i < empty.length; i += EMPTY_BATCH) this.finish(empty.slice(i, i + EMPTY_BATCH));
    }
    await fetching;
    while (this.jobs.size > 0) await Promise.allSettled(this.jobs);
    if (this.broken !== null) throw this.broken;
  }

  /**
   * One ranged GET, handed to the pool (once the folders are ready) without waiting for it, so the
   * next GET starts at once.
   */
  private async fetchRun(run: Run): Promise<void> {
    const buf = await this.pool.acquire(run.size);
    const read = await readRangeInto(this.remote, packPath(run.pack), run.start, buf.bytes).catch(() => false);
    if (!read) {
      this.pool.release(buf);
      this.settle(run, [], `pack ${run.pack.slice(0, 12)} could not be read`);
      return;
    }
    if ((await this.ready) !== null) {
      this.pool.release(buf);
      return;
    }
    this.track(this.pool.decode(buf, run.job).then((failures) => this.settle(run, failures, null)));
  }

  /** Counts the run's pieces as done; a failure (of the run, a blob or a write) fails the files concerned. */
  private settle(run: Run, failures: JobFailure[], runFailure: string | null): void {
    const { ids, blobs, writes } = run.job;
    const blobWhy = new Map<number, string>();
    const writeWhy = new Map<number, string>();
    for (const f of failures) {
      if (f.write >= 0) writeWhy.set(f.write, `cannot write it (${f.message})`);
      else blobWhy.set(f.index, `blob ${ids.slice(64 * f.index, 64 * f.index + 12)} is damaged (${f.message})`);
    }
    for (let i = 0, w = 0; i < blobs.length / 4; i++) {
      const blobFailure = runFailure ?? blobWhy.get(i) ?? null;
      for (let end = w + blobs[4 * i + 3]!; w < end; w++)
        this.pieceDone(writes[2 * w]!, blobs[4 * i + 2]!, blobFailure ?? writeWhy.get(w) ?? null);
    }
  }

  private pieceDone(file: number, plainLength: number, failure: string | null): void {
    if (failure && !this.failed.has(file)) this.failed.set(file, failure);
    this.opts.onBytes?.(plainLength);
    if (--this.remaining[file]! > 0) return;
    const failed = this.failed.get(file);
    if (failed !== undefined) this.fail(file, failed);
    // A file in one piece was written, finished and renamed by its decode job.
    else if (this.work.table.pieces[file] === 1) this.restored(file);
    else this.finish([file]);
  }

  /** Sets meta and renames files written in parts (or creates empty ones) on a worker. */
  private finish(files: number[]): void {
    const job = this.pool.run({ kind: 'finish', files }).then((failures) => {
      const failed = new Map(failures.map((f) => [f.index, f.message]));
      files.forEach((file, i) => {
        const message = failed.get(i);
        if (message === undefined) this.restored(file);
        else this.fail(file, `cannot finish it (${message})`);
      });
    });
    this.track(job);
  }

  private restored(file: number): void {
    this.counts.restored++;
    this.counts.bytes += this.work.sizes[file]!;
    this.opts.onFile?.(this.counts);
  }

  /** Names the file as not restored and removes whatever part of it was written. */
  private fail(file: number, reason: string): void {
    const path = this.work.table.paths[file]!;
    this.counts.failed.push({ path: relative(this.opts.target, path).split(sep).join('/'), reason });
    this.track(rm(join(dirname(path), this.work.table.tmpPrefix + file.toString(36)), { force: true }));
  }

  private track(job: Promise<void>): void {
    this.jobs.add(job);
    void job
      .catch((err: unknown) => {
        this.broken ??= err;
      })
      .finally(() => this.jobs.delete(job));
  }
}

/** Visits every entry under id, descending only into the folders `wanted` accepts (as preload did). */
async function walk(
  trees: TreeLoader,
  id: string | null,
  prefix: string,
  wanted: (rel: string) => boolean,
  visit: (rel: string, e: TreeEntry) => void,
): Promise<void> {
  for (const entry of (await trees.entries(id)).values()) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    visit(rel, entry);
    if (entry.type === 'dir' && entry.subtree && wanted(rel)) await walk(trees, entry.subtree, rel, wanted, visit);
  }
}

/** Whether rel is one of paths (normal, see normalPath), inside one, or a folder on the way to one; everything without paths. */
function selected(rel: string, paths: string[]): boolean {
  if (paths.length === 0) return true;
  return paths.some((p) => {
    return rel === p || rel.startsWith(p + '/') || p.startsWith(rel + '/');
  });
}

/**
 * The paths as restore reads them: '/'-separated (as in trees), without leading or trailing slashes;
 * '/' or '' asks for everything, like no path at all. Empty: the whole snapshot.
 */
export function restorePaths(paths: string[]): string[] {
  return paths.map(normalPath).filter((p) => p !== '');
}

/** A path as given on the command line, '/'-separated (as in trees), without leading or trailing slashes. */
function normalPath(p: string): string {
  const slashed = sep === '/' ? p : p.split(sep).join('/');
  return slashed.replace(/^\/+|\/+$/g, '');
}

/** True when the file at path has the entry's size and mtime and its content hashes to the same blobs. */
async function alreadyRestored(path: string, entry: TreeEntry, repo: Repository): Promise<boolean> {
  const st = await lstat(path, { bigint: true }).catch(() => null);
  if (!st || !st.isFile() || Number(st.size) !== entry.size) return false;
  if (st.mtimeNs / 1000000n !== BigInt(entry.mtimeNs) / 1000000n) return false;
  const ids: string[] = [];
  for await (const chunk of chunkFile(path, repo.chunker)) ids.push(repo.codec.id(chunk));
  return ids.join() === (entry.content ?? []).join();
}
