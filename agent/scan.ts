/**
 * Walks the folders to back up. The order is canonical, so the same folder gives the same trees on
 * any machine: depth first, a directory before its contents, the entries of a directory in byte
 * order of their UTF-8 names. Symbolic links are recorded, never followed; sockets, FIFOs and
 * devices are left out. Whatever cannot be read is reported to `onWarning` and skipped, so one bad
 * file never stops a backup.
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { listingDigest } from './folder-cache.js';
import type { BigIntStats } from 'node:fs';
import { resolve, sep } from 'node:path';
import picomatch from 'picomatch';

export interface ScanEntry {
  /** Absolute path. */
  path: string;
  /** Path below the scanned root, '/'-separated, never starting with '/'. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  /** File length in bytes; the target's length for a symlink; 0 for a directory. */
  size: number;
  /** Permission bits with setuid, setgid and sticky (st_mode & 0o7777); the kind is in `type`. */
  mode: number;
  /** Modification time in nanoseconds since the epoch, as the filesystem keeps it. */
  mtimeNs: bigint;
  /** Inode number (exact below 2^53, which covers the filesystems we know). */
  ino: number;
  /** A symlink's target, as written in the link. */
  target?: string;
  /** With ScanOptions.listings, on a directory: the digest of its entries (folder-cache.ts). */
  listing?: string;
}

export interface ScanOptions {
  /**
   * Patterns of paths to leave out, gitignore-like, matched against `rel`: a pattern without a '/'
   * matches a name at any depth ('*.tmp', 'node_modules'); one with a '/' inside is anchored at the
   * root ('build/out', '/cache'); a trailing '/' matches directories only ('cache/'); '**' spans
   * directories ('**\/node_modules'; 'logs/**' leaves out logs itself too); a leading '!' takes a
   * path back in. The last pattern that matches decides. An excluded directory is not entered, so
   * nothing below it can be taken back in (as in git).
   */
  exclude?: string[];
  /** Told about each entry that could not be read (and was skipped); defaults to process.emitWarning. */
  onWarning?: (path: string, err: Error) => void;
  /**
   * Digests of what each directory holds (listingDigest in folder-cache.ts): on each directory's
   * entry, and the root's through onRootListing before the first entry. A directory is then read
   * and stat'ed whole when the walk reaches it, before its entry is yielded.
   */
  listings?: boolean;
  onRootListing?: (digest: string) => void;
}

/** Names stat'ed at a time within one directory, between two yields. */
const LSTAT_BATCH = 64;

/** A directory being walked: its sorted names, and entries already stat'ed (from `taken` on). */
interface Frame {
  dir: string;
  rel: string;
  names: string[];
  next: number;
  ready: ScanEntry[];
  taken: number;
}

type Warn = (path: string, err: Error) => void;

/**
 * Yields every entry below `root` (not the root itself) in canonical order. Throws only when
 * `root` itself cannot be read or is not a directory; trouble below it goes to `onWarning`.
 * Memory grows with the names of the directories on the current path, not with the tree.
 */
export async function* scan(root: string, opts: ScanOptions = {}): AsyncGenerator<ScanEntry> {
  root = resolve(root);
  const excluded = compileExcludes(opts.exclude ?? []);
  const warn = opts.onWarning ?? defaultWarning;
  if (!lstatSync(root).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, scan '${root}'`), { code: 'ENOTDIR' });
  const first = openFrame(root, '', readdirSync(root));
  if (opts.listings) opts.onRootListing?.(listAll(first, excluded, warn));
  const stack: Frame[] = [first];
  // The stat calls are synchronous (metadata is cheap and usually cached, and the thread pool's
  // round trips cost more than the calls); every few hundred entries the event loop gets a turn.
  for (let n = 1; stack.length > 0; n++) {
    if (n % 256 === 0) await new Promise<void>((r) => setImmediate(r));
    const entry = nextEntry(stack[stack.length - 1]!, excluded, warn);
    if (!entry) {
      stack.pop();
      continue;
    }
    if (entry.type !== 'dir') {
      yield entry;
      continue;
    }
    const frame = openFrame(entry.path, entry.rel, opts.listings ? listNames(entry.path, warn) : []);
    if (opts.listings) entry.listing = listAll(frame, excluded, warn);
    yield entry;
    if (!opts.listings) frame.names = listNames(entry.path, warn).sort(byUtf8);
    stack.push(frame);
  }
}

function openFrame(dir: string, rel: string, names: string[]): Frame {
  return { dir, rel, names: names.sort(byUtf8), next: 0, ready: [], taken: 0 };
}

/** Names in byte order of their UTF-8 forms (not JavaScript's UTF-16 order). */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Stats every name of the frame now; returns the digest of what it holds. */
function listAll(frame: Frame, excluded: Excluder, warn: Warn): string {
  while (frame.next < frame.names.length) statBatch(frame, excluded, warn);
  return listingDigest(frame.ready);
}

/** The names in a directory below the root; one that cannot be listed is reported and looks empty. */
function listNames(dir: string, warn: Warn): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    warn(dir, asError(err));
    return [];
  }
}

/** The frame's next entry, stat'ing names a batch at a time and dropping excluded and unsupported ones. */
function nextEntry(frame: Frame, excluded: Excluder, warn: Warn): ScanEntry | undefined {
  while (frame.taken === frame.ready.length && frame.next < frame.names.length) {
    frame.ready = [];
    frame.taken = 0;
    statBatch(frame, excluded, warn);
  }
  return frame.taken < frame.ready.length ? frame.ready[frame.taken++] : undefined;
}

/** Stats the frame's next names, adding the entries to keep to `ready`. */
function statBatch(frame: Frame, excluded: Excluder, warn: Warn): void {
  const batch = frame.names.slice(frame.next, frame.next + LSTAT_BATCH);
  frame.next += batch.length;
  const paths = batch.map((name) => childPath(frame.dir, name));
  const found = batch.map((name, k) => readEntry(paths[k]!, frame.rel ? `${frame.rel}/${name}` : name));
  found.forEach((e, k) => {
    if (e instanceof Error) warn(paths[k]!, e);
    else if (e && !excluded(e.rel, e.type === 'dir')) frame.ready.push(e);
  });
}

/** dir + name: dir is absolute and normal already, so path.join's normalising is not needed. */
function childPath(dir: string, name: string): string {
  return dir.endsWith(sep) ? dir + name : dir + sep + name;
}

/** One entry, null for a kind we do not back up, or the error that kept us from reading it. */
function readEntry(path: string, rel: string): ScanEntry | null | Error {
  try {
    const st = lstatSync(path, { bigint: true });
    const type = kindOf(st);
    if (!type) return null;
    const entry: ScanEntry = {
      path,
      rel,
      type,
      size: type === 'dir' ? 0 : Number(st.size),
      mode: Number(st.mode & 0o7777n),
      mtimeNs: st.mtimeNs,
      ino: Number(st.ino),
    };
    if (type === 'symlink') entry.target = readlinkSync(path);
    return entry;
  } catch (err) {
    return asError(err);
  }
}

function kindOf(st: BigIntStats): ScanEntry['type'] | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return null;
}

// ---- Exclusion patterns ------------------------------------------------------------------------

/** True when the path is to be left out. */
type Excluder = (rel: string, isDir: boolean) => boolean;

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  matches: (rel: string) => boolean;
}

/** Compiles gitignore-like patterns (see ScanOptions.exclude); blank lines and '#' comments are ignored. */
export function compileExcludes(patterns: string[]): Excluder {
  const rules = patterns.map(parseRule).filter((r): r is Rule => r !== null);
  if (rules.length === 0) return () => false;
  return (rel, isDir) => {
    let out = false;
    for (const r of rules) if ((isDir || !r.dirOnly) && r.matches(rel)) out = !r.negate;
    return out;
  };
}

function parseRule(raw: string): Rule | null {
  let pattern = raw.trim();
  if (pattern === '' || pattern.startsWith('#')) return null;
  const negate = pattern.startsWith('!');
  if (negate) pattern = pattern.slice(1);
  const dirOnly = pattern.endsWith('/');
  pattern = pattern.replace(/\/+$/, '');
  const anchored = pattern.includes('/');
  pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') return null;
  return { negate, dirOnly, matches: picomatch(anchored ? pattern : `**/${pattern}`, { dot: true }) };
}

// ---- Errors ------------------------------------------------------------------------------------

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export const defaultWarning: Warn = (path, err) => process.emitWarning(`skipped ${path}: ${err.message}`, { code: 'KURA_SCAN_SKIPPED' });
