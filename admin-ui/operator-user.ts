import type { Router } from 'express';
import { contractChangeFrom, formatSize, type ContractFields } from '../gateway/policy/contracts.js';
import { areaLayout } from '../gateway/storage/data-dir.js';
import { checkArea } from '../gateway/storage/pack-check.js';
import { certStatus } from '../gateway/policy/certs.js';
import { KuraError } from '../gateway/errors.js';
import { readJobs } from '../gateway/policy/area-records.js';
import { hostStatuses } from '../gateway/policy/overview.js';
import type { Policy } from '../gateway/policy/policy.js';
import { contractStatuses } from '../gateway/policy/records.js';
import { usageChart } from './chart.js';
import { operatorAction, operatorPage } from './pages.js';
import type { OperatorCtx, Shown } from './context.js';
import { csrfField, html, plural, shortTime, table } from './html.js';
import { keepAppPassword, keepCertificate } from './issued.js';
import { badge, contractFacts, hostsTable, jobsTable, usageMeter } from './parts.js';
import { formField } from './security.js';

/** How each contract field is named on the form, for messages. */
const LABEL: Record<keyof ContractFields, string> = {
  plan: 'Plan',
  quota: 'Quota',
  maxSnapshots: 'Max snapshots',
  from: 'Valid from',
  until: 'Valid until',
  status: 'Status',
  sessionsPerDay: 'Sessions per day',
};

const nameOf = (c: OperatorCtx) => String(c.req.params.name ?? '');

/** One user's page and its forms: enable/disable, contract, certificates, app passwords. */
export function addOperatorUserRoutes(router: Router, policy: Policy): void {
  router.get('/admin/users/:name', operatorPage(policy, userPage));
  const act = (path: string, fn: (c: OperatorCtx, name: string) => Promise<{ redirect: string; flash?: string } | { show: Shown }>) =>
    router.post(
      `/admin/users/:name/${path}`,
      operatorAction(policy, (c) => fn(c, nameOf(c)), userPage),
    );
  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    act(verb, async (c, name) => {
      await c.policy.users.setDisabled(name, disabled);
      return { redirect: `/console/admin/users/${name}`, flash: `User ${name} is now ${disabled ? 'disabled' : 'enabled'}.` };
    });
  }
  act('contract', async (c, name) => {
    const fields = Object.fromEntries(Object.keys(LABEL).map((k) => [k, formField(c.req, k)])) as ContractFields;
    await c.policy.contracts.set(
      name,
      contractChangeFrom(fields, (f) => LABEL[f]),
    );
    return { redirect: `/console/admin/users/${name}`, flash: `Contract of ${name} saved; it applies from the next request.` };
  });
  act('certificates', async (c, name) => {
    const days = formField(c.req, 'days')?.trim() ?? '365';
    if (!/^\d{1,4}$/.test(days) || Number(days) < 1)
      throw new KuraError('bad-request', 'Validity must be a whole number of days, from 1 to 9999');
    const issued = await c.policy.certs.issue(name, { days: Number(days), mayDelete: formField(c.req, 'deleteRight') === '1' });
    return { redirect: `/console/admin/issued/${keepCertificate(c.session.csrf, name, issued)}` };
  });
  act('app-passwords', async (c, name) => {
    const label = (formField(c.req, 'label') ?? '').trim().slice(0, 80) || 'app password';
    const created = await c.policy.appPasswords.add(name, label);
    return { redirect: `/console/admin/issued/${keepAppPassword(c.session.csrf, name, created, label)}` };
  });
  act('check', async (c, name) => ({ show: await checkReport(c, name) }));
  act('app-passwords/revoke', async (c, name) => {
    const id = formField(c.req, 'id') ?? '';
    await c.policy.appPasswords.revoke(name, id);
    return { redirect: `/console/admin/users/${name}`, flash: `Revoked app password ${id} of ${name}.` };
  });
}

async function userPage(c: OperatorCtx): Promise<Shown> {
  const name = nameOf(c);
  const user = await c.policy.users.get(name);
  const used = await c.policy.usage.get(name);
  await c.policy.usageHistory.record(name, used);
  const [contract, certs, passwords, history, hosts, jobs] = await Promise.all([
    c.policy.contracts.find(name),
    c.policy.certs.list(name),
    c.policy.appPasswords.list(name),
    c.policy.usageHistory.list(name),
    hostStatuses(c.policy, name),
    readJobs(c.policy.layout, user),
  ]);
  const csrf = csrfField(c.session.csrf);
  const post = (path: string) => `/console/admin/users/${name}/${path}`;
  const toggle = user.disabled
    ? html`<form method="post" action="${post('enable')}" class="inline">${csrf}<button>Enable ${name}</button></form>`
    : html`<form method="post" action="${post('disable')}" class="inline">${csrf}<button class="danger">Disable ${name}</button></form>`;
  const body = html`<p class="crumbs"><a href="/console/admin/users">Users</a> › ${name}</p>
    <section class="card">
      <h2>Account</h2>
      <p>${badge(user.disabled ? 'disabled' : 'enabled')} created ${shortTime(user.createdAt)}. ${toggle}</p>
      <p class="muted small">A disabled user is refused on the next request, by every client and on the console.</p>
    </section>
    <div class="grid">
      <section class="card">
        <h2>Contract</h2>
        ${contractFacts(contract)}
      </section>
      <section class="card">
        <h2>Usage</h2>
        <p>${usageMeter(used, contract?.quotaBytes ?? null)}</p>
      </section>
    </div>
    <section class="card">
      <h2>Usage over time</h2>
      ${usageChart(history, contract?.quotaBytes ?? null)}
    </section>
    <section class="card">
      <h2>${contract ? 'Change the contract' : 'Set a contract'}</h2>
      ${contractForm(c, post('contract'), contract)}
    </section>
    <section class="card">
      <h2>Certificates</h2>
      ${table(
        ['Serial', 'Issued', 'Expires', 'Rights', 'Status', ''],
        certs.map((cert) => {
          const status = certStatus(cert);
          return [
            html`<span class="mono small">${cert.serial.slice(0, 16)}</span>`,
            shortTime(cert.issuedAt),
            shortTime(cert.notAfter),
            cert.mayDelete ? 'add and delete (forget, prune)' : 'append-only',
            badge(status.startsWith('revoked') ? 'revoked' : status),
            cert.revokedAt
              ? ''
              : html`<form method="post" action="/console/admin/certificates/revoke" class="inline">
                  ${csrf}<input type="hidden" name="back" value="user" /><input
                    type="hidden"
                    name="fingerprint"
                    value="${cert.fingerprint256}"
                  /><button class="danger">Revoke</button>
                </form>`,
          ];
        }),
        `${name} has no certificate yet.`,
      )}
      <form method="post" action="${post('certificates')}" class="row">
        ${csrf}<label for="days">Valid for</label><input id="days" name="days" type="text" inputmode="numeric" value="365" size="5" /> days
        <label><input type="checkbox" name="deleteRight" value="1" /> may forget and prune (delete right)</label>
        <button>Issue a certificate</button>
      </form>
    </section>
    <section class="card">
      <h2>App passwords</h2>
      ${table(
        ['Id', 'Label', 'Created', ''],
        passwords.map((p) => [
          html`<code>${p.id}</code>`,
          p.label,
          shortTime(p.createdAt),
          html`<form method="post" action="${post('app-passwords/revoke')}" class="inline">
            ${csrf}<input type="hidden" name="id" value="${p.id}" /><button class="danger">Revoke</button>
          </form>`,
        ]),
        `${name} has no app password.`,
      )}
      <form method="post" action="${post('app-passwords')}" class="row">
        ${csrf}<label for="label">Label</label><input id="label" name="label" type="text" maxlength="80" placeholder="e.g. phone, davfs2" />
        <button>Create an app password</button>
      </form>
    </section>
    <section class="card">
      <h2>Hosts</h2>
      ${hostsTable(hosts, `${name} has not backed up any host yet.`)}
    </section>
    <section class="card">
      <h2>Integrity of the stored packs</h2>
      <form method="post" action="${post('check')}" class="row">
        ${csrf}<button class="secondary">Check ${name}'s packs</button>
        <span class="muted small">Reads every pack once, like <code>kura admin check ${name}</code>; changes nothing.</span>
      </form>
    </section>
    <section class="card">
      <h2>Backup log</h2>
      ${jobsTable(jobs.slice(-50), `${name} has no backups in the log yet.`)}
    </section>`;
  return { title: `User ${name}`, body };
}

function contractForm(c: OperatorCtx, action: string, current: Awaited<ReturnType<Policy['contracts']['find']>>): ReturnType<typeof html> {
  const v = (field: keyof ContractFields, fallback: string) => formField(c.req, field) ?? fallback;
  const status = v('status', current?.status ?? 'active');
  return html`<form method="post" action="${action}" class="stack">
    ${csrfField(c.session.csrf)} <label for="plan">${LABEL.plan}</label
    ><input id="plan" name="plan" type="text" value="${v('plan', current?.plan ?? 'standard')}" /> <label for="quota">${LABEL.quota}</label
    ><input id="quota" name="quota" type="text" value="${v('quota', current ? exactSize(current.quotaBytes) : '10GiB')}" />
    <span class="hint">e.g. 10GiB, 500MB or a number of bytes</span>
    <label for="maxSnapshots">${LABEL.maxSnapshots}</label
    ><input
      id="maxSnapshots"
      name="maxSnapshots"
      type="text"
      inputmode="numeric"
      value="${v('maxSnapshots', String(current?.maxSnapshots ?? 100))}"
    />
    <label for="from">${LABEL.from}</label
    ><input id="from" name="from" type="text" value="${v('from', current?.validFrom ?? '')}" placeholder="today" />
    <label for="until">${LABEL.until}</label
    ><input id="until" name="until" type="text" value="${v('until', current?.validUntil ?? '')}" placeholder="open-ended" />
    <span class="hint">a date such as 2027-01-31; "none" for open-ended</span>
    <label for="status">${LABEL.status}</label
    ><select id="status" name="status">
      ${contractStatuses.map((s) => html`<option${s === status ? html` selected` : ''}>${s}</option>`)}
    </select>
    <label for="sessionsPerDay">${LABEL.sessionsPerDay}</label
    ><input
      id="sessionsPerDay"
      name="sessionsPerDay"
      type="text"
      inputmode="numeric"
      value="${v('sessionsPerDay', current?.sessionsPerDay === null || !current ? 'none' : String(current.sessionsPerDay))}"
    />
    <span class="hint">TLS connections per day; "none" for unlimited</span>
    <div class="actions"><button>Save the contract</button></div>
  </form>`;
}

/** A size the form shows and reads back to the same bytes: the largest binary unit that divides it. */
function exactSize(bytes: number): string {
  for (const [unit, n] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

/** `kura admin check USER` on the web: every pack against its name, its layout and the blob index. */
async function checkReport(c: OperatorCtx, name: string): Promise<Shown> {
  const user = await c.policy.users.get(name);
  const r = await checkArea(areaLayout(c.policy.layout, user.id));
  const summary = `${plural(r.packs, 'pack')}, ${formatSize(r.bytes)}, ${plural(r.blobs, 'blob')}; the index lists ${plural(r.indexedPacks, 'pack')}${r.indexExists ? '' : ' (there is no index file)'}.`;
  const body = html`<p class="crumbs">
      <a href="/console/admin/users">Users</a> › <a href="/console/admin/users/${name}">${name}</a> › check
    </p>
    <section class="card">
      <p>
        ${r.problems.length === 0 ? badge('no damage found', 'succeeded') : badge(`${plural(r.problems.length, 'problem')}`, 'failed')}
        ${summary}
      </p>
      ${r.encrypted === false ? html`<p class="muted small">Plaintext repository: every blob was verified against its id.</p>` : ''}
      ${table(
        ['Problem', 'Pack', 'What'],
        r.problems.map((p) => [badge(p.kind, 'failed'), html`<span class="mono small">${p.pack.slice(0, 16) || '–'}</span>`, p.message]),
        'Every pack matches its name and the index.',
      )}
      ${r.problems.length > 0 ? html`<p class="muted small">To rebuild the index from the packs: <code>kura admin check ${name} --repair-index</code>.</p>` : ''}
    </section>`;
  return { title: `Check of ${name}'s packs`, body };
}
