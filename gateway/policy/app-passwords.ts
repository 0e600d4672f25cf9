import { createHash, randomBytes, randomInt, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import { AppPasswordRecord } from './records.js';
import type { Users } from './users.js';
import { z } from 'zod';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;
const listKey = (name: string) => `app-passwords:${name}`;
const List = z.array(AppPasswordRecord);

/** App passwords for clients that cannot present a certificate; only scrypt hashes are stored. */
export class AppPasswords {
  constructor(
    private readonly meta: MetaStore,
    private readonly users: Users,
  ) {}

  /** Creates a random password for the user; the clear text is returned once. */
  async add(userName: string, label = 'app password'): Promise<{ id: string; password: string }> {
    await this.users.get(userName);
    const password = newPassword();
    const salt = randomBytes(16);
    const hash = await scryptAsync(password, salt, 32);
    const record: AppPasswordRecord = {
      id: randomUUID().slice(0, 8),
      label,
      salt: salt.toString('base64'),
      hash: hash.toString('base64'),
      createdAt: new Date().toISOString(),
    };
    await this.meta.update(listKey(userName), List, (l = []) => [...l, record]);
    return { id: record.id, password };
  }

  /** Revokes one password by id, or all of the user's passwords when id is omitted; returns how many. */
  async revoke(userName: string, id?: string): Promise<number> {
    await this.users.get(userName);
    const before = (await this.meta.get(listKey(userName), List)) ?? [];
    const after = id ? before.filter((r) => r.id !== id) : [];
    if (id && after.length === before.length) throw new KuraError('not-found', `no app password ${id}`);
    await this.meta.set(listKey(userName), after);
    return before.length - after.length;
  }

  async list(userName: string): Promise<AppPasswordRecord[]> {
    return (await this.meta.get(listKey(userName), List)) ?? [];
  }

  /**
   * True when password matches one of the user's current app passwords (constant-time comparison).
   * The records are read on every call, so a revocation counts at once; only the scrypt result for a
   * (salt, password) pair is remembered, because deriving it costs tens of milliseconds per request.
   */
  async verify(userName: string, password: string): Promise<boolean> {
    for (const rec of await this.list(userName)) {
      const hash = await this.derive(password, rec.salt);
      if (timingSafeEqual(hash, Buffer.from(rec.hash, 'base64'))) return true;
    }
    return false;
  }

  private readonly derived = new Map<string, Buffer>();

  private async derive(password: string, salt: string): Promise<Buffer> {
    const key = `${salt}:${createHash('sha256').update(password).digest('base64')}`;
    const known = this.derived.get(key);
    if (known) return known;
    const hash = await scryptAsync(password, Buffer.from(salt, 'base64'), 32);
    if (this.derived.size > 1000) this.derived.clear();
    this.derived.set(key, hash);
    return hash;
  }
}

/**
 * 24 characters from letters and digits without look-alikes (about 140 bits): nothing a shell or a
 * command line reads as an option (base64url's leading '-' made litmus take a password for a flag).
 */
function newPassword(): string {
  let out = '';
  for (let i = 0; i < 24; i++) out += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
  return out;
}

const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
