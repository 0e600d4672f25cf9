import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  BlobCodec,
  decodeConfig,
  decodeIndex,
  decodeKeyFile,
  encodeKeyFile,
  decodeSnapshotBody,
  decodeSnapshotEnvelope,
  encodeConfig,
  FormatError,
  generateKeys,
  unwrapKeys,
  wrapKeys,
  type ChunkerParams,
  type IndexEntry,
  type MasterKeys,
} from '../format/index.js';
import { DEFAULT_CHUNKER } from './chunker.js';
import type { Remote } from './remote.js';
import { readSealed, writeSealed } from './sealed-file.js';

export class RepositoryError extends Error {}

/** One index entry as the gateway reports it (format/index-entry.ts). */
export type BlobLocation = IndexEntry;

export interface SnapshotInfo {
  id: string;
  host: string;
  time: string;
  type: string;
  encrypted: boolean;
  bytes: Buffer;
}

export interface KeySource {
  passphrase?: string;
  keyFile?: string;
}

/**
 * The user's backup repository as the agent sees it through the gateway: the config, the keys, the
 * blob index and the snapshot records under /.kura/.
 */
export interface OpenOptions {
  /** A local copy of the blob index, so only entries added since it was written travel (see index()). */
  indexCache?: string;
  /**
   * Fetched while the key is derived, for a command that will need them at once: the index, and the
   * snapshots of one host ('' for every host).
   */
  prefetch?: { index?: boolean; snapshotsOf?: string };
  /**
   * The index is not read before this settles: a backup records its job first, so a prune that
   * takes packs out of the index meanwhile sees the backup running and waits for it (agent/prune.ts).
   */
  indexAfter?: Promise<unknown>;
}

export class Repository {
  /** The index as last read (kept for refreshIndex), and what open() fetched ahead, taken once. */
  private indexState: CachedIndex | null = null;
  /** Snapshot records already read (a record never changes: its name is its hash), for listing again (kura mount). */
  private readonly records = new Map<string, SnapshotInfo>();
  private prefetched: { index?: Promise<Map<string, BlobLocation>>; snapshots?: { of: string; list: Promise<SnapshotInfo[]> } } = {};

  private constructor(
    readonly remote: Remote,
    readonly keys: MasterKeys | null,
    readonly codec: BlobCodec,
    /** The chunker parameters fixed when the repository was created (dedup needs the same cuts). */
    readonly chunker: ChunkerParams,
    private readonly indexCache: string | null,
  ) {}

  /**
   * Opens an initialised repository with the key source; throws RepositoryError in plain words.
   * The config and the wrapped keys are asked for together, and what opts.prefetch names is fetched
   * while scrypt runs, so opening costs about one round trip plus the key derivation.
   */
  static async open(remote: Remote, source: KeySource, opts: OpenOptions = {}): Promise<Repository> {
    const records = source.passphrase && !source.keyFile ? handled(fetchKeyRecords(remote)) : null;
    const early = new Repository(remote, null, new BlobCodec(null), DEFAULT_CHUNKER, opts.indexCache ?? null);
    const after = opts.indexAfter?.catch(() => undefined);
    const index = opts.prefetch?.index ? handled(after ? after.then(() => early.index()) : early.index()) : undefined;
    const of = opts.prefetch?.snapshotsOf;
    const snapshots = of !== undefined ? { of, list: handled(early.snapshots(of || undefined)) } : undefined;
    const configBytes = await remote.getFile('/.kura/config');
    if (!configBytes) throw new RepositoryError('this area has no backup repository yet: run `kura key init` first');
    const config = decodeConfig(configBytes);
    const keys = config.encrypted ? await loadKeys(remote, source, records) : null;
    const repo = new Repository(remote, keys, new BlobCodec(keys, config.boundIds), config.chunker, opts.indexCache ?? null);
    repo.prefetched = { index: index?.then((map) => ((repo.indexState = early.indexState), map)), snapshots };
    return repo;
  }

  /** Creates the repository: plaintext, or encrypted with a passphrase (wrapped key kept on the gateway) or a key file. */
  static async init(
    remote: Remote,
    opts: KeySource & { plaintext?: boolean; writeKeyFile?: (json: Buffer) => Promise<void> },
  ): Promise<void> {
    if (await remote.getFile('/.kura/config')) throw new RepositoryError('this area already has a backup repository');
    if (!opts.plaintext) {
      const keys = generateKeys();
      if (opts.passphrase) await putWrappedKey(remote, keys, opts.passphrase);
      else if (opts.writeKeyFile) await opts.writeKeyFile(encodeKeyFile(keys));
      else throw new RepositoryError('give a passphrase (KURA_PASSPHRASE) or a key file (KURA_KEY_FILE), or choose --plaintext');
    }
    await remote.putFile('/.kura/config', encodeConfig({ encrypted: !opts.plaintext, chunker: { ...DEFAULT_CHUNKER } }));
  }

  /**
   * Every indexed blob. With the cache file, only what was added since the cached generation travels;
   * a gateway whose generation went backwards (index rebuilt) is read again from the start.
   */
  async index(): Promise<Map<string, BlobLocation>> {
    const ahead = this.prefetched.index;
    this.prefetched.index = undefined;
    if (ahead) return ahead;
    const cached = this.indexCache ? await readCachedIndex(this.indexCache) : null;
    const entries = await this.update(cached);
    return new Map(entries.map((e) => [e.id, e]));
  }

  /** Every index entry as the gateway holds it now (one per pack a blob is in), read again. */
  async indexEntries(): Promise<BlobLocation[]> {
    await this.index();
    return this.indexState?.entries ?? [];
  }

  /** Brings the cache file up to date with what was added since index() (after a backup); no-op without a cache. */
  async refreshIndex(): Promise<void> {
    if (this.indexCache) await this.update(this.indexState ?? (await readCachedIndex(this.indexCache)));
  }

  /**
   * The entries after asking the gateway for those newer than `cached`; writes the cache when they
   * changed. A copy of another epoch (packs left the index since: prune, a rebuild) is dropped: the
   * gateway then answers from generation 0.
   */
  private async update(cached: CachedIndex | null): Promise<BlobLocation[]> {
    let page = decodeIndex(await this.remote.getIndex(cached?.generation ?? 0, cached?.epoch));
    const base = cached && cached.epoch === page.epoch ? cached : null;
    let entries = base && page.entries.length > 0 ? [...base.entries, ...page.entries] : (base?.entries ?? page.entries);
    if (base && page.generation < base.generation) {
      page = decodeIndex(await this.remote.getIndex(0));
      entries = page.entries;
    }
    this.indexState = { generation: page.generation, epoch: page.epoch, entries };
    const unchanged = base !== null && page.generation === base.generation && page.entries.length === 0;
    if (this.indexCache && !unchanged) await writeCachedIndex(this.indexCache, this.indexState);
    return entries;
  }

  /** Snapshot records of one host, or of every host, oldest first. */
  async snapshots(host?: string): Promise<SnapshotInfo[]> {
    const ahead = this.prefetched.snapshots;
    this.prefetched.snapshots = undefined;
    if (ahead && ahead.of === (host ?? '')) return ahead.list;
    const hosts = host ? [host] : (await this.remote.list('/.kura/snapshots/')).filter((h) => h !== '');
    const paths = (
      await Promise.all(hosts.map(async (h) => (await this.remote.list(`/.kura/snapshots/${h}/`)).map((id) => ({ h, id }))))
    ).flat();
    const out: SnapshotInfo[] = [];
    await inParallel(paths, 4, async ({ h, id }) => {
      const known = this.records.get(`${h}/${id}`);
      if (known) return void out.push(known);
      const bytes = await this.remote.getFile(`/.kura/snapshots/${h}/${id}`);
      if (!bytes) return;
      const env = decodeSnapshotEnvelope(bytes);
      const info = { id, host: env.host, time: env.time, type: env.type, encrypted: env.encrypted, bytes };
      this.records.set(`${h}/${id}`, info);
      out.push(info);
    });
    return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  }

  body(snapshot: SnapshotInfo) {
    return decodeSnapshotBody(decodeSnapshotEnvelope(snapshot.bytes), this.keys);
  }
}

/** The agent's copy of the blob index: what the gateway held at a generation of an epoch. */
interface CachedIndex {
  generation: number;
  epoch: string;
  entries: BlobLocation[];
}

/** The local index cache (a sealed file, see sealed-file.ts): checked when it came from the gateway. */
async function readCachedIndex(file: string): Promise<CachedIndex | null> {
  const page = (await readSealed(file)) as { generation?: unknown; epoch?: unknown; entries?: unknown } | null;
  return page && typeof page.generation === 'number' && typeof page.epoch === 'string' && Array.isArray(page.entries)
    ? (page as CachedIndex)
    : null;
}

async function writeCachedIndex(file: string, page: CachedIndex): Promise<void> {
  await writeSealed(file, { generation: page.generation, epoch: page.epoch, entries: page.entries });
}

/** The wrapped key records on the gateway (one per passphrase). */
async function fetchKeyRecords(remote: Remote): Promise<Buffer[]> {
  const ids = await remote.list('/.kura/keys/');
  const records = await Promise.all(ids.map((id) => remote.getFile(`/.kura/keys/${id}`)));
  return records.filter((r): r is Buffer => r !== null);
}

async function loadKeys(remote: Remote, source: KeySource, records: Promise<Buffer[]> | null): Promise<MasterKeys> {
  if (source.keyFile) {
    try {
      return decodeKeyFile(await readFile(source.keyFile));
    } catch (err) {
      throw new RepositoryError(`cannot use the key file ${source.keyFile}: ${(err as Error).message}`);
    }
  }
  if (!source.passphrase) throw new RepositoryError('this repository is encrypted: set KURA_PASSPHRASE or KURA_KEY_FILE');
  for (const record of await (records ?? fetchKeyRecords(remote))) {
    try {
      return await unwrapKeys(record, source.passphrase);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
    }
  }
  throw new RepositoryError("wrong passphrase: it opens none of this repository's keys");
}

/** Runs fn over items, at most `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

/** Marks a promise as handled now (it is awaited later, or dropped when opening fails). */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Wraps the keys under a passphrase and stores the record on the gateway; returns its id. */
export async function putWrappedKey(remote: Remote, keys: MasterKeys, passphrase: string): Promise<string> {
  const record = await wrapKeys(keys, passphrase);
  const id = createHash('sha256').update(record).digest('hex');
  await remote.putFile(`/.kura/keys/${id}`, record);
  return id;
}
