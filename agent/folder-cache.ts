import { hash } from 'node:crypto';
import { readSealed, writeSealed } from './sealed-file.js';

/** One folder of the last snapshot: its tree, and the digest of its entries' metadata. */
export interface FolderRecord {
  tree: string;
  listing: string;
  /** The folder's own inode, by which a renamed or moved folder is found again. */
  ino?: number | undefined;
}

/**
 * What the last backup saw in each folder, kept on the PC (a sealed file in KURA_STATE_DIR): the
 * folder's tree id and a digest of its entries as the scan finds them (names, kinds, modes, sizes,
 * mtimes, inodes, link targets). On the next backup a folder whose listing has the same digest, and
 * whose subfolders all kept their trees, keeps its tree without the parent's tree being decoded at
 * all; only folders where something changed are compared entry by entry. The records are valid only
 * for the snapshot root they were made with; a missing or damaged file is simply not used.
 */
export class FolderCache {
  private constructor(
    private readonly file: string | null,
    private readonly root: string | null,
    private readonly records: Map<string, FolderRecord>,
  ) {}

  static async load(file: string | null): Promise<FolderCache> {
    const raw = file ? ((await readSealed(file)) as { root?: unknown; folders?: unknown } | null) : null;
    const records = new Map<string, FolderRecord>();
    if (raw && typeof raw.root === 'string' && Array.isArray(raw.folders)) {
      for (const f of raw.folders as unknown[]) {
        if (!Array.isArray(f) || typeof f[0] !== 'string' || typeof f[1] !== 'string' || typeof f[2] !== 'string') continue;
        const ino = typeof f[3] === 'number' && Number.isSafeInteger(f[3]) ? f[3] : undefined;
        records.set(f[0], { tree: f[1], listing: f[2], ino });
      }
    }
    return new FolderCache(file, raw && typeof raw.root === 'string' ? raw.root : null, records);
  }

  /** The records when they describe the snapshot whose root tree is root, else null. */
  recordsFor(root: string | null): ReadonlyMap<string, FolderRecord> | null {
    return root !== null && root === this.root && this.records.size > 0 ? this.records : null;
  }

  /** Replaces the file with the folders of the snapshot just made. */
  async save(root: string, folders: ReadonlyMap<string, FolderRecord>): Promise<void> {
    if (!this.file) return;
    await writeSealed(this.file, { root, folders: [...folders].map(([key, r]) => [key, r.tree, r.listing, r.ino ?? null]) });
  }
}

/** A folder's key in the cache: the top-level name, then the path below it. */
export function folderKey(top: string, rel: string): string {
  return rel === '' ? top : `${top}/${rel}`;
}

/** What a listing digest covers of an entry: a tree entry (name), or a scan entry (rel, whose last part is the name). */
export interface ListingEntry {
  name?: string;
  rel?: string;
  type: string;
  mode: number;
  mtimeNs: string | bigint;
  size: number;
  ino?: number | undefined;
  target?: string | undefined;
}

/**
 * The digest of a folder's entries as far as the scan knows them (content and subtree ids left
 * out): equal digests mean the same names with the same metadata, so the same files unchanged.
 * Sizes count for files only (a tree records 0 for folders and links).
 */
export function listingDigest(entries: readonly ListingEntry[]): string {
  // Fixed-width fields and length-prefixed names and targets, so no two listings can read alike;
  // binary, because turning 64-bit mtimes into text cost more than the hashing.
  let at = 0;
  for (const e of entries) {
    const need = 3 * ((e.name ?? e.rel ?? '').length + (e.target?.length ?? 0)) + 40;
    if (at + need > scratch.length) scratch = Buffer.concat([scratch.subarray(0, at), Buffer.allocUnsafe(Math.max(need, scratch.length))]);
    const nameLength = scratch.write(nameOf(e), at + 4, 'utf8');
    scratch.writeUInt32LE(nameLength, at);
    at += 4 + nameLength;
    scratch[at++] = TYPE_CODES[e.type] ?? 0;
    scratch.writeUInt32LE(e.mode, at);
    scratch.writeBigInt64LE(BigInt.asIntN(64, typeof e.mtimeNs === 'bigint' ? e.mtimeNs : BigInt(e.mtimeNs)), at + 4);
    scratch.writeDoubleLE(e.type === 'file' ? e.size : 0, at + 12);
    scratch.writeDoubleLE(e.ino ?? -1, at + 20);
    at += 28;
    const targetLength = e.target === undefined ? -1 : scratch.write(e.target, at + 4, 'utf8');
    scratch.writeInt32LE(targetLength, at);
    at += 4 + Math.max(0, targetLength);
  }
  return hash('sha256', scratch.subarray(0, at), 'hex').slice(0, 32);
}

function nameOf(e: ListingEntry): string {
  if (e.name !== undefined) return e.name;
  const rel = e.rel ?? '';
  return rel.slice(rel.lastIndexOf('/') + 1);
}

const TYPE_CODES: Record<string, number> = { file: 1, dir: 2, symlink: 3 };
let scratch = Buffer.allocUnsafe(64 * 1024);
