import type { Router } from 'express';
import { formatSize } from '../gateway/policy/contracts.js';
import { certStatus } from '../gateway/policy/certs.js';
import { allJobs, hostStatuses, operatorOverview, sampleUsage } from '../gateway/policy/overview.js';
import { usageReport } from '../gateway/policy/recount.js';
import type { Policy } from '../gateway/policy/policy.js';
import type { UsageSample } from '../gateway/policy/usage-history.js';
import { usageChart } from './chart.js';
import { operatorAction, operatorPage } from './pages.js';
import { queryOf, type OperatorCtx, type Shown } from './context.js';
import { csrfField, html, plural, shortTime, table } from './html.js';
import { addIssuedRoutes } from './issued.js';
import { addOperatorUserRoutes } from './operator-user.js';
import { badge, hostsTable, JOB_RESULTS, jobsTable, resultOf, usageMeter } from './parts.js';
import { formField } from './security.js';

/** The operator's pages under /console/admin/. */
export function addOperatorRoutes(router: Router, policy: Policy): void {
  router.get('/admin/', operatorPage(policy, dashboard));
  router.get('/admin', (_req, res) => res.redirect(301, '/console/admin/'));
  router.get('/admin/users', operatorPage(policy, usersPage));
  router.post(
    '/admin/users',
    operatorAction(
      policy,
      async (c) => {
        const u = await c.policy.users.add(formField(c.req, 'name')?.trim() ?? '');
        return {
          redirect: `/console/admin/users/${u.name}`,
          flash: `Added user ${u.name}. Next: set a contract, then issue a certificate.`,
        };
      },
      usersPage,
    ),
  );
  router.get('/admin/certificates', operatorPage(policy, certificatesPage));
  router.post(
    '/admin/certificates/revoke',
    operatorAction(
      policy,
      async (c) => {
        const rec = await c.policy.certs.revoke(formField(c.req, 'fingerprint') ?? '');
        const back = formField(c.req, 'back') === 'user' ? `/console/admin/users/${rec.user}` : '/console/admin/certificates';
        return { redirect: back, flash: `Revoked certificate ${rec.serial} of ${rec.user}; it is refused from the next request on.` };
      },
      certificatesPage,
    ),
  );
  router.get('/admin/usage', operatorPage(policy, usagePage));
  router.get('/admin/log', operatorPage(policy, logPage));
  router.post(
    '/admin/usage/recount',
    operatorAction(policy, async (c) => ({ show: await recountPage(c) }), usagePage),
  );
  addOperatorUserRoutes(router, policy);
  addIssuedRoutes(router, policy);
}

async function dashboard(c: OperatorCtx): Promise<Shown> {
  const o = await operatorOverview(c.policy);
  const users = await c.policy.users.list();
  const t = o.thresholds;
  const link = (name: string) => html`<a href="/console/admin/users/${name}">${name}</a>`;
  const body = html`<div class="grid">
      <section class="card">
        <h2>Users near their quota (${Math.round(t.nearQuotaRatio * 100)} % or more)</h2>
        ${table(
          ['User', 'Usage'],
          o.nearQuota.map((n) => [link(n.user), usageMeter(n.usedBytes, n.quotaBytes)]),
          'Nobody is near their quota.',
        )}
      </section>
      <section class="card">
        <h2>Contracts ending within ${t.expiringDays} days</h2>
        ${table(
          ['User', 'Ends', 'In'],
          o.expiring.map((e) => [link(e.user), shortTime(e.validUntil), e.days < 0 ? badge('ended', 'expired') : plural(e.days, 'day')]),
          'No contract ends soon.',
        )}
      </section>
    </div>
    <section class="card">
      <h2>Missed backups: no successful backup for more than ${t.missedHours} hours</h2>
      ${hostsTable(
        o.missed,
        o.hosts === 0
          ? 'No host has backed up yet.'
          : `All ${plural(o.hosts, 'host')} backed up successfully within the last ${t.missedHours} hours.`,
        true,
      )}
    </section>
    <section class="card">
      <h2>At a glance</h2>
      <p>
        ${users.length === 0 ? 'No users yet.' : `${plural(users.length, 'user')}, ${users.filter((u) => u.disabled).length} disabled, ${plural(o.hosts, 'host')}.`}
        <a href="/console/admin/users">Manage users</a> · <a href="/metrics">Prometheus metrics</a>
      </p>
    </section>`;
  return { title: 'Dashboard', body };
}

async function usersPage(c: OperatorCtx): Promise<Shown> {
  const users = await c.policy.users.list();
  const rows = await Promise.all(
    users.map(async (u) => {
      const contract = await c.policy.contracts.find(u.name);
      return [
        html`<a href="/console/admin/users/${u.name}">${u.name}</a>`,
        badge(u.disabled ? 'disabled' : 'enabled'),
        contract ? html`${contract.plan} ${badge(contract.status)}` : html`<span class="muted">no contract</span>`,
        usageMeter(await c.policy.usage.get(u.name), contract?.quotaBytes ?? null),
        shortTime(u.createdAt),
      ];
    }),
  );
  const body = html`<section class="card">
      <h2>Add a user</h2>
      <form method="post" action="/console/admin/users" class="row">
        ${csrfField(c.session.csrf)} <label for="name">User name</label
        ><input id="name" name="name" type="text" required maxlength="32" value="${formField(c.req, 'name') ?? ''}" />
        <button>Add user</button>
      </form>
      <p class="muted small">2-32 characters: lower-case letters, digits, ".", "_" or "-", starting with a letter.</p>
    </section>
    <section class="card">
      <h2>All users</h2>
      ${table(['User', 'Status', 'Contract', 'Usage', 'Created'], rows, 'No users yet: add the first one above.')}
    </section>`;
  return { title: 'Users', body };
}

async function certificatesPage(c: OperatorCtx): Promise<Shown> {
  const certs = await c.policy.certs.list();
  const rows = [...certs]
    .sort((a, b) => a.notAfter.localeCompare(b.notAfter))
    .map((cert) => {
      const status = certStatus(cert);
      return [
        html`<a href="/console/admin/users/${cert.user}">${cert.user}</a>`,
        html`<span class="mono small">${cert.serial.slice(0, 16)}</span>`,
        shortTime(cert.issuedAt),
        shortTime(cert.notAfter),
        badge(status.startsWith('revoked') ? 'revoked' : status),
        cert.revokedAt
          ? html`<span class="muted small">${shortTime(cert.revokedAt)}</span>`
          : html`<form method="post" action="/console/admin/certificates/revoke" class="inline">
              ${csrfField(c.session.csrf)}<input type="hidden" name="fingerprint" value="${cert.fingerprint256}" /><button class="danger">
                Revoke
              </button>
            </form>`,
      ];
    });
  const body = html`<section class="card">
    <p class="muted">Certificates are issued on each user's page. Listed by expiry, soonest first.</p>
    ${table(['User', 'Serial', 'Issued', 'Expires', 'Status', ''], rows, 'No certificates issued yet.')}
  </section>`;
  return { title: 'Certificates', body };
}

async function usagePage(c: OperatorCtx): Promise<Shown> {
  await sampleUsage(c.policy);
  const users = await c.policy.users.list();
  const totals = new Map<string, number>();
  const rows = [];
  let quotaSum = 0;
  for (const u of users) {
    const contract = await c.policy.contracts.find(u.name);
    quotaSum += contract?.quotaBytes ?? 0;
    for (const s of await c.policy.usageHistory.list(u.name)) totals.set(s.day, (totals.get(s.day) ?? 0) + s.bytes);
    rows.push([
      html`<a href="/console/admin/users/${u.name}">${u.name}</a>`,
      usageMeter(await c.policy.usage.get(u.name), contract?.quotaBytes ?? null),
    ]);
  }
  const samples: UsageSample[] = [...totals].sort(([a], [b]) => a.localeCompare(b)).map(([day, bytes]) => ({ day, bytes }));
  const body = html`<section class="card">
      <h2>All users together</h2>
      ${usageChart(samples, null)}
      <p class="muted small">
        One sample per day. Quotas granted in total: ${formatSize(quotaSum)}. Each user's page has their own chart against their quota.
      </p>
    </section>
    <section class="card">
      <h2>Per user</h2>
      ${table(['User', 'Used against quota'], rows, 'No users yet.')}
      <form method="post" action="/console/admin/usage/recount" class="row">
        ${csrfField(c.session.csrf)}<button class="secondary">Recount from the disk</button>
        <span class="muted small">Measures every area and corrects the counters, like <code>kura admin usage --recount</code>.</span>
      </form>
    </section>`;
  return { title: 'Usage', body };
}

async function logPage(c: OperatorCtx): Promise<Shown> {
  const want = queryOf(c.req).get('result');
  const result = JOB_RESULTS.find((r) => r === want) ?? null;
  const jobs = (await allJobs(c.policy)).filter((j) => !result || resultOf(j) === result);
  const hosts = await hostStatuses(c.policy);
  const filter = (r: string | null, label: string) =>
    html`<a href="/console/admin/log${r ? `?result=${r}` : ''}" ${r === result ? html` aria-current="page"` : ''}>${label}</a>`;
  const body = html`<section class="card">
      <p class="filters">Show: ${filter(null, 'all')}${JOB_RESULTS.map((r) => filter(r, r))}</p>
      ${jobsTable(jobs, result ? `No ${result} jobs.` : 'No backups have run yet.')}
    </section>
    <section class="card">
      <h2>Hosts</h2>
      ${hostsTable(hosts, 'No host has backed up yet.', true)}
    </section>`;
  return { title: result ? `Backup log: ${result}` : 'Backup log', body };
}

/** `kura admin usage --recount` on the web: measures every area and corrects the counters. */
async function recountPage(c: OperatorCtx): Promise<Shown> {
  const lines = await usageReport(c.policy, true);
  await sampleUsage(c.policy);
  const rows = lines.map((l) => [
    html`<a href="/console/admin/users/${l.user}">${l.user}</a>`,
    formatSize(l.usedBytes),
    formatSize(l.counterBefore ?? 0),
    l.drift === 0 ? badge('agreed', 'succeeded') : badge(`off by ${l.drift} bytes: corrected`, 'warn'),
  ]);
  const body = html`<section class="card">
    ${table(['User', 'Measured on disk', 'Counter was', 'Check'], rows, 'No users yet.')}
    <p><a href="/console/admin/usage">Back to usage</a></p>
  </section>`;
  return { title: 'Usage recounted', body };
}
