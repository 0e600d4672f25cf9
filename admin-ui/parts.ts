import type { JobRecord } from '../format/index.js';
import { formatSize } from '../gateway/policy/contracts.js';
import type { ContractRecord } from '../gateway/policy/records.js';
import type { SnapshotSummary } from '../gateway/policy/area-records.js';
import type { HostStatus } from '../gateway/policy/overview.js';
import { jobResult } from '../gateway/policy/overview.js';
import { html, plural, shortTime, table, type Html } from './html.js';

/** How long a running job may stay silent before it shows as interrupted (KURA_JOB_STALE_SECONDS, as the CLI). */
function staleMs(): number | undefined {
  const s = Number(process.env.KURA_JOB_STALE_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
}

export function badge(text: string, kind = text): Html {
  return html`<span class="badge ${kind.split(' ')[0] ?? ''}">${text}</span>`;
}

export const JOB_RESULTS = ['succeeded', 'failed', 'running', 'interrupted', 'cancelled'] as const;

export function resultOf(job: JobRecord, now = Date.now()): string {
  return jobResult(job, now, staleMs());
}

/** The backup log, newest first; with `user` set for each job when it spans several users. */
export function jobsTable(jobs: (JobRecord & { user?: string })[], empty: string): Html {
  const now = Date.now();
  const withUser = jobs.some((j) => j.user !== undefined);
  const rows = [...jobs]
    .reverse()
    .map((j) => [
      ...(withUser ? [html`<a href="/console/admin/users/${j.user ?? ''}">${j.user ?? ''}</a>`] : []),
      shortTime(j.startedAt),
      j.host,
      j.type,
      badge(resultOf(j, now)),
      html`<span class="num">${j.files}</span>`,
      formatSize(j.bytes),
      formatSize(j.bytesUploaded),
      j.error ? html`<span class="small">${j.error}</span>` : html`<span class="mono small">${j.snapshot?.slice(0, 12) ?? '–'}</span>`,
    ]);
  return table(
    [...(withUser ? ['User'] : []), 'Started', 'Host', 'Type', 'Result', 'Files', 'Size', 'Uploaded', 'Snapshot or reason'],
    rows,
    empty,
  );
}

/** Used against quota as a figure and a meter (a native element: no script, no inline style). */
export function usageMeter(usedBytes: number, quotaBytes: number | null): Html {
  if (quotaBytes === null) return html`${formatSize(usedBytes)} <span class="muted">(no contract)</span>`;
  const pct = quotaBytes === 0 ? 100 : (usedBytes / quotaBytes) * 100;
  return html`<meter
      min="0"
      max="${quotaBytes}"
      low="${quotaBytes * 0.75}"
      high="${quotaBytes * 0.9}"
      optimum="0"
      value="${Math.min(usedBytes, quotaBytes)}"
      title="${pct.toFixed(1)} %"
    ></meter>
    ${formatSize(usedBytes)} of ${formatSize(quotaBytes)}
    <span class="muted">(${pct < 0.1 && usedBytes > 0 ? '< 0.1' : pct.toFixed(1)} %)</span>`;
}

export function contractFacts(c: ContractRecord | undefined): Html {
  if (!c) return html`<p class="empty">No contract yet: without one, every request is refused (contract-missing).</p>`;
  return html`<dl class="facts">
    <dt>Plan</dt>
    <dd>${c.plan}</dd>
    <dt>Status</dt>
    <dd>${badge(c.status)}</dd>
    <dt>Quota</dt>
    <dd>${formatSize(c.quotaBytes)}</dd>
    <dt>Max snapshots</dt>
    <dd>${c.maxSnapshots}</dd>
    <dt>Valid from</dt>
    <dd>${shortTime(c.validFrom)}</dd>
    <dt>Valid until</dt>
    <dd>${c.validUntil ? shortTime(c.validUntil) : 'open-ended'}</dd>
    <dt>Sessions per day</dt>
    <dd>${c.sessionsPerDay === null ? 'unlimited' : c.sessionsPerDay}</dd>
  </dl>`;
}

export function hostsTable(hosts: HostStatus[], empty: string, withUser = false): Html {
  const now = Date.now();
  return table(
    [...(withUser ? ['User'] : []), 'Host', 'Last successful backup', 'Last job', 'Snapshots'],
    hosts.map((h) => [
      ...(withUser ? [html`<a href="/console/admin/users/${h.user}">${h.user}</a>`] : []),
      h.host,
      h.lastSuccess
        ? `${shortTime(h.lastSuccess)} (${ago(now - Date.parse(h.lastSuccess))})`
        : html`<span class="badge failed">never</span>`,
      h.lastJob ? html`${shortTime(h.lastJob.startedAt)} ${badge(resultOf(h.lastJob, now))}` : '–',
      String(h.snapshots),
    ]),
    empty,
  );
}

/** Snapshots, newest first; `browse` adds a last column (the user's page links plaintext snapshots to their files). */
export function snapshotsTable(snapshots: SnapshotSummary[], empty: string, browse?: (s: SnapshotSummary) => Html): Html {
  return table(
    ['Host', 'Time', 'Type', 'Files', 'Size', 'Backed-up folders', 'Id', ...(browse ? [''] : [])],
    [...snapshots]
      .reverse()
      .map((s) => [
        s.host,
        shortTime(s.time),
        s.type,
        s.totals ? String(s.totals.files) : html`<span class="muted">encrypted</span>`,
        s.totals ? formatSize(s.totals.bytes) : html`<span class="muted">–</span>`,
        s.paths ? s.paths.join(', ') : html`<span class="muted">encrypted: shown by the agent only</span>`,
        html`<span class="mono small">${s.id.slice(0, 12)}</span>`,
        ...(browse ? [browse(s)] : []),
      ]),
    empty,
  );
}

export function ago(ms: number): string {
  const h = ms / 3_600_000;
  if (h < 1) return `${Math.max(0, Math.round(ms / 60_000))} min ago`;
  if (h < 48) return `${Math.round(h)} h ago`;
  return `${plural(Math.round(h / 24), 'day')} ago`;
}
