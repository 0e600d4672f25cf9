import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { MetaStore } from '../storage/meta-store.js';

/** Who a web console session belongs to: the operator, or one user (signed in with an app password). */
export const ConsoleSession = z.object({
  kind: z.enum(['operator', 'user']),
  user: z.string().nullable(),
  csrf: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type ConsoleSession = z.infer<typeof ConsoleSession>;

const SESSION_HOURS = 12;
/** Only a hash of the token is stored, so the metadata file does not hold live session tokens. */
const sessionKey = (token: string) => `console-session:${createHash('sha256').update(token).digest('hex')}`;

/**
 * Web console sessions, kept in the metadata store (the gateway keeps no state of its own, so any
 * gateway process behind a load balancer knows them). Each carries its own CSRF token.
 */
export class ConsoleSessions {
  constructor(private readonly meta: MetaStore) {}

  /** Starts a session; returns its token (for the cookie) and the session. */
  async start(kind: ConsoleSession['kind'], user: string | null, now = new Date()): Promise<{ token: string; session: ConsoleSession }> {
    const token = randomBytes(32).toString('base64url');
    const session: ConsoleSession = {
      kind,
      user,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + SESSION_HOURS * 3_600_000).toISOString(),
    };
    await this.meta.set(sessionKey(token), session);
    return { token, session };
  }

  /** The live session of a token, or undefined (unknown, malformed or expired: an expired one is removed). */
  async find(token: string, now = new Date()): Promise<ConsoleSession | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const session = await this.meta.get(sessionKey(token), ConsoleSession).catch(() => undefined);
    if (!session) return undefined;
    if (Date.parse(session.expiresAt) <= now.getTime()) {
      await this.end(token);
      return undefined;
    }
    return session;
  }

  async end(token: string): Promise<void> {
    await this.meta.delete(sessionKey(token));
  }
}
