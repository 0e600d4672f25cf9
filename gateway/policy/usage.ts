import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import type { SpaceGuard } from '../storage/file-area.js';
import { Counter } from './records.js';
import { formatSize } from './contracts.js';

const usageKey = (name: string) => `usage:${name}`;

/**
 * The persistent usage counter per user, and the quota decision. Every change goes through
 * MetaStore.update, so parallel uploads of one user are admitted one reservation at a time and
 * the last bytes of a quota go to exactly one of them.
 */
export class Usage {
  constructor(private readonly meta: MetaStore) {}

  async get(userName: string): Promise<number> {
    return (await this.meta.get(usageKey(userName), Counter)) ?? 0;
  }

  /** A guard that reserves against quotaBytes for one request. */
  guard(userName: string, quotaBytes: number): SpaceGuard {
    return {
      reserve: (bytes) => this.reserve(userName, bytes, quotaBytes),
      release: (bytes) => this.release(userName, bytes),
    };
  }

  /** Adds bytes to the counter; throws quota-exceeded (leaving it unchanged) when they do not fit. */
  async reserve(userName: string, bytes: number, quotaBytes: number): Promise<void> {
    if (bytes <= 0) return;
    await this.meta.update(usageKey(userName), Counter, (used = 0) => {
      if (used + bytes > quotaBytes) {
        throw new KuraError(
          'quota-exceeded',
          `quota-exceeded: ${formatSize(bytes)} more does not fit; ${formatSize(Math.max(0, quotaBytes - used))} of ${formatSize(quotaBytes)} left`,
        );
      }
      return used + bytes;
    });
  }

  async release(userName: string, bytes: number): Promise<void> {
    if (bytes <= 0) return;
    await this.meta.update(usageKey(userName), Counter, (used = 0) => Math.max(0, used - bytes));
  }

  /** Replaces the counter with a measured value; returns the value it had. */
  async reset(userName: string, bytes: number): Promise<number> {
    let before = 0;
    await this.meta.update(usageKey(userName), Counter, (used = 0) => {
      before = used;
      return bytes;
    });
    return before;
  }
}
