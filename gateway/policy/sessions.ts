import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import { Counter } from './records.js';

/**
 * The contract's access limit. A session is one TLS connection: its first authenticated request
 * opens it and counts against the user's sessions for the (UTC) day; later requests on the same
 * connection belong to it.
 */
export class Sessions {
  constructor(private readonly meta: MetaStore) {}

  /** Counts a new session; throws access-limit-reached when the day's allowance is used up. */
  async open(userName: string, perDay: number | null, now: Date): Promise<number> {
    const key = `sessions:${userName}:${now.toISOString().slice(0, 10)}`;
    return this.meta.update(key, Counter, (n = 0) => {
      if (perDay !== null && n >= perDay) {
        throw new KuraError(
          'access-limit-reached',
          `access-limit-reached: the contract allows ${perDay} sessions a day and they are used up`,
        );
      }
      return n + 1;
    });
  }
}
