import type { Request, Router } from 'express';
import { readJobs, readSnapshots } from '../gateway/policy/area-records.js';
import { hostStatuses } from '../gateway/policy/overview.js';
import type { Policy } from '../gateway/policy/policy.js';
import type { SnapshotSummary } from '../gateway/policy/area-records.js';
import type { SnapshotViews } from '../gateway/dav/snapshots.js';
import { encodePath } from '../gateway/storage/paths.js';
import { browseFiles } from './browse.js';
import { browseSnapshots, ENCRYPTED_LINE } from './snapshot-browse.js';
import { usageChart } from './chart.js';
import { userPage } from './pages.js';
import type { Shown, UserCtx } from './context.js';
import { html } from './html.js';
import { contractFacts, hostsTable, jobsTable, snapshotsTable, usageMeter } from './parts.js';

/** The signed-in user's pages under /console/. Nothing here takes a user name from the URL. */
export function addUserRoutes(router: Router, policy: Policy, views: SnapshotViews): void {
  router.get('/ca.pem', (_req, res, next) => {
    policy.certs
      .loadCa()
      .then((ca) => {
        res.setHeader('Content-Disposition', 'attachment; filename="ca.pem"');
        res.type('application/x-pem-file').send(ca.certPem);
      })
      .catch(next);
  });
  router.get('/', userPage(policy, overview));
  router.get('/log', userPage(policy, logPage));
  router.get(
    '/snapshots',
    userPage(policy, (c) => snapshotsPage(c, views)),
  );
  router.use('/snapshots', userPage(policy, browseSnapshots(views)));
  router.get('/mount', userPage(policy, mountPage));
  router.use('/files', userPage(policy, browseFiles));
}

async function overview(c: UserCtx): Promise<Shown> {
  const [contract, used, hosts] = await Promise.all([
    c.policy.contracts.find(c.user.name),
    c.policy.usage.get(c.user.name),
    hostStatuses(c.policy, c.user.name),
  ]);
  await c.policy.usageHistory.record(c.user.name, used);
  const history = await c.policy.usageHistory.list(c.user.name);
  const body = html`<div class="grid">
      <section class="card">
        <h2>My contract</h2>
        ${contractFacts(contract)}
      </section>
      <section class="card">
        <h2>My usage</h2>
        <p>${usageMeter(used, contract?.quotaBytes ?? null)}</p>
        <p class="muted small">Everything stored in your area counts: /files/ and your PCs' backups.</p>
      </section>
    </div>
    <section class="card">
      <h2>My usage over time</h2>
      ${usageChart(history, contract?.quotaBytes ?? null)}
    </section>
    <section class="card">
      <h2>My hosts</h2>
      ${hostsTable(hosts, 'No PC has been backed up yet: install the agent and run kura backup.')}
      <p><a href="/console/snapshots">All snapshots</a> · <a href="/console/log">Backup log</a></p>
    </section>
    <section class="card">
      <h2>Mount my files</h2>
      <p>Your WebDAV address is <code>${davUrl(c.req)}</code>. <a href="/console/mount">How to mount it</a>.</p>
    </section>`;
  return { title: `Hello, ${c.user.name}`, body };
}

async function logPage(c: UserCtx): Promise<Shown> {
  const jobs = await readJobs(c.policy.layout, c.user);
  return { title: 'My backup log', body: html`<section class="card">${jobsTable(jobs, 'No backups in your log yet.')}</section>` };
}

async function snapshotsPage(c: UserCtx, views: SnapshotViews): Promise<Shown> {
  const [hosts, snapshots] = await Promise.all([hostStatuses(c.policy, c.user.name), readSnapshots(c.policy.layout, c.user)]);
  const view = views.of(c.user.id).view;
  const names = new Map<string, Map<string, string>>();
  for (const host of new Set(snapshots.filter((s) => !s.encrypted).map((s) => s.host))) names.set(host, await view.folderNames(host));
  const browse = (s: SnapshotSummary) => {
    const name = names.get(s.host)?.get(s.id);
    if (s.encrypted || !name) return html`<span class="muted small nowrap">with <code>kura mount</code></span>`;
    return html`<a href="/console/snapshots${encodePath([s.host, name], true)}">Browse files</a>`;
  };
  const body = html`<section class="card">
      <h2>Hosts</h2>
      ${hostsTable(hosts, 'No PC has been backed up yet.')}
    </section>
    <section class="card">
      <h2>Snapshots</h2>
      ${snapshotsTable(snapshots, 'No snapshots yet.', browse)}
      ${snapshots.length ? html`<p class="muted small">${ENCRYPTED_LINE}</p>` : ''}
    </section>`;
  return { title: 'Hosts & snapshots', body };
}

async function mountPage(c: UserCtx): Promise<Shown> {
  const url = davUrl(c.req);
  const body = html`<section class="card">
      <h2>Your WebDAV address</h2>
      <p><code>${url}</code></p>
      <p>
        Sign in with your client certificate, or with your user name <code>${c.user.name}</code> and an app password (ask the operator for
        one). Clients must trust the gateway's CA certificate: <a href="/console/ca.pem">download ca.pem</a>.
      </p>
    </section>
    <section class="card">
      <h2>How to mount it</h2>
      <dl class="facts">
        <dt>Windows Explorer</dt>
        <dd>This PC › Map network drive › <code>${url}</code> (import your .p12 certificate first, or use the app password)</dd>
        <dt>macOS Finder</dt>
        <dd>Go › Connect to Server… › <code>${url}</code></dd>
        <dt>GNOME Files</dt>
        <dd>Other Locations › Connect to Server › <code>${url.replace(/^https/, 'davs')}</code></dd>
        <dt>davfs2</dt>
        <dd><code>mount -t davfs ${url} /mnt/kura</code> (user ${c.user.name}, the app password)</dd>
        <dt>rclone</dt>
        <dd>
          <code
            >rclone lsf :webdav: --webdav-url ${url} --webdav-vendor other --ca-cert ca.pem --client-cert me.pem --client-key me.key</code
          >
        </dd>
        <dt>curl</dt>
        <dd><code>curl --cacert ca.pem --cert me.pem --key me.key -T notes.txt ${url}</code></dd>
      </dl>
    </section>`;
  return { title: 'Mount your files', body };
}

/** The DAV address of the user's files, on the host the browser used. */
function davUrl(req: Request): string {
  const host = /^[A-Za-z0-9.:[\]-]+$/.test(req.headers.host ?? '') ? req.headers.host : 'localhost:8443';
  return `https://${host}/files/`;
}
