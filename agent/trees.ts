import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { replaceFile } from '../common/replace-file.js';
import { decodeTree, type TreeEntry } from '../format/index.js';
import type { BlobLocation } from './repository.js';
import type { Remote } from './remote.js';

const MERGE_GAP = 256 * 1024;
const MAX_RANGE = 16 << 20;

export function packPath(id: string): string {
  return `/.kura/packs/${id.slice(0, 2)}/${id}`;
}

/**
 * Groups blob locations of one pack (sorted by offset) into runs that one ranged GET can fetch:
 * neighbours closer than 256 KiB, at most maxRange bytes per request (16 MiB unless the caller
 * wants smaller requests; a single larger blob gets a request of its own).
 */
export function mergeRuns<T extends { loc: BlobLocation }>(items: T[], maxRange = MAX_RANGE): T[][] {
  const sorted = [...items].sort((a, b) => a.loc.offset - b.loc.offset);
  const runs: T[][] = [];
  for (const item of sorted) {
    const run = runs[runs.length - 1];
    const prev = run?.[run.length - 1];
    const end = item.loc.offset + item.loc.length;
    if (run && prev && item.loc.offset - (prev.loc.offset + prev.loc.length) <= MERGE_GAP && end - run[0]!.loc.offset <= maxRange)
      run.push(item);
    else runs.push([item]);
  }
  return runs;
}

/**
 * Stored tree blobs kept on the PC between backups, exactly as the gateway holds them (encrypted in
 * an encrypted repository), so the next backup reads its parent's trees from one local file instead
 * of the network. Every blob from here is still decoded and checked against its id, and one that
 * fails is fetched from the gateway instead: a damaged or stale cache costs time, never correctness.
 * File layout: repeated [id: 32 bytes][length: u32 LE][stored bytes].
 */
export class TreeCache {
  private readonly stored = new Map<string, Buffer>();

  private constructor(private readonly file: string | null) {}

  /** The cache in file (empty when the file is missing or unreadable); null file: in memory only. */
  static async load(file: string | null): Promise<TreeCache> {
    const cache = new TreeCache(file);
    const bytes = file ? await readFile(file).catch(() => null) : null;
    for (let at = 0; bytes && at + 36 <= bytes.length;) {
      const length = bytes.readUInt32LE(at + 32);
      if (at + 36 + length > bytes.length) break;
      cache.stored.set(bytes.toString('hex', at, at + 32), bytes.subarray(at + 36, at + 36 + length));
      at += 36 + length;
    }
    return cache;
  }

  get(id: string): Buffer | undefined {
    return this.stored.get(id);
  }

  keep(id: string, stored: Buffer): void {
    this.stored.set(id, stored);
  }

  forget(id: string): void {
    this.stored.delete(id);
  }

  /** Writes the blobs of ids (a new snapshot's trees) in place of the file's content, atomically. */
  async save(ids: Iterable<string>): Promise<void> {
    if (!this.file) return;
    const parts: Buffer[] = [];
    for (const id of ids) {
      const stored = this.stored.get(id);
      if (!stored) continue;
      const head = Buffer.alloc(36);
      head.write(id, 0, 'hex');
      head.writeUInt32LE(stored.length, 32);
      parts.push(head, stored);
    }
    await mkdir(dirname(this.file), { recursive: true });
    await replaceFile(this.file, Buffer.concat(parts));
  }
}

/** Opens stored blobs off the calling thread (restore's DecodePool): plaintexts in order, null for one that does not open. */
export interface BlobOpener {
  open(items: { id: string; stored: Uint8Array }[]): Promise<(Buffer | null)[]>;
}

/**
 * Cached blobs are opened by the opener, when there is one, in batches of this many, once at least
 * that many are asked for at once: the batches go to the workers in turn, and each batch's blobs are
 * handed on (a tree decoded) on this thread while the next batches are still being opened.
 */
const OPEN_BATCH = 128;

/** Reads blobs by id: index lookup, ranged GETs of their packs, then decryption and verification. */
export class BlobReader {
  constructor(
    readonly remote: Remote,
    private readonly index: Map<string, BlobLocation>,
    private readonly codec: { decode(stored: Buffer, id: string): Buffer },
    /** Where tree blobs are looked up first, and kept once fetched. */
    private readonly cache: TreeCache | null = null,
    /** Where blobs from the cache are opened, when not on this thread. */
    private readonly opener: BlobOpener | null = null,
  ) {}

  location(id: string): BlobLocation | undefined {
    return this.index.get(id);
  }

  async read(id: string): Promise<Buffer> {
    const found = await this.readMany([id]);
    return found.get(id)!;
  }

  /** Many blobs with as few requests as possible (one per run of neighbours in a pack, 4 at a time). */
  async readMany(ids: Iterable<string>): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    await this.readEach(ids, (id, plain) => out.set(id, plain));
    return out;
  }

  /**
   * readMany, but each blob is handed to `each` as soon as it is read, in no set order. The cached
   * ones come first; one that does not open is forgotten and fetched like the others.
   */
  async readEach(ids: Iterable<string>, each: (id: string, plain: Buffer) => void): Promise<void> {
    const byPack = new Map<string, { loc: BlobLocation }[]>();
    const fetch = (id: string) => {
      const loc = this.index.get(id);
      if (!loc) throw new Error(`blob ${id.slice(0, 12)} is not on the gateway`);
      const inPack = byPack.get(loc.pack);
      if (inPack) inPack.push({ loc });
      else byPack.set(loc.pack, [{ loc }]);
    };
    const cached: { id: string; stored: Buffer }[] = [];
    for (const id of ids) {
      const stored = this.cache?.get(id);
      if (stored) cached.push({ id, stored });
      else fetch(id);
    }
    const failed = await this.openCached(cached, each);
    for (const id of failed) {
      this.cache!.forget(id);
      fetch(id);
    }
    const runs = [...byPack.values()].flatMap((items) => mergeRuns(items));
    const worker = async () => {
      for (let run = runs.shift(); run; run = runs.shift()) {
        const start = run[0]!.loc.offset;
        const last = run[run.length - 1]!.loc;
        const bytes = await this.remote.getFile(packPath(last.pack), { start, end: last.offset + last.length - 1 });
        if (!bytes) throw new Error(`pack ${last.pack.slice(0, 12)} is missing on the gateway`);
        for (const { loc } of run) {
          const stored = bytes.subarray(loc.offset - start, loc.offset - start + loc.length);
          each(loc.id, this.codec.decode(stored, loc.id));
          if (this.cache && loc.type === 't') this.cache.keep(loc.id, Buffer.from(stored));
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  /** Opens cached blobs (by the opener for a large batch), hands each to `each`; returns the ids that did not open. */
  private async openCached(items: { id: string; stored: Buffer }[], each: (id: string, plain: Buffer) => void): Promise<string[]> {
    const failed: string[] = [];
    const opener = this.opener;
    if (!opener || items.length < OPEN_BATCH) {
      for (const { id, stored } of items) {
        let plain: Buffer | null = null;
        try {
          plain = this.codec.decode(stored, id);
        } catch {
          failed.push(id);
        }
        if (plain) each(id, plain);
      }
      return failed;
    }
    const batches = Array.from({ length: Math.ceil(items.length / OPEN_BATCH) }, (_, i) =>
      items.slice(i * OPEN_BATCH, (i + 1) * OPEN_BATCH),
    );
    await Promise.all(
      batches.map(async (batch) => {
        const plains = await opener.open(batch);
        batch.forEach(({ id }, i) => {
          const plain = plains[i];
          if (plain) each(id, plain);
          else failed.push(id);
        });
      }),
    );
    return failed;
  }
}

/** Trees by id, decoded once and kept, as name → entry maps. */
export class TreeLoader {
  private readonly cache = new Map<string, Map<string, TreeEntry>>();

  constructor(private readonly blobs: BlobReader | null) {}

  /**
   * Loads every tree reachable from root in a few bulk requests, level by level, instead of one
   * request per folder. With `descend`, only the folders whose '/'-separated path (from root) it
   * accepts are loaded below root: a restore of one folder does not fetch the whole snapshot's trees.
   */
  async preload(root: string | null, descend: (path: string) => boolean = () => true): Promise<void> {
    let level = root ? [{ id: root, path: '' }] : [];
    while (level.length > 0 && this.blobs) {
      const missing = level.filter(({ id }) => !this.cache.has(id)).map(({ id }) => id);
      await this.blobs.readEach(new Set(missing), (id, bytes) => void this.remember(id, bytes));
      level = level.flatMap(({ id, path }) => this.subfolders(id, path).filter((sub) => descend(sub.path)));
    }
  }

  /** The folders of a loaded tree, with their paths under `path`. */
  private subfolders(id: string, path: string): { id: string; path: string }[] {
    return [...this.cache.get(id)!.values()].flatMap((e) =>
      e.type === 'dir' && e.subtree ? [{ id: e.subtree, path: path ? `${path}/${e.name}` : e.name }] : [],
    );
  }

  async entries(id: string | null): Promise<Map<string, TreeEntry>> {
    if (!id || !this.blobs) return new Map();
    return this.cache.get(id) ?? this.remember(id, await this.blobs.read(id));
  }

  private remember(id: string, bytes: Buffer): Map<string, TreeEntry> {
    const map = new Map(decodeTree(bytes).map((e) => [e.name, e]));
    this.cache.set(id, map);
    return map;
  }
}
