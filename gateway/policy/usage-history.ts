import { z } from 'zod';
import type { MetaStore } from '../storage/meta-store.js';

export const UsageSample = z.object({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), bytes: z.number().int().nonnegative() });
export type UsageSample = z.infer<typeof UsageSample>;
const Samples = z.array(UsageSample);
const historyKey = (name: string) => `usage-history:${name}`;
/** About two years of daily samples per user. */
const KEEP_DAYS = 730;

/** One usage sample per user and day (the day's latest figure), for the usage-over-time chart. */
export class UsageHistory {
  constructor(private readonly meta: MetaStore) {}

  /** Records bytes as the user's figure for the (UTC) day of now, replacing an earlier one of that day. */
  async record(userName: string, bytes: number, now = new Date()): Promise<void> {
    const day = now.toISOString().slice(0, 10);
    await this.meta.update(historyKey(userName), Samples, (list = []) => {
      const rest = list.filter((s) => s.day !== day);
      return [...rest, { day, bytes: Math.max(0, Math.round(bytes)) }].sort((a, b) => a.day.localeCompare(b.day)).slice(-KEEP_DAYS);
    });
  }

  /** The samples of a user, oldest first. */
  async list(userName: string): Promise<UsageSample[]> {
    return (await this.meta.get(historyKey(userName), Samples)) ?? [];
  }
}
