import type { Remote } from './remote.js';
import type { SnapshotInfo } from './repository.js';

/**
 * A retention policy, as restic's `forget --keep-*`: keep the `last` newest snapshots, and for each
 * of the last N hours/days/weeks/months/years that have snapshots, the newest one of that period.
 * A snapshot kept by any rule is kept. Periods are the PC's local time; weeks are ISO weeks.
 */
export interface KeepPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export const KEEP_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type KeepRule = (typeof KEEP_RULES)[number];

export interface Kept {
  snapshot: SnapshotInfo;
  /** The rules that keep it, e.g. ['last', 'daily']. */
  reasons: KeepRule[];
}

export interface ForgetPlan {
  keep: Kept[];
  forget: SnapshotInfo[];
}

/** Whether the policy names at least one rule with a count above 0 (an empty policy would forget everything). */
export function hasRules(policy: KeepPolicy): boolean {
  return KEEP_RULES.some((r) => (policy[r] ?? 0) > 0);
}

/**
 * Which snapshots of one host the policy keeps and which it forgets, newest first in both lists.
 * Throws when the policy has no rule, so a typo never forgets a whole history.
 */
export function planForget(snapshots: readonly SnapshotInfo[], policy: KeepPolicy): ForgetPlan {
  if (!hasRules(policy)) throw new Error('give at least one --keep-* rule (or snapshot ids): an empty policy would forget every snapshot');
  const newestFirst = [...snapshots].sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
  const reasons = new Map<string, KeepRule[]>(newestFirst.map((s) => [s.id, []]));
  for (const rule of KEEP_RULES) {
    let left = policy[rule] ?? 0;
    let lastPeriod: string | null = null;
    for (const s of newestFirst) {
      if (left <= 0) break;
      const period = rule === 'last' ? s.id : periodOf(rule, new Date(s.time));
      if (period === lastPeriod) continue;
      lastPeriod = period;
      reasons.get(s.id)!.push(rule);
      left--;
    }
  }
  const keep: Kept[] = [];
  const forget: SnapshotInfo[] = [];
  for (const s of newestFirst) {
    const why = reasons.get(s.id)!;
    if (why.length > 0) keep.push({ snapshot: s, reasons: why });
    else forget.push(s);
  }
  return { keep, forget };
}

/** The period a time falls in for a rule, as a string that is equal exactly within one period. */
function periodOf(rule: Exclude<KeepRule, 'last'>, t: Date): string {
  const y = t.getFullYear();
  const m = t.getMonth() + 1;
  const d = t.getDate();
  switch (rule) {
    case 'hourly':
      return `${y}-${m}-${d} ${t.getHours()}`;
    case 'daily':
      return `${y}-${m}-${d}`;
    case 'weekly': {
      const { year, week } = isoWeek(t);
      return `${year}-W${week}`;
    }
    case 'monthly':
      return `${y}-${m}`;
    case 'yearly':
      return String(y);
  }
}

/** The ISO 8601 week of a local date (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(t: Date): { year: number; week: number } {
  const date = new Date(t.getFullYear(), t.getMonth(), t.getDate());
  const weekday = (date.getDay() + 6) % 7;
  date.setDate(date.getDate() - weekday + 3);
  const firstThursday = new Date(date.getFullYear(), 0, 4);
  const days = (date.getTime() - firstThursday.getTime()) / 86_400_000;
  const week = 1 + Math.round((days - 3 + ((firstThursday.getDay() + 6) % 7)) / 7);
  return { year: date.getFullYear(), week };
}

/** The plan for each host's snapshots (snapshots of other hosts are never weighed against each other). */
export function planByHost(snapshots: readonly SnapshotInfo[], policy: KeepPolicy): Map<string, ForgetPlan> {
  const hosts = new Map<string, SnapshotInfo[]>();
  for (const s of snapshots) hosts.set(s.host, [...(hosts.get(s.host) ?? []), s]);
  return new Map([...hosts].map(([host, list]) => [host, planForget(list, policy)]));
}

/** Deletes the snapshot records (needs the delete right); their blobs stay until prune. */
export async function forgetSnapshots(
  remote: Remote,
  snapshots: readonly SnapshotInfo[],
  onForgot?: (s: SnapshotInfo) => void,
): Promise<void> {
  for (const s of snapshots) {
    await remote.remove(`/.kura/snapshots/${s.host}/${s.id}`);
    onForgot?.(s);
  }
}
