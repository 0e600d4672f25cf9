import { encodeSnapshot, type SnapshotTotals, type SnapshotType } from '../format/index.js';
import { Archiver, Cancelled, type ArchiveTotals } from './archiver.js';
import { FilePool } from './file-pool.js';
import { FolderCache } from './folder-cache.js';
import { RemoteError } from './remote.js';
import { ScanThread } from './scan-thread.js';
import { FIRST_PACK_SIZE, Packer } from './packer.js';
import type { Repository, SnapshotInfo } from './repository.js';
import { BlobReader, packPath, TreeCache, TreeLoader } from './trees.js';

export interface BackupOptions {
  folders: string[];
  host: string;
  /**
   * incremental: compared with the host's latest snapshot of any type; differential: with its latest
   * full one; full and copy: every file read and hashed again (a copy is not a base for differentials).
   */
  type: SnapshotType;
  exclude: string[];
  /** A local copy of the last snapshot's trees (still encrypted), so the next run reads them from disk. */
  treeCache?: string;
  /**
   * The walk of opts.folders (with opts.exclude and listings), if the caller started it early, while
   * the repository was being opened; runBackup closes it.
   */
  scanner?: ScanThread;
  /** What this PC's last backup saw in each folder, so unchanged folders are not compared entry by entry. */
  folderCache?: string;
  isCancelled: () => boolean;
  /** Called once the parent snapshot is known, with its totals (null on a first or full backup). */
  onStart?: (parentTotals: SnapshotTotals | null) => void;
  onFile?: (totals: ArchiveTotals, bytes: number) => void;
  onUploaded?: (bytes: number) => void;
  onWarning?: (path: string, err: unknown) => void;
  /**
   * Called when the gateway refuses the snapshot because the contract's limit is reached; true when
   * it made room (forgot snapshots), and the commit is tried again (up to 3 times).
   */
  onSnapshotLimit?: () => Promise<boolean>;
}

export interface BackupResult {
  snapshotId: string;
  /** The type recorded: the one asked for, except a differential without a full base (then full). */
  type: SnapshotType;
  parent: string | null;
  totals: ArchiveTotals & { bytesUploaded: number; packs: number; durationMs: number };
}

/**
 * One backup: scan → chunk → ids → skip what the gateway holds → pack and PUT the rest → PUT the
 * snapshot record, which commits it. An interrupted run leaves its finished packs indexed on the
 * gateway, so the next run uploads only what is still missing.
 */
export async function runBackup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  // The readers start loading now, while the index, the snapshots and the parent's trees arrive.
  const pool = new FilePool(repo.codec, repo.chunker, FIRST_PACK_SIZE);
  const scanner = opts.scanner ?? new ScanThread(opts.folders, { exclude: opts.exclude, listings: true });
  try {
    return await backupWith(repo, opts, pool, scanner, started);
  } finally {
    await Promise.all([pool.close(), scanner.close()]);
  }
}

async function backupWith(
  repo: Repository,
  opts: BackupOptions,
  pool: FilePool,
  scanner: ScanThread,
  started: number,
): Promise<BackupResult> {
  const [index, snapshots, treeCache, folderCache] = await Promise.all([
    repo.index(),
    opts.type === 'full' || opts.type === 'copy' || opts.type === 'baseline' ? [] : repo.snapshots(opts.host),
    TreeCache.load(opts.treeCache ?? null),
    FolderCache.load(opts.folderCache ?? null),
  ]);
  const blobs = new BlobReader(repo.remote, index, repo.codec, treeCache);
  const parent = parentFor(opts.type, snapshots);
  // A differential needs a full backup to differ from: without one, this backup is that full one.
  const type: SnapshotType = opts.type === 'differential' && !parent ? 'full' : opts.type;
  const parentBody = parent ? repo.body(parent) : null;
  const parentRoot = parentBody?.tree ?? null;
  opts.onStart?.(parentBody?.totals ?? null);
  const parentTrees = new TreeLoader(blobs);
  // With the folder cache, parent trees are decoded only where a folder changed; else all, in bulk.
  const folders = folderCache.recordsFor(parentRoot);
  if (!folders) await parentTrees.preload(parentRoot);
  const packer = new Packer({ putPack: (id, bytes) => repo.remote.putFile(packPath(id), bytes) }, 2, opts.onUploaded, (target) =>
    pool.setPackTarget(target),
  );
  const archiver = new Archiver({
    codec: repo.codec,
    readers: (sink) => pool.attach(sink),
    known: new Set(index.keys()),
    packer,
    parentTrees,
    folders,
    treeCache,
    exclude: opts.exclude,
    referenceOnly: type === 'baseline',
    scan: (root, o) => scanner.scan(root, o),
    isCancelled: opts.isCancelled,
    onFile: opts.onFile,
    onWarning: opts.onWarning,
  });
  let root: string;
  try {
    root = await archiver.archive(opts.folders, parentRoot);
    await packer.finish();
  } catch (err) {
    await packer.drain();
    throw err;
  }
  if (opts.isCancelled()) throw new Cancelled('cancelled before the snapshot was committed');
  const totals = {
    ...archiver.totals,
    bytesUploaded: packer.uploadedBytes,
    packs: packer.uploadedPacks,
    durationMs: Math.round(performance.now() - started),
  };
  const { id, bytes } = encodeSnapshot(
    { time: new Date().toISOString(), host: opts.host, type },
    { tree: root, paths: opts.folders, parent: parent?.id ?? null, totals: snapshotTotals(totals) },
    repo.keys,
  );
  // The caches are only speed-ups for the next run, written while the snapshot record goes up (one
  // that cannot be written is simply not there next time): this run's trees and folders, which match
  // no parent should the commit fail, and the index with what this run added.
  const caches = Promise.all([
    treeCache.save(archiver.treeIds),
    folderCache.save(root, archiver.folderRecords),
    packer.uploadedPacks > 0 ? repo.refreshIndex() : null,
  ]).catch(() => undefined);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await repo.remote.putFile(`/.kura/snapshots/${opts.host}/${id}`, bytes);
        break;
      } catch (err) {
        if (!(err instanceof RemoteError && /snapshot-limit-reached/.test(err.message))) throw err;
        if (attempt <= 3 && opts.onSnapshotLimit && (await opts.onSnapshotLimit())) continue;
        throw new RemoteError(
          `${err.message}. The data this backup uploaded stays on the gateway: once there is room, the next backup only records the snapshot.`,
          err.status,
          false,
        );
      }
    }
  } finally {
    await caches;
  }
  return { snapshotId: id, type, parent: parent?.id ?? null, totals };
}

/** The snapshot a backup of this type compares with (snapshots oldest first), or null. */
export function parentFor(type: SnapshotType, snapshots: readonly SnapshotInfo[]): SnapshotInfo | null {
  if (type === 'full' || type === 'copy' || type === 'baseline') return null;
  // A marked baseline is a base too: a differential after it sends what changed since the image.
  const candidates = type === 'differential' ? snapshots.filter((s) => s.type === 'full' || s.type === 'baseline') : snapshots;
  return candidates[candidates.length - 1] ?? null;
}

function snapshotTotals(t: BackupResult['totals']) {
  return {
    files: t.files,
    dirs: t.dirs,
    bytes: t.bytes,
    newFiles: t.newFiles,
    changedFiles: t.changedFiles,
    unchangedFiles: t.unchangedFiles,
    bytesRead: t.bytesRead,
    bytesUploaded: t.bytesUploaded,
    durationMs: t.durationMs,
  };
}
