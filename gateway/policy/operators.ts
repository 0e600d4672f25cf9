import { randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { MetaStore } from '../storage/meta-store.js';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;
const OPERATOR_KEY = 'operator:password';
const OperatorRecord = z.object({ salt: z.string(), hash: z.string(), setAt: z.string() });

/** The name the operator signs in with on the web console. */
export const OPERATOR_NAME = 'operator';

/**
 * The operator's password for the web console: separate from every user credential, stored only as
 * a scrypt hash. `kura serve` creates one on the first start and prints it; `kura admin
 * operator-password` replaces it.
 */
export class Operators {
  constructor(private readonly meta: MetaStore) {}

  /** Creates a password when there is none; returns the clear text then (once), null otherwise. */
  async ensurePassword(): Promise<string | null> {
    if (await this.meta.get(OPERATOR_KEY, OperatorRecord)) return null;
    return this.resetPassword();
  }

  /** Replaces the password with a new random one and returns it; signed-in operators stay signed in. */
  async resetPassword(): Promise<string> {
    const password = randomPassword();
    const salt = randomBytes(16);
    const hash = await scryptAsync(password, salt, 32);
    await this.meta.set(OPERATOR_KEY, { salt: salt.toString('base64'), hash: hash.toString('base64'), setAt: new Date().toISOString() });
    return password;
  }

  /** True when name is the operator's and password matches (constant-time). False when none is set. */
  async verify(name: string, password: string): Promise<boolean> {
    const rec = await this.meta.get(OPERATOR_KEY, OperatorRecord);
    if (!rec || name !== OPERATOR_NAME || password.length > 200) return false;
    const hash = await scryptAsync(password, Buffer.from(rec.salt, 'base64'), 32);
    return timingSafeEqual(hash, Buffer.from(rec.hash, 'base64'));
  }
}

/** 24 letters and digits without look-alikes, like app passwords. */
function randomPassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  let out = '';
  for (let i = 0; i < 24; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}
