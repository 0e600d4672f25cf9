import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, rename, rm, symlink, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TreeEntry } from '../format/index.js';
import { chunkFile } from './chunker.js';
import type { BlobLocation, Repository, SnapshotInfo } from './repository.js';
import { BlobReader, mergeRuns, packPath, TreeLoader } from './trees.js';

export interface RestoreOptions {
  target: string;
  /** Only these paths inside the snapshot (e.g. 'Documents/report.txt'); everything when empty. */
  paths: string[];
  /** Called once the work is known: files to write and their bytes. */
  onPlan?: (files: number, bytes: number) => void;
  onFile?: (done: RestoreCounts) => void;
  onBytes?: (bytes: number) => void;
}

export interface RestoreCounts {
  files: number;
  restored: number;
  skipped: number;
  bytes: number;
  failed: { path: string; reason: string }[];
}

interface FilePlan {
  rel: string;
  entry: TreeEntry;
  tmp: string;
  remaining: number;
  failed: string | null;
  /** Opened at the file's first piece and kept until its last. */
  handle?: Promise<FileHandle>;
}

interface Piece {
  loc: BlobLocation;
  file: FilePlan;
  position: number;
}

/**
 * Restores a snapshot into target: downloads only the byte ranges it needs (ranged GETs on packs,
 * neighbouring blobs merged), verifies every blob, writes each file under a temporary name and renames
 * it into place, then sets modes and times. Files already there and verified are skipped, so an
 * interrupted restore resumes. A damaged blob fails only the files that use it, which are named.
 */
export async function runRestore(repo: Repository, snapshot: SnapshotInfo, opts: RestoreOptions): Promise<RestoreCounts> {
  const index = await repo.index();
  const blobs = new BlobReader(repo.remote, index, repo.codec);
  const trees = new TreeLoader(blobs);
  await trees.preload(repo.body(snapshot).tree);
  const counts: RestoreCounts = { files: 0, restored: 0, skipped: 0, bytes: 0, failed: [] };
  // Into a folder that did not exist, nothing can be restored already: skip the per-file check.
  const fresh = !(await lstat(opts.target).catch(() => null));
  await mkdir(opts.target, { recursive: true });
  const dirs: { path: string; entry: TreeEntry }[] = [];
  const plans: FilePlan[] = [];
  await walk(trees, repo.body(snapshot).tree, '', async (rel, entry) => {
    if (!selected(rel, opts.paths)) return;
    const path = join(opts.target, rel);
    if (entry.type === 'dir') {
      await mkdir(path, { recursive: true });
      dirs.push({ path, entry });
    } else if (entry.type === 'symlink') {
      if (!fresh) await rm(path, { force: true });
      await symlink(entry.target ?? '', path);
    } else {
      counts.files++;
      if (!fresh && (await alreadyRestored(path, entry, repo))) {
        counts.skipped++;
        opts.onFile?.(counts);
      } else
        plans.push({ rel, entry, tmp: join(dirname(path), `.kura-restore-${randomBytes(6).toString('hex')}`), remaining: 0, failed: null });
    }
  });
  opts.onPlan?.(
    plans.length,
    plans.reduce((n, p) => n + p.entry.size, 0),
  );
  await restoreFiles(plans, blobs, repo, opts, counts);
  for (const d of dirs.reverse()) await setMeta(d.path, d.entry);
  return counts;
}

async function restoreFiles(plans: FilePlan[], blobs: BlobReader, repo: Repository, opts: RestoreOptions, counts: RestoreCounts) {
  const byPack = new Map<string, Piece[]>();
  const empty: FilePlan[] = [];
  for (const plan of plans) {
    let position = 0;
    for (const id of plan.entry.content ?? []) {
      const loc = blobs.location(id);
      if (!loc) {
        plan.failed = `blob ${id.slice(0, 12)} is missing`;
        continue;
      }
      plan.remaining++;
      const list = byPack.get(loc.pack) ?? [];
      list.push({ loc, file: plan, position });
      byPack.set(loc.pack, list);
      position += loc.plainLength;
    }
    if (plan.remaining === 0) empty.push(plan);
  }
  await inBatches(empty, (plan) => finishFile(plan, opts, counts));
  const queue = [...byPack.entries()];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await restorePack(next[0], next[1], repo, opts, counts);
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

async function restorePack(pack: string, pieces: Piece[], repo: Repository, opts: RestoreOptions, counts: RestoreCounts) {
  for (const run of mergeRuns(pieces)) {
    const start = run[0]!.loc.offset;
    const last = run[run.length - 1]!.loc;
    const bytes = await repo.remote.getFile(packPath(pack), { start, end: last.offset + last.length - 1 }).catch(() => null);
    await inBatches(run, async (piece) => {
      await writePiece(piece, bytes, start, repo);
      opts.onBytes?.(piece.loc.plainLength);
      if (--piece.file.remaining === 0) await finishFile(piece.file, opts, counts);
    });
  }
}

/** Runs fn over items, 32 at a time: file system calls overlap without exhausting file handles. */
async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += 32) await Promise.all(items.slice(i, i + 32).map(fn));
}

async function writePiece(piece: Piece, bytes: Buffer | null, start: number, repo: Repository) {
  const file = piece.file;
  if (file.failed) return;
  if (!bytes) {
    file.failed = `pack ${piece.loc.pack.slice(0, 12)} could not be read`;
    return;
  }
  try {
    const rel = piece.loc.offset - start;
    const plain = repo.codec.decode(bytes.subarray(rel, rel + piece.loc.length), piece.loc.id);
    file.handle ??= open(file.tmp, 'w');
    await (await file.handle).write(plain, 0, plain.length, piece.position);
  } catch (err) {
    file.failed = `blob ${piece.loc.id.slice(0, 12)} is damaged (${(err as Error).message})`;
  }
}

/** Sets mode and times through the open handle, closes it and renames the file into place. */
async function finishFile(plan: FilePlan, opts: RestoreOptions, counts: RestoreCounts) {
  const handle = await (plan.handle ?? (plan.failed ? null : open(plan.tmp, 'w')));
  if (plan.failed) {
    await handle?.close();
    await rm(plan.tmp, { force: true });
    counts.failed.push({ path: plan.rel, reason: plan.failed });
    return;
  }
  try {
    await handle!.chmod(plan.entry.mode & 0o7777);
    const seconds = mtimeSeconds(plan.entry);
    await handle!.utimes(seconds, seconds);
  } finally {
    await handle!.close();
  }
  await rename(plan.tmp, join(opts.target, plan.rel));
  counts.restored++;
  counts.bytes += plan.entry.size;
  opts.onFile?.(counts);
}

async function walk(trees: TreeLoader, id: string, prefix: string, visit: (rel: string, e: TreeEntry) => Promise<void>): Promise<void> {
  for (const entry of (await trees.entries(id)).values()) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    await visit(rel, entry);
    if (entry.type === 'dir' && entry.subtree) await walk(trees, entry.subtree, rel, visit);
  }
}

function selected(rel: string, paths: string[]): boolean {
  if (paths.length === 0) return true;
  return paths.some((p) => {
    const want = p.replace(/^\/+|\/+$/g, '');
    return rel === want || rel.startsWith(want + '/') || want.startsWith(rel + '/');
  });
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

function mtimeSeconds(entry: TreeEntry): number {
  return Number(BigInt(entry.mtimeNs) / 1000n) / 1e6;
}

async function setMeta(path: string, entry: TreeEntry): Promise<void> {
  await chmod(path, entry.mode & 0o7777);
  const seconds = mtimeSeconds(entry);
  await utimes(path, seconds, seconds);
}
