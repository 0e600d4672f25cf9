import { z } from 'zod';
import { MAX_BLOB_SIZE } from './blob.js';
import { FormatError } from './errors.js';
import { isCount, isHex64, isPlainRecord, jsonBytes, parseJson } from './json.js';
import { count, hex64, validateQuick } from './schema.js';

/** What a tree entry is. */
export type TreeEntryType = 'file' | 'dir' | 'symlink';

/** One name in a directory (README, "Trees"). */
export interface TreeEntry {
  name: string;
  type: TreeEntryType;
  /** Permission bits, st_mode & 0o7777. */
  mode: number;
  /** Modification time, nanoseconds since the epoch, as a decimal string. */
  mtimeNs: string;
  size: number;
  /** Inode number when known and a safe integer. */
  ino?: number | undefined;
  /** Files: blob ids in order. */
  content?: string[] | undefined;
  /** Directories: the tree id of the directory's own listing. */
  subtree?: string | undefined;
  /** Symlinks: where the link points. */
  target?: string | undefined;
  /**
   * Files only: the content is the marked baseline's (a factory image): its blob ids are recorded by
   * reference and were never uploaded, so a restore leaves this file to the baseline image.
   */
  baseline?: true | undefined;
}

export const MAX_TREE_ENTRIES = 1_000_000;
const MAX_NAME_BYTES = 1024;

// With the u flag, a surrogate pair is one code point, so this matches only lone surrogates.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const name = z
  .string()
  .min(1, 'a name cannot be empty')
  .refine((n) => n !== '.' && n !== '..', 'a name cannot be "." or ".."')
  .refine((n) => !n.includes('/') && !n.includes('\0'), 'a name cannot hold "/" or NUL')
  .refine((n) => !LONE_SURROGATE.test(n), 'a name cannot hold a lone UTF-16 surrogate')
  .refine((n) => Buffer.byteLength(n, 'utf8') <= MAX_NAME_BYTES, `a name is at most ${MAX_NAME_BYTES} UTF-8 bytes`);

const EntrySchema = z
  .strictObject({
    name,
    type: z.enum(['file', 'dir', 'symlink']),
    mode: z.number().int().min(0).max(0o7777),
    mtimeNs: z.string().regex(/^-?(0|[1-9][0-9]{0,24})$/, 'must be decimal nanoseconds'),
    size: count,
    ino: count.optional(),
    content: z.array(hex64).optional(),
    subtree: hex64.optional(),
    target: z
      .string()
      .min(1)
      .refine((t) => !t.includes('\0') && !LONE_SURROGATE.test(t), 'a link target cannot hold NUL or a lone surrogate')
      .optional(),
    baseline: z.literal(true).optional(),
  })
  .superRefine((e, ctx) => {
    const problem = kindProblem(e);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const TreeSchema = z.strictObject({ v: z.literal(1), entries: z.array(EntrySchema).max(MAX_TREE_ENTRIES) });

/**
 * The canonical plaintext of a tree blob: entries sorted by the UTF-8 bytes of their names, keys in
 * a fixed order, absent fields omitted, so equal directories give equal bytes and equal ids.
 * Throws FormatError('bad-tree') for an entry the decoder would refuse, so bad trees are never written.
 */
export function encodeTree(entries: readonly TreeEntry[]): Buffer {
  const canonical = entries
    .map((e) => ({ key: Buffer.from(e.name, 'utf8'), entry: canonicalEntry(e) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((k) => k.entry);
  const tree = validateQuick(quickTree, TreeSchema, { v: 1, entries: canonical }, 'bad-tree', 'the tree');
  checkOrder(tree.entries);
  const bytes = jsonBytes({ v: 1, entries: canonical });
  if (bytes.length > MAX_BLOB_SIZE) throw new FormatError('bad-tree', `the tree is ${bytes.length} bytes, more than a blob can hold`);
  return bytes;
}

/** The entries of a tree blob's plaintext. Throws FormatError('bad-tree') when it breaks a rule. */
export function decodeTree(plain: Uint8Array): TreeEntry[] {
  const tree = validateQuick(quickTree, TreeSchema, parseJson(plain, 'bad-tree', 'the tree'), 'bad-tree', 'the tree');
  checkOrder(tree.entries);
  return tree.entries;
}

const ENTRY_REQUIRED = ['name', 'type', 'mode', 'mtimeNs', 'size'] as const;
const ENTRY_ALLOWED = new Set<string>([...ENTRY_REQUIRED, 'ino', 'content', 'subtree', 'target', 'baseline']);
const TREE_KEYS = ['v', 'entries'] as const;
const MTIME_NS = /^-?(0|[1-9][0-9]{0,24})$/;

/** The schemas' rules by hand (see validateQuick): an incremental backup reads thousands of trees. */
function quickTree(value: unknown): boolean {
  if (!isPlainRecord(value, TREE_KEYS, new Set(TREE_KEYS)) || value.v !== 1) return false;
  return Array.isArray(value.entries) && value.entries.length <= MAX_TREE_ENTRIES && value.entries.every(quickEntry);
}

function quickEntry(value: unknown): boolean {
  if (!isPlainRecord(value, ENTRY_REQUIRED, ENTRY_ALLOWED)) return false;
  const e = value;
  const type = e.type;
  if (type !== 'file' && type !== 'dir' && type !== 'symlink') return false;
  if (!quickName(e.name) || !isCount(e.mode) || e.mode > 0o7777 || typeof e.mtimeNs !== 'string' || !MTIME_NS.test(e.mtimeNs)) return false;
  if (!isCount(e.size) || (e.ino !== undefined && !isCount(e.ino))) return false;
  if (e.content !== undefined && !(Array.isArray(e.content) && e.content.every(isHex64))) return false;
  if (e.subtree !== undefined && !isHex64(e.subtree)) return false;
  if (
    e.target !== undefined &&
    !(typeof e.target === 'string' && e.target.length > 0 && !e.target.includes('\0') && !LONE_SURROGATE.test(e.target))
  ) {
    return false;
  }
  if (e.baseline !== undefined && e.baseline !== true) return false;
  return kindProblem({ type, content: e.content, subtree: e.subtree, target: e.target, baseline: e.baseline }) === null;
}

function quickName(n: unknown): boolean {
  return (
    typeof n === 'string' &&
    n.length > 0 &&
    n !== '.' &&
    n !== '..' &&
    !n.includes('/') &&
    !n.includes('\0') &&
    !LONE_SURROGATE.test(n) &&
    Buffer.byteLength(n, 'utf8') <= MAX_NAME_BYTES
  );
}

function kindProblem(e: {
  type: TreeEntryType;
  content?: unknown;
  subtree?: unknown;
  target?: unknown;
  baseline?: unknown;
}): string | null {
  if (e.baseline !== undefined && e.type !== 'file') return `a ${e.type} entry cannot have "baseline"`;
  const has = { content: e.content !== undefined, subtree: e.subtree !== undefined, target: e.target !== undefined };
  const wanted = e.type === 'file' ? 'content' : e.type === 'dir' ? 'subtree' : 'target';
  if (!has[wanted]) return `a ${e.type} entry needs "${wanted}"`;
  const extra = (['content', 'subtree', 'target'] as const).find((k) => k !== wanted && has[k]);
  return extra ? `a ${e.type} entry cannot have "${extra}"` : null;
}

/** Strictly ascending names: sorted and unique. */
function checkOrder(entries: readonly TreeEntry[]): void {
  let before: Buffer | null = null;
  for (const { name } of entries) {
    const here = Buffer.from(name, 'utf8');
    const order = before ? Buffer.compare(before, here) : -1;
    if (order === 0) throw new FormatError('bad-tree', `the tree names ${JSON.stringify(name)} twice`);
    if (order > 0) throw new FormatError('bad-tree', `the tree is not sorted: ${JSON.stringify(name)} comes after a greater name`);
    before = here;
  }
}

/** A fresh object with keys in the canonical order and absent fields left out. */
function canonicalEntry(e: TreeEntry): TreeEntry {
  const out: TreeEntry = { name: e.name, type: e.type, mode: e.mode, mtimeNs: e.mtimeNs, size: e.size };
  if (e.ino !== undefined) out.ino = e.ino;
  if (e.content !== undefined) out.content = [...e.content];
  if (e.subtree !== undefined) out.subtree = e.subtree;
  if (e.target !== undefined) out.target = e.target;
  if (e.baseline === true) out.baseline = true;
  return out;
}
