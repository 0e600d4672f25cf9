import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import type { ZodType } from 'zod';
import { KuraError } from '../errors.js';

/**
 * The metadata store: small JSON records behind keyv (SQLite by default). No cache sits in front of
 * it, so a change made by `kura admin` in another process is seen by the gateway's next request.
 * Read-modify-write through update() is serialised per key within this process.
 */
export class MetaStore {
  private readonly chains = new Map<string, Promise<unknown>>();

  private constructor(private readonly keyv: Keyv) {}

  /** Opens (creating if needed) the SQLite file at path. */
  static async openSqlite(path: string): Promise<MetaStore> {
    const store = new KeyvSqlite({ uri: `sqlite://${path}`, busyTimeout: 10_000 });
    const keyv = new Keyv({ store, namespace: 'kura' });
    keyv.on('error', () => undefined);
    return new MetaStore(keyv);
  }

  /** The record at key, validated by schema; undefined when absent. Throws when it is corrupt. */
  async get<T>(key: string, schema: ZodType<T>): Promise<T | undefined> {
    const raw: unknown = await this.keyv.get(key);
    if (raw === undefined || raw === null) return undefined;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new KuraError('bad-request', `metadata record ${key} is corrupt`);
    return parsed.data;
  }

  async set<T>(key: string, value: T): Promise<void> {
    await this.keyv.set(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.keyv.delete(key);
  }

  /**
   * Reads, transforms and writes one key with no other update() of the same key in between;
   * returns what fn returned. fn may throw to leave the record unchanged.
   */
  async update<T>(key: string, schema: ZodType<T>, fn: (current: T | undefined) => T): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      const value = fn(await this.get(key, schema));
      await this.set(key, value);
      return value;
    });
    const settled = next.catch(() => undefined);
    this.chains.set(key, settled);
    void settled.then(() => {
      if (this.chains.get(key) === settled) this.chains.delete(key);
    });
    return next;
  }

  async close(): Promise<void> {
    await this.keyv.disconnect();
  }
}
