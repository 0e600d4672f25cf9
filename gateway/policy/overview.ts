import { BACKUP_JOB_TYPES, shownState, type JobRecord } from '../../format/index.js';
import { readJobs, readSnapshots } from './area-records.js';
import type { Policy } from './policy.js';

/** One backed-up host of one user: its last successful backup, its last job and its snapshot count. */
export interface HostStatus {
  user: string;
  host: string;
  lastSuccess: string | null;
  lastJob: JobRecord | null;
  snapshots: number;
}

/** What the operator's dashboard flags. */
export interface Overview {
  nearQuota: { user: string; usedBytes: number; quotaBytes: number; ratio: number }[];
  expiring: { user: string; validUntil: string; days: number }[];
  missed: (HostStatus & { hoursSince: number | null })[];
  /** How many hosts have backed up or tried to, so "none missed" and "none yet" can be told apart. */
  hosts: number;
  thresholds: Thresholds;
}

export interface Thresholds {
  nearQuotaRatio: number;
  expiringDays: number;
  missedHours: number;
}

/** The defaults; KURA_MISSED_BACKUP_HOURS changes the missed-backup threshold. */
export function defaultThresholds(env = process.env): Thresholds {
  const hours = Number(env.KURA_MISSED_BACKUP_HOURS);
  return { nearQuotaRatio: 0.9, expiringDays: 30, missedHours: Number.isFinite(hours) && hours > 0 ? hours : 48 };
}

/** Every host of every user (or of one user), from the snapshot records and the backup log. */
export async function hostStatuses(policy: Policy, userName?: string): Promise<HostStatus[]> {
  const users = userName ? [await policy.users.get(userName)] : await policy.users.list();
  const out: HostStatus[] = [];
  for (const user of users) {
    const [jobs, snapshots] = await Promise.all([readJobs(policy.layout, user), readSnapshots(policy.layout, user)]);
    const hosts = new Set([...jobs.map((j) => j.host), ...snapshots.map((s) => s.host)]);
    for (const host of [...hosts].sort()) {
      const mine = jobs.filter((j) => j.host === host && BACKUP_JOB_TYPES.has(j.type));
      const succeeded = mine.filter((j) => j.state === 'succeeded').map((j) => j.endedAt ?? j.startedAt);
      const snapTimes = snapshots.filter((s) => s.host === host).map((s) => s.time);
      const lastSuccess = [...succeeded, ...snapTimes].sort().at(-1) ?? null;
      out.push({ user: user.name, host, lastSuccess, lastJob: mine.at(-1) ?? null, snapshots: snapTimes.length });
    }
  }
  return out;
}

/** Users near their quota, contracts ending soon, and hosts whose last successful backup is too old. */
export async function operatorOverview(policy: Policy, now = new Date(), t = defaultThresholds()): Promise<Overview> {
  const overview: Overview = { nearQuota: [], expiring: [], missed: [], hosts: 0, thresholds: t };
  for (const user of await policy.users.list()) {
    const contract = await policy.contracts.find(user.name);
    if (!contract || user.disabled) continue;
    const used = await policy.usage.get(user.name);
    const ratio = contract.quotaBytes === 0 ? 1 : used / contract.quotaBytes;
    if (ratio >= t.nearQuotaRatio) overview.nearQuota.push({ user: user.name, usedBytes: used, quotaBytes: contract.quotaBytes, ratio });
    const left = contract.validUntil ? (Date.parse(contract.validUntil) - now.getTime()) / 86_400_000 : Infinity;
    if (left <= t.expiringDays && contract.status === 'active') {
      overview.expiring.push({ user: user.name, validUntil: contract.validUntil as string, days: Math.floor(left) });
    }
  }
  const hosts = await hostStatuses(policy);
  overview.hosts = hosts.length;
  for (const h of hosts) {
    const hoursSince = h.lastSuccess ? (now.getTime() - Date.parse(h.lastSuccess)) / 3_600_000 : null;
    if (hoursSince === null || hoursSince > t.missedHours) overview.missed.push({ ...h, hoursSince });
  }
  return overview;
}

/** The result to show for a job: its state, or interrupted when a running job went silent. */
export function jobResult(job: JobRecord, now: number, staleMs?: number): string {
  return shownState(job, now, staleMs);
}

/** Records today's usage sample of every user (the chart's daily points); returns how many were recorded. */
export async function sampleUsage(policy: Policy, now = new Date()): Promise<number> {
  const users = await policy.users.list();
  for (const u of users) await policy.usageHistory.record(u.name, await policy.usage.get(u.name), now);
  return users.length;
}

/** Every user's jobs in one list, oldest first, each with its user. */
export async function allJobs(policy: Policy): Promise<(JobRecord & { user: string })[]> {
  const out: (JobRecord & { user: string })[] = [];
  for (const user of await policy.users.list()) {
    for (const j of await readJobs(policy.layout, user)) out.push({ ...j, user: user.name });
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
}
