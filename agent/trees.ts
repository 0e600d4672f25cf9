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
 * neighbours closer than 256 KiB, at most 16 MiB per request.
 */
export function mergeRuns<T extends { loc: BlobLocation }>(items: T[]): T[][] {
  const sorted = [...items].sort((a, b) => a.loc.offset - b.loc.offset);
  const runs: T[][] = [];
  for (const item of sorted) {
    const run = runs[runs.length - 1];
    const prev = run?.[run.length - 1];
    const end = item.loc.offset + item.loc.length;
    if (run && prev && item.loc.offset - (prev.loc.offset + prev.loc.length) <= MERGE_GAP && end - run[0]!.loc.offset <= MAX_RANGE)
      run.push(item);
    else runs.push([item]);
  }
  return runs;
}

/** Reads blobs by id: index lookup, ranged GETs of their packs, then decryption and verification. */
export class BlobReader {
  constructor(
    readonly remote: Remote,
    private readonly index: Map<string, BlobLocation>,
    private readonly codec: { decode(stored: Buffer, id: string): Buffer },
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
    const byPack = new Map<string, { loc: BlobLocation }[]>();
    for (const id of ids) {
      const loc = this.index.get(id);
      if (!loc) throw new Error(`blob ${id.slice(0, 12)} is not on the gateway`);
      byPack.set(loc.pack, [...(byPack.get(loc.pack) ?? []), { loc }]);
    }
    const runs = [...byPack.values()].flatMap((items) => mergeRuns(items));
    const out = new Map<string, Buffer>();
    const worker = async () => {
      for (let run = runs.shift(); run; run = runs.shift()) {
        const start = run[0]!.loc.offset;
        const last = run[run.length - 1]!.loc;
        const bytes = await this.remote.getFile(packPath(last.pack), { start, end: last.offset + last.length - 1 });
        if (!bytes) throw new Error(`pack ${last.pack.slice(0, 12)} is missing on the gateway`);
        for (const { loc } of run)
          out.set(loc.id, this.codec.decode(bytes.subarray(loc.offset - start, loc.offset - start + loc.length), loc.id));
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    return out;
  }
}

/** Trees by id, decoded once and kept, as name → entry maps. */
export class TreeLoader {
  private readonly cache = new Map<string, Map<string, TreeEntry>>();

  constructor(private readonly blobs: BlobReader | null) {}

  /**
   * Loads every tree reachable from root in a few bulk requests, level by level, instead of one
   * request per folder.
   */
  async preload(root: string | null): Promise<void> {
    let level = root ? [root] : [];
    while (level.length > 0 && this.blobs) {
      const missing = level.filter((id) => !this.cache.has(id));
      for (const [id, bytes] of await this.blobs.readMany(new Set(missing))) this.remember(id, bytes);
      level = level.flatMap((id) => [...this.cache.get(id)!.values()].flatMap((e) => (e.type === 'dir' && e.subtree ? [e.subtree] : [])));
    }
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
