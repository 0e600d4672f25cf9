import { createHash } from 'node:crypto';
import { decodeTree, type TreeEntry } from '../format/index.js';
import { BrowseError } from './errors.js';
import type { SnapshotRef, SnapshotSource } from './source.js';

/** What the view shows at one path: a folder (root, host, snapshot, or a folder of a snapshot) or a file. */
export interface ViewNode {
  name: string;
  type: 'collection' | 'file';
  size: number;
  mtime: Date;
  /** A strong ETag, quoted: from the blob ids for files, the tree id for folders. */
  etag: string;
  /** Where its members come from. */
  of: { kind: 'root' } | { kind: 'host'; host: string } | { kind: 'tree'; tree: string | null; notice: SnapshotRef | null } | FileOrigin;
}

/** A file of a snapshot (its blobs), or the text file an encrypted snapshot holds on the gateway. */
type FileOrigin = { kind: 'blobs'; content: readonly string[]; baseline?: true } | { kind: 'text'; text: Buffer };

/** The one file an encrypted snapshot's folder holds where the view has no key. */
export const NOTICE_NAME = 'HOW-TO-BROWSE.txt';

/** A decoded tree: its members in tree order, and by name (exact, and NFC for clients that normalise). */
interface Folder {
  nodes: ViewNode[];
  byName: Map<string, ViewNode>;
  byNfc: Map<string, ViewNode> | null;
}

/** Decoded trees kept, counted in entries: about 200 bytes each, so ~100 MB at most. */
const CACHE_ENTRIES = 500_000;

/**
 * The read-only tree /<host>/<time>/<path inside the snapshot> over a SnapshotSource. Trees are
 * decoded once and kept (least recently used first out), so a listing costs no blob reads once its
 * tree is known, and a file's bytes are read blob by blob as they are sent. Symbolic links are left
 * out: WebDAV has no way to show them.
 */
export class SnapshotView {
  private readonly trees = new Map<string, Folder>();
  private readonly loading = new Map<string, Promise<Folder>>();
  private cachedEntries = 0;

  constructor(
    readonly source: SnapshotSource,
    private readonly noticeText: (snapshot: SnapshotRef) => string = defaultNotice,
  ) {}

  /** The node at segs (below the view's root), or null. */
  async resolve(segs: readonly string[]): Promise<ViewNode | null> {
    let node: ViewNode | null = await this.root();
    for (const seg of segs) {
      if (!node || node.type !== 'collection') return null;
      node = await this.child(node, seg);
    }
    return node;
  }

  /** The members of a collection, in a stable order. */
  async list(node: ViewNode): Promise<ViewNode[]> {
    const of = node.of;
    if (of.kind === 'root') return this.hosts();
    if (of.kind === 'host') return [...(await this.snapshotsOf(of.host)).values()];
    if (of.kind === 'tree') return of.notice ? [this.notice(node, of.notice)] : (await this.folder(of.tree)).nodes;
    return [];
  }

  /** The file's bytes from start to end inclusive, blob by blob; throws snapshot-damaged before a byte when a blob is unknown. */
  async open(node: ViewNode, start: number, end: number): Promise<Iterable<Buffer> | AsyncIterable<Buffer>> {
    if (node.of.kind === 'text') return [node.of.text.subarray(start, end + 1)];
    if (node.of.kind !== 'blobs') throw new BrowseError('not-found', 'not-found: not a file');
    if (node.of.baseline) {
      throw new BrowseError(
        'not-found',
        'baseline-only: this file is unchanged since the marked baseline (kura baseline mark) and was never uploaded; open it in the baseline image',
      );
    }
    const pieces = await this.pieces(node.of.content, node.size);
    return readPieces(this.source, pieces, start, end);
  }

  private async root(): Promise<ViewNode> {
    const all = await this.source.snapshots();
    return collection('', latest(all), `"r-${all.length}-${latest(all).getTime()}"`, { kind: 'root' });
  }

  private async child(parent: ViewNode, name: string): Promise<ViewNode | null> {
    const of = parent.of;
    if (of.kind === 'root') return (await this.hosts()).find((h) => h.name === name) ?? null;
    if (of.kind === 'host') return (await this.snapshotsOf(of.host)).get(name) ?? null;
    if (of.kind !== 'tree') return null;
    if (of.notice) return name === NOTICE_NAME ? this.notice(parent, of.notice) : null;
    const folder = await this.folder(of.tree);
    const exact = folder.byName.get(name);
    if (exact) return exact;
    folder.byNfc ??= new Map(folder.nodes.map((n) => [n.name.normalize('NFC'), n]));
    return folder.byNfc.get(name.normalize('NFC')) ?? null;
  }

  private async hosts(): Promise<ViewNode[]> {
    const byHost = new Map<string, SnapshotRef[]>();
    for (const s of await this.source.snapshots()) byHost.set(s.host, [...(byHost.get(s.host) ?? []), s]);
    return [...byHost]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([host, list]) => collection(host, latest(list), `"h-${list.length}-${latest(list).getTime()}"`, { kind: 'host', host }));
  }

  /** The folder name of each of a host's snapshots (as /<host>/ lists them), by snapshot id. */
  async folderNames(host: string): Promise<Map<string, string>> {
    return new Map([...(await this.namedSnapshots(host))].map(([name, s]) => [s.id, name]));
  }

  /** A host's snapshots by folder name, oldest first. */
  private async snapshotsOf(host: string): Promise<Map<string, ViewNode>> {
    const out = new Map<string, ViewNode>();
    for (const [name, s] of await this.namedSnapshots(host)) {
      const etag = `"s-${s.id.slice(0, 32)}"`;
      out.set(name, collection(name, new Date(s.time), etag, { kind: 'tree', tree: s.tree, notice: s.tree === null ? s : null }));
    }
    return out;
  }

  /** A host's snapshots by folder name (its time; two in the same second are told apart by id), oldest first. */
  private async namedSnapshots(host: string): Promise<Map<string, SnapshotRef>> {
    const list = (await this.source.snapshots()).filter((s) => s.host === host);
    list.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
    const out = new Map<string, SnapshotRef>();
    for (const s of list) {
      let name = snapshotFolderName(s.time);
      if (out.has(name)) name = `${name}-${s.id.slice(0, 8)}`;
      out.set(name, s);
    }
    return out;
  }

  /** The text file of a snapshot whose tree this source cannot read. */
  private notice(snapshotFolder: ViewNode, snapshot: SnapshotRef): ViewNode {
    const text = Buffer.from(this.noticeText(snapshot));
    const etag = `"n-${createHash('sha256').update(text).digest('hex').slice(0, 32)}"`;
    return { name: NOTICE_NAME, type: 'file', size: text.length, mtime: snapshotFolder.mtime, etag, of: { kind: 'text', text } };
  }

  private async folder(tree: string | null): Promise<Folder> {
    if (tree === null) return { nodes: [], byName: new Map(), byNfc: null };
    const known = this.trees.get(tree);
    if (known) {
      this.trees.delete(tree);
      this.trees.set(tree, known);
      return known;
    }
    let pending = this.loading.get(tree);
    if (!pending) {
      pending = this.load(tree).finally(() => this.loading.delete(tree));
      this.loading.set(tree, pending);
    }
    return pending;
  }

  private async load(tree: string): Promise<Folder> {
    let entries: TreeEntry[];
    try {
      entries = decodeTree(await this.source.read(tree));
    } catch (err) {
      throw new BrowseError('snapshot-damaged', `snapshot-damaged: folder ${tree.slice(0, 12)} cannot be read (${(err as Error).message})`);
    }
    const nodes = entries.filter((e) => e.type !== 'symlink').map(toNode);
    const folder: Folder = { nodes, byName: new Map(nodes.map((n) => [n.name, n])), byNfc: null };
    this.remember(tree, folder);
    return folder;
  }

  private remember(tree: string, folder: Folder): void {
    this.trees.set(tree, folder);
    this.cachedEntries += folder.nodes.length + 1;
    for (const [id, old] of this.trees) {
      if (this.cachedEntries <= CACHE_ENTRIES || id === tree) break;
      this.trees.delete(id);
      this.cachedEntries -= old.nodes.length + 1;
    }
  }

  /** Each blob of a file with its plain length; the lengths must add up to the size the tree records. */
  private async pieces(content: readonly string[], size: number): Promise<Piece[]> {
    const pieces: Piece[] = [];
    let at = 0;
    for (const id of content) {
      const length = await this.source.plainLength(id);
      if (length === undefined)
        throw new BrowseError('snapshot-damaged', `snapshot-damaged: blob ${id.slice(0, 12)} of this file is missing`);
      pieces.push({ id, start: at, length });
      at += length;
    }
    if (at !== size)
      throw new BrowseError('snapshot-damaged', `snapshot-damaged: the file's blobs hold ${at} bytes, its folder says ${size}`);
    return pieces;
  }
}

interface Piece {
  id: string;
  start: number;
  length: number;
}

/** Blobs read ahead of the one being sent: reads overlap with sending, memory stays a few blobs. */
const READ_AHEAD = 3;

/** The bytes [start, end] of a file from its pieces, reading READ_AHEAD blobs ahead of the one being sent. */
async function* readPieces(source: SnapshotSource, pieces: Piece[], start: number, end: number): AsyncIterable<Buffer> {
  const wanted = pieces.filter((p) => p.start + p.length > start && p.start <= end && p.length > 0);
  const reads = wanted.map(() => null as Promise<Buffer> | null);
  const fetch = (i: number) => {
    const piece = wanted[i];
    if (piece && !reads[i]) reads[i] = source.read(piece.id);
    if (reads[i]) reads[i]!.catch(() => undefined);
  };
  for (let i = 0; i < wanted.length; i++) {
    for (let ahead = 0; ahead <= READ_AHEAD; ahead++) fetch(i + ahead);
    const piece = wanted[i]!;
    const plain = await reads[i]!;
    reads[i] = null;
    const from = Math.max(0, start - piece.start);
    const to = Math.min(piece.length, end - piece.start + 1);
    yield plain.subarray(from, to);
  }
}

function toNode(e: TreeEntry): ViewNode {
  const mtime = new Date(Number(BigInt(e.mtimeNs) / 1_000_000n));
  if (e.type === 'dir')
    return collection(e.name, mtime, `"t-${(e.subtree ?? '').slice(0, 32)}"`, { kind: 'tree', tree: e.subtree ?? null, notice: null });
  const content = e.content ?? [];
  const etag = `"${createHash('sha256').update(content.join('')).digest('hex').slice(0, 32)}"`;
  return {
    name: e.name,
    type: 'file',
    size: e.size,
    mtime,
    etag,
    of: e.baseline ? { kind: 'blobs', content, baseline: true } : { kind: 'blobs', content },
  };
}

function collection(name: string, mtime: Date, etag: string, of: ViewNode['of']): ViewNode {
  return { name, type: 'collection', size: 0, mtime, etag, of };
}

function latest(list: SnapshotRef[]): Date {
  return new Date(list.reduce((max, s) => Math.max(max, Date.parse(s.time)), 0));
}

/**
 * A snapshot's folder name: its time in ISO 8601 basic format, UTC, to the second
 * (20261126T073300Z, as job ids are written). The extended form's colons are not allowed in Windows
 * names, and Finder shows them as slashes.
 */
export function snapshotFolderName(time: string): string {
  return new Date(time)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function defaultNotice(snapshot: SnapshotRef): string {
  return (
    `Snapshot ${snapshot.id.slice(0, 12)} of ${snapshot.host}, taken ${snapshot.time}, is encrypted on your PC:\r\n` +
    'the gateway holds only ciphertext, so it cannot show its files.\r\n\r\n' +
    'To browse it, run on a PC that has your passphrase or key file:\r\n\r\n' +
    '    kura mount\r\n\r\n' +
    'and open the address it prints in Explorer, Finder, GNOME Files or davfs2 (it decrypts on your PC;\r\n' +
    'the key never leaves it). Or restore files with:\r\n\r\n' +
    `    kura restore ${snapshot.id.slice(0, 12)} [path] --target <folder>\r\n`
  );
}
