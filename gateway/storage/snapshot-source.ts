import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotRef, SnapshotSource } from '../../browse/source.js';
import { decodeSnapshotBody, decodeSnapshotEnvelope, verifyPlainBlob } from '../../format/index.js';
import { BlobIndex, INDEX_FILE_NAME, type IndexedBlob } from './blob-index.js';
import type { AreaDirs } from './data-dir.js';

const HEX64 = /^[0-9a-f]{64}$/;
/** How long the blob index read from disk is used before its file is looked at again. */
const RECHECK_MS = 1000;

/**
 * One user's snapshots read straight from the gateway's disk, for the /snapshots/ view: the records
 * under kura/snapshots/<host>/<id>, the blob index, and blobs out of their packs, each verified
 * against its id (format: verifyPlainBlob). Only plaintext snapshots have a readable tree; an
 * encrypted one is listed by its envelope (host and time) with tree null.
 */
export class DiskSnapshotSource implements SnapshotSource {
  /** Records are immutable (their name is their hash), so each is parsed once. */
  private readonly records = new Map<string, SnapshotRef | null>();
  private index: { key: string; checked: number; blobs: Map<string, IndexedBlob> } | null = null;

  constructor(private readonly dirs: AreaDirs) {}

  async snapshots(): Promise<SnapshotRef[]> {
    const root = join(this.dirs.kura, 'snapshots');
    const hosts = await readdir(root).catch(() => [] as string[]);
    const out: SnapshotRef[] = [];
    for (const host of hosts) {
      for (const id of await readdir(join(root, host)).catch(() => [] as string[])) {
        if (!HEX64.test(id)) continue;
        const ref = await this.record(join(root, host, id), id);
        if (ref) out.push(ref);
      }
    }
    return out;
  }

  async plainLength(id: string): Promise<number | undefined> {
    return (await this.blobs()).get(id)?.plainLength;
  }

  async read(id: string): Promise<Buffer> {
    const loc = (await this.blobs()).get(id);
    if (!loc) throw new Error(`blob ${id.slice(0, 12)} is not in the index`);
    const file = join(this.dirs.kura, 'packs', loc.pack.slice(0, 2), loc.pack);
    const fh = await open(file, 'r');
    try {
      const stored = Buffer.alloc(loc.length);
      const { bytesRead } = await fh.read(stored, 0, loc.length, loc.offset);
      if (bytesRead !== loc.length) throw new Error(`pack ${loc.pack.slice(0, 12)} is shorter than its index says`);
      return verifyPlainBlob(stored, id, loc.plainLength);
    } finally {
      await fh.close();
    }
  }

  private async record(path: string, id: string): Promise<SnapshotRef | null> {
    if (this.records.has(id)) return this.records.get(id) ?? null;
    let ref: SnapshotRef | null = null;
    try {
      const env = decodeSnapshotEnvelope(await readFile(path));
      const tree = env.encrypted ? null : decodeSnapshotBody(env, null).tree;
      ref = { id, host: env.host, time: env.time, tree };
    } catch {
      // A record that does not decode is not shown (kura check names it); it is not a reason to fail the listing.
    }
    this.records.set(id, ref);
    return ref;
  }

  /**
   * The index as a map, read again only when its file changed (size, inode or time), which is
   * looked at once a second at most: a file's blobs are looked up one by one.
   */
  private async blobs(): Promise<Map<string, IndexedBlob>> {
    if (this.index && Date.now() - this.index.checked < RECHECK_MS) return this.index.blobs;
    const file = join(this.dirs.meta, INDEX_FILE_NAME);
    const st = await stat(file).catch(() => null);
    const key = st ? `${st.ino}-${st.size}-${st.mtimeMs}` : 'none';
    if (this.index?.key === key) {
      this.index.checked = Date.now();
      return this.index.blobs;
    }
    const { entries } = await new BlobIndex(file).since(0);
    const blobs = new Map(entries.map((e) => [e.id, e]));
    this.index = { key, checked: Date.now(), blobs };
    return blobs;
  }
}
