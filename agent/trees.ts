import { decodeTree, type TreeEntry } from '../format/index.js';
import type { BlobLocation } from './repository.js';
import type { Remote } from './remote.js';

/** Reads any blob by id: index lookup, a ranged GET of its pack, then decryption and verification. */
export class BlobReader {
  constructor(
    private readonly remote: Remote,
    private readonly index: Map<string, BlobLocation>,
    private readonly codec: { decode(stored: Buffer, id: string): Buffer },
  ) {}

  location(id: string): BlobLocation | undefined {
    return this.index.get(id);
  }

  async read(id: string): Promise<Buffer> {
    const loc = this.index.get(id);
    if (!loc) throw new Error(`blob ${id.slice(0, 12)} is not on the gateway`);
    const stored = await this.remote.getFile(packPath(loc.pack), { start: loc.offset, end: loc.offset + loc.length - 1 });
    if (!stored) throw new Error(`pack ${loc.pack.slice(0, 12)} is missing on the gateway`);
    return this.codec.decode(stored, id);
  }
}

export function packPath(id: string): string {
  return `/.kura/packs/${id.slice(0, 2)}/${id}`;
}

/** Trees by id, decoded once and kept, as name → entry maps. */
export class TreeLoader {
  private readonly cache = new Map<string, Map<string, TreeEntry>>();

  constructor(private readonly blobs: BlobReader | null) {}

  async entries(id: string | null): Promise<Map<string, TreeEntry>> {
    if (!id || !this.blobs) return new Map();
    const known = this.cache.get(id);
    if (known) return known;
    const map = new Map(decodeTree(await this.blobs.read(id)).map((e) => [e.name, e]));
    this.cache.set(id, map);
    return map;
  }
}
