import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient, type WebDAVClient } from 'webdav';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { SnapshotView } from '../../browse/view.js';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { DiskSnapshotSource } from '../../gateway/storage/snapshot-source.js';
import { encodeJob } from '../../format/index.js';
import { dav as davRequest, startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { agentEnv, backup, mustAgent, mustRun } from '../helpers/agent.js';
import { makeTempDir, removeTempDir } from '../helpers/processes.js';
import { launchChromium, shot } from '../helpers/browser.js';

/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core) against a real
 * gateway over TLS: the operator creates a user, sets a contract and issues a certificate; that
 * certificate backs up and uploads with real DAV clients; the operator's and the user's pages show it;
 * forgery and other users' URLs are refused. Every page is saved as a screenshot.
 */
const HOSTILE = '<img src=x onerror=alert(1)>.html';
/** The gateway's certificate is checked by the DAV clients below; the browser only drives pages. */
const NO_SCRIPT = { ignoreHTTPSErrors: true, javaScriptEnabled: false, viewport: { width: 1200, height: 800 } };

/** A small picture (a sunset) made with sharp, as PNG or JPEG bytes. */
async function picture(format: 'png' | 'jpeg'): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="420">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2b4c7e"/><stop offset="1" stop-color="#f2a65a"/></linearGradient></defs>
    <rect width="640" height="420" fill="url(#sky)"/><circle cx="320" cy="300" r="90" fill="#ffd166"/>
    <rect y="300" width="640" height="120" fill="#1d3557"/></svg>`;
  const image = (await sharp())(Buffer.from(svg));
  return (format === 'png' ? image.png() : image.jpeg({ quality: 85 })).toBuffer();
}

async function sharp() {
  return (await import('sharp')).default;
}

/** The <img>'s natural width, 0 when it did not load (read in Playwright's own script world: the page runs no script). */
async function naturalWidth(img: Locator): Promise<number> {
  return img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth);
}

describe('web console', () => {
  let gw: TestGateway;
  let browser: Browser;
  let operator: BrowserContext;
  let op: Page;
  let operatorPassword: string;
  let work: string;
  const carol: Partial<TestUser> = { name: 'carol' };

  before(async () => {
    gw = await startTestGateway();
    operatorPassword = await gw.policy.operators.resetPassword();
    work = await makeTempDir('kura-console-');
    browser = await launchChromium();
    // JavaScript off in every context: the console's pages and forms need none.
    operator = await browser.newContext({ ...NO_SCRIPT, acceptDownloads: true });
    operator.setDefaultTimeout(10_000);
    op = await operator.newPage();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    if (work) await removeTempDir(work);
  });

  const url = (path: string) => new URL(path, gw.url).toString();

  it('sends the operator to the sign-in form, refuses a wrong password, and signs in with the right one', async () => {
    await op.goto(url('/console/admin/'));
    assert.match(op.url(), /\/console\/admin\/signin$/);
    await op.fill('#password', 'not the password');
    const [wrong] = await Promise.all([op.waitForNavigation(), op.click('button:text("Sign in")')]);
    assert.equal(wrong?.status(), 401);
    assert.match((await op.textContent('.flash.error')) ?? '', /operator password is wrong/);
    await shot(op, '01-operator-signin-error');
    await op.fill('#password', operatorPassword);
    await Promise.all([op.waitForNavigation(), op.click('button:text("Sign in")')]);
    assert.match(op.url(), /\/console\/admin\/$/);
    const cookies = await operator.cookies();
    const session = cookies.find((c) => c.name === '__Host-kura-operator');
    assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(session));
    const headers = (await op.request.get(url('/console/admin/'))).headers();
    assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.match((await op.textContent('main')) ?? '', /Nobody is near their quota/);
    await shot(op, '02-operator-dashboard-empty');
  });

  it('adds a user, refuses a bad one with a clear reason, and sets a contract with validation', async () => {
    await op.goto(url('/console/admin/users'));
    await shot(op, '03-users-empty');
    await op.fill('#name', 'Bad Name!');
    const [bad] = await Promise.all([op.waitForNavigation(), op.click('button:text("Add user")')]);
    assert.equal(bad?.status(), 400);
    assert.match((await op.textContent('.flash.error')) ?? '', /2-32 characters/);
    await shot(op, '04-users-bad-name');
    await op.fill('#name', 'carol');
    await Promise.all([op.waitForNavigation(), op.click('button:text("Add user")')]);
    assert.match(op.url(), /\/console\/admin\/users\/carol$/);
    assert.match((await op.textContent('.flash.ok')) ?? '', /Added user carol/);
    await shot(op, '05-user-new');

    await op.fill('#quota', 'lots');
    const [refused] = await Promise.all([op.waitForNavigation(), op.click('button:text("Save the contract")')]);
    assert.equal(refused?.status(), 400);
    assert.match((await op.textContent('.flash.error')) ?? '', /Not a size: lots/);
    assert.equal(await gw.policy.contracts.find('carol'), undefined, 'a refused form leaves no contract behind');
    await shot(op, '06-contract-error');
    await op.fill('#quota', '64MiB');
    await op.fill('#maxSnapshots', 'five');
    await Promise.all([op.waitForNavigation(), op.click('button:text("Save the contract")')]);
    assert.match((await op.textContent('.flash.error')) ?? '', /Max snapshots must be a whole number/);
    await op.fill('#maxSnapshots', '5');
    await op.fill('#until', '2099-06-30');
    await op.fill('#sessionsPerDay', '200');
    await op.fill('#plan', 'family');
    await Promise.all([op.waitForNavigation(), op.click('button:text("Save the contract")')]);
    assert.match((await op.textContent('.flash.ok')) ?? '', /Contract of carol saved/);
    const c = await gw.policy.contracts.find('carol');
    assert.deepEqual(
      [c?.plan, c?.quotaBytes, c?.maxSnapshots, c?.validUntil, c?.sessionsPerDay],
      ['family', 64 << 20, 5, '2099-06-30T00:00:00.000Z', 200],
    );
  });

  it('issues a certificate whose PEM and PKCS#12 download once each, and an app password shown once', async () => {
    await op.goto(url('/console/admin/users/carol'));
    await Promise.all([op.waitForNavigation(), op.click('button:text("Issue a certificate")')]);
    assert.match(op.url(), /\/console\/admin\/issued\/[0-9a-f]{32}$/);
    const issuedUrl = op.url();
    await shot(op, '07-certificate-issued');
    const [pemDl] = await Promise.all([op.waitForEvent('download'), op.click('button:text("Download PEM")')]);
    assert.equal(pemDl.suggestedFilename(), 'carol.pem');
    const pem = await readFile((await pemDl.path()) as string, 'utf8');
    const [p12Dl] = await Promise.all([op.waitForEvent('download'), op.click('button:text("Download PKCS#12")')]);
    assert.equal(p12Dl.suggestedFilename(), 'carol.p12');
    const p12 = await readFile((await p12Dl.path()) as string);
    carol.certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
    carol.keyPem = /-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+?-----END (RSA )?PRIVATE KEY-----/.exec(pem)?.[0];
    assert.ok(carol.certPem && carol.keyPem, 'the PEM file holds the certificate and its key');
    carol.p12 = p12;
    carol.fingerprint256 = new X509Certificate(carol.certPem).fingerprint256;
    const again = await op.goto(issuedUrl);
    assert.equal(again?.status(), 404, 'the private key is handed out once');
    assert.match((await op.textContent('main')) ?? '', /downloaded already/);
    await shot(op, '08-certificate-gone');

    await op.goto(url('/console/admin/users/carol'));
    await op.fill('#label', 'laptop');
    await Promise.all([op.waitForNavigation(), op.click('button:text("Create an app password")')]);
    carol.password = (await op.textContent('#app-password')) ?? '';
    assert.match(carol.password, /^[A-Za-z0-9]{24}$/);
    await shot(op, '09-app-password');
    carol.id = (await gw.policy.users.get('carol')).id;
  });

  let dav: WebDAVClient;

  it('the issued certificate works with real DAV clients: uploads with the webdav client and a backup with the agent', async () => {
    const httpsAgent = new Agent({ ca: gw.caPem, cert: carol.certPem, key: carol.keyPem });
    dav = createClient(url('/files/'), { httpsAgent });
    await dav.createDirectory('/docs');
    await dav.putFileContents('/docs/report.txt', 'quarterly report\n'.repeat(2000));
    await dav.putFileContents(`/docs/${HOSTILE}`, '<script>alert("not in the console origin")</script>');
    await dav.putFileContents('/notes.md', '# notes\n');
    await dav.createDirectory('/pictures');
    await dav.putFileContents('/pictures/sunset.png', await picture('png'));
    await dav.putFileContents('/pictures/sunset.jpg', await picture('jpeg'));
    const src = join(work, 'pc');
    await mkdir(join(src, 'photos'), { recursive: true });
    await writeFile(join(src, 'photos', 'one.txt'), 'a photo, in spirit\n'.repeat(5000));
    await writeFile(join(src, 'photos', 'beach.jpg'), await picture('jpeg'));
    await writeFile(join(src, 'photos', 'hill.png'), await picture('png'));
    const env = await agentEnv(gw, carol as TestUser, { host: 'pc1', under: work });
    await mustAgent(env, ['key', 'init', '--plaintext']);
    const summary = await backup(env, [src]);
    assert.match(summary.snapshot, /^[0-9a-f]{64}$/);
    // A host whose only job failed: it shows as a missed backup on the dashboard.
    const failed = encodeJob({
      id: '20261101T010000Z-0badc0de',
      host: 'old-pc',
      type: 'incremental',
      state: 'failed',
      startedAt: '2026-11-01T01:00:00.000Z',
      updatedAt: '2026-11-01T01:00:00.000Z',
      endedAt: '2026-11-01T01:02:00.000Z',
      files: 0,
      bytes: 0,
      bytesUploaded: 0,
      snapshot: null,
      error: 'the disk D: could not be read',
    });
    const agentDav = createClient(url('/'), { httpsAgent });
    await agentDav.putFileContents('/.kura/log/20261101T010000Z-0badc0de', failed);
  });

  it("shows the upload in the operator's usage chart, log (filtered by result), dashboard and metrics", async () => {
    await op.goto(url('/console/admin/usage'));
    const label = (await op.getAttribute('svg.chart', 'aria-label')) ?? '';
    const used = await gw.policy.usage.get('carol');
    assert.ok(used > 30_000, `carol uses ${used} bytes`);
    assert.match(label, /latest \d/);
    assert.doesNotMatch(label, /latest 0 B/);
    await shot(op, '10-operator-usage');
    await op.goto(url('/console/admin/users/carol'));
    assert.match((await op.textContent('main')) ?? '', /pc1/);
    await shot(op, '11-operator-user-full');
    await op.goto(url('/console/admin/log'));
    const all = (await op.textContent('main')) ?? '';
    assert.match(all, /pc1/);
    assert.match(all, /old-pc/);
    await shot(op, '12-operator-log');
    await op.goto(url('/console/admin/log?result=failed'));
    const failed = (await op.textContent('table')) ?? '';
    assert.match(failed, /old-pc/);
    assert.match(failed, /could not be read/);
    assert.doesNotMatch(failed, /pc1/);
    await shot(op, '13-operator-log-failed');
    await op.goto(url('/console/admin/log?result=cancelled'));
    assert.match((await op.textContent('main')) ?? '', /No cancelled jobs/);
    // erin: 95 % of a tiny quota, and a contract that ends in 10 days.
    const erin = await gw.addUser('erin', { quotaBytes: 1000, validUntil: new Date(Date.now() + 10.5 * 86_400_000).toISOString() });
    assert.equal((await davRequest(gw, { method: 'PUT', path: '/files/full.bin', user: erin, body: 'x'.repeat(950) })).status, 201);
    await op.goto(url('/console/admin/'));
    const cards = (await op.locator('section.card').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
    assert.match(cards[0] ?? '', /erin[\s\S]*950 B of 1000 B \(95\.0 %\)/);
    assert.match(cards[1] ?? '', /erin[\s\S]*10 days/);
    assert.match(cards[2] ?? '', /old-pc/);
    assert.doesNotMatch(cards[2] ?? '', /pc1/, 'pc1 backed up just now');
    await shot(op, '14-operator-dashboard');
    await op.goto(url('/console/admin/certificates'));
    assert.match((await op.textContent('table')) ?? '', /carol/);
    await shot(op, '15-operator-certificates');
    const metrics = await op.request.get(url('/metrics'));
    assert.equal(metrics.status(), 200);
    const text = await metrics.text();
    assert.match(text, /kura_snapshots\{user="carol",host="pc1"\} 1/);
    assert.match(text, new RegExp(`kura_user_used_bytes\\{user="carol"\\} ${used}`));
    assert.match(text, /kura_host_last_success_timestamp_seconds\{user="carol",host="pc1"\} \d+/);
    assert.match(text, /kura_http_requests_total\{method="PUT",status="201"\} \d+/);
    assert.match(text, /kura_http_received_bytes_total \d+/);
  });

  it("checks carol's packs and recounts usage from the console, with the same code as kura admin", async () => {
    await op.goto(url('/console/admin/users/carol'));
    await Promise.all([op.waitForNavigation(), op.click(`button:text("Check carol's packs")`)]);
    const report = (await op.textContent('main')) ?? '';
    assert.match(report, /no damage found/);
    assert.match(report, /Plaintext repository: every blob was verified/);
    await shot(op, '16-operator-check');
    await op.goto(url('/console/admin/usage'));
    await Promise.all([op.waitForNavigation(), op.click('button:text("Recount from the disk")')]);
    assert.match((await op.textContent('table')) ?? '', /carol/);
    await shot(op, '17-operator-recount');
  });

  let user: BrowserContext;
  let up: Page;

  it('the user signs in with the app password and sees their contract, usage, log, snapshots and mount address', async () => {
    user = await browser.newContext({ ...NO_SCRIPT, acceptDownloads: true });
    user.setDefaultTimeout(10_000);
    up = await user.newPage();
    await up.goto(url('/console/'));
    assert.match(up.url(), /\/console\/signin$/);
    await shot(up, '20-user-signin');
    await up.fill('#name', 'carol');
    await up.fill('#password', 'wrong password');
    const [wrong] = await Promise.all([up.waitForNavigation(), up.click('button:text("Sign in")')]);
    assert.equal(wrong?.status(), 401);
    assert.match((await up.textContent('.flash.error')) ?? '', /user name or app password is wrong/);
    await up.fill('#password', carol.password as string);
    await Promise.all([up.waitForNavigation(), up.click('button:text("Sign in")')]);
    const overview = (await up.textContent('main')) ?? '';
    assert.match(overview, /family/);
    assert.match(overview, /of 64\.0 MiB/);
    assert.match(overview, /pc1/);
    await shot(up, '21-user-overview');
    await up.goto(url('/console/log'));
    assert.match((await up.textContent('table')) ?? '', /succeeded/);
    await shot(up, '22-user-log');
    await up.goto(url('/console/snapshots'));
    assert.match((await up.textContent('main')) ?? '', /photos|\/pc/);
    await shot(up, '23-user-snapshots');
    await up.goto(url('/console/mount'));
    assert.match((await up.textContent('main')) ?? '', new RegExp(`${gw.url}files/`.replace(/[.]/g, '\\.')));
    await shot(up, '24-user-mount');
  });

  it('the user browses /files/ and downloads a file and a folder (zip), always as attachments', async () => {
    await up.goto(url('/console/files/'));
    assert.match((await up.textContent('table')) ?? '', /docs\//);
    await shot(up, '25-user-files');
    await up.goto(url('/console/files/docs/'));
    const listing = (await up.textContent('table')) ?? '';
    assert.match(listing, /report\.txt/);
    assert.ok(listing.includes(HOSTILE), 'a hostile name is shown as text');
    assert.equal(await up.locator('img').count(), 0, 'and never becomes markup');
    await shot(up, '26-user-files-docs');
    const hostile = await up.request.get(url(`/console/files/docs/${encodeURIComponent(HOSTILE)}`));
    assert.equal(hostile.status(), 200);
    assert.match(
      hostile.headers()['content-disposition'] ?? '',
      /^attachment;/,
      'an HTML file is downloaded, never rendered in the console',
    );
    assert.match(hostile.headers()['content-security-policy'] ?? '', /sandbox/);
    const raw = await up.request.get(url('/console/files/docs/report.txt'));
    assert.equal(raw.status(), 200);
    assert.match(raw.headers()['content-disposition'] ?? '', /^attachment; filename="report\.txt"/);
    assert.equal(raw.headers()['x-content-type-options'], 'nosniff');
    assert.equal((await raw.body()).length, 'quarterly report\n'.length * 2000);
    const [zipDl] = await Promise.all([up.waitForEvent('download'), up.click('a:text("Download this folder as a zip")')]);
    assert.equal(zipDl.suggestedFilename(), 'docs.zip');
    const zipPath = join(work, 'docs.zip');
    await zipDl.saveAs(zipPath);
    const listed = await mustRun('unzip', ['-l', zipPath]);
    assert.match(listed, /report\.txt/);
    const out = join(work, 'unzipped');
    await mustRun('unzip', ['-q', zipPath, '-d', out]);
    assert.equal(await readFile(join(out, 'report.txt'), 'utf8'), 'quarterly report\n'.repeat(2000));
  });

  it('shows image thumbnails in /files/, served by the console itself for the session and revalidated', async () => {
    await up.goto(url('/console/files/pictures/'));
    const imgs = up.locator('img');
    assert.equal(await imgs.count(), 2);
    for (const img of await imgs.all()) assert.ok((await naturalWidth(img)) > 0, 'the preview loaded');
    const src = (await imgs.first().getAttribute('src')) ?? '';
    assert.match(src, /^\/console\/files\/pictures\/sunset\.(jpg|png)\?thumbnail=128$/);
    assert.equal(await up.locator(`a.thumb[href="${src.split('?')[0]}"]`).count(), 1, 'the preview links to the file');
    const thumb = await up.request.get(url(src), { headers: { accept: 'image/webp,*/*' } });
    assert.equal(thumb.status(), 200);
    assert.equal(thumb.headers()['content-type'], 'image/webp');
    assert.equal(thumb.headers()['cache-control'], 'private, no-cache');
    assert.equal(thumb.headers()['x-content-type-options'], 'nosniff');
    const meta = await (await sharp())(await thumb.body()).metadata();
    assert.ok((meta.width ?? 0) <= 128 && (meta.height ?? 0) <= 128, `${meta.width}x${meta.height}`);
    const again = await up.request.get(url(src), { headers: { accept: 'image/webp,*/*', 'if-none-match': thumb.headers().etag ?? '' } });
    assert.equal(again.status(), 304);
    const notImage = await up.request.get(url('/console/files/notes.md?thumbnail=128'));
    assert.equal(notImage.status(), 415);
    assert.match(await notImage.text(), /Previews are made of JPEG, PNG/);
    const stranger = await browser.newContext(NO_SCRIPT);
    const anonymous = await stranger.request.get(url(src), { maxRedirects: 0 });
    assert.equal(anonymous.status(), 303, 'no preview without a session: the sign-in form');
    await stranger.close();
    await shot(up, '26b-user-files-thumbnails');
  });

  let snapshotUrl = '';

  it('browses a plaintext snapshot: folders, thumbnails, a file and a folder as downloads', async () => {
    await up.goto(url('/console/snapshots'));
    assert.doesNotMatch((await up.textContent('main')) ?? '', /arrives with/);
    await Promise.all([up.waitForNavigation(), up.click('a:text("Browse files")')]);
    snapshotUrl = up.url();
    assert.match(snapshotUrl, /\/console\/snapshots\/pc1\/\d{8}T\d{6}Z\/$/);
    assert.match((await up.textContent('table')) ?? '', /pc\//);
    await Promise.all([up.waitForNavigation(), up.click('a:text("pc/")')]);
    await Promise.all([up.waitForNavigation(), up.click('a:text("photos/")')]);
    const listing = (await up.textContent('table')) ?? '';
    for (const name of ['beach.jpg', 'hill.png', 'one.txt']) assert.match(listing, new RegExp(name.replace('.', '\\.')));
    const imgs = up.locator('img');
    assert.equal(await imgs.count(), 2);
    for (const img of await imgs.all()) assert.ok((await naturalWidth(img)) > 0, 'the preview loaded');
    const thumb = await up.request.get(url((await imgs.first().getAttribute('src')) ?? ''));
    assert.equal(thumb.status(), 200);
    assert.match(thumb.headers()['cache-control'] ?? '', /immutable/);
    await shot(up, '23b-user-snapshot-photos');
    const [dl] = await Promise.all([up.waitForEvent('download'), up.click('td a:text("hill.png")')]);
    assert.equal(dl.suggestedFilename(), 'hill.png');
    assert.deepEqual(await readFile((await dl.path()) as string), await readFile(join(work, 'pc', 'photos', 'hill.png')));
    const raw = await up.request.get(url(`${snapshotUrl}pc/photos/one.txt`));
    assert.match(raw.headers()['content-disposition'] ?? '', /^attachment; filename="one\.txt"/);
    assert.equal(raw.headers()['x-content-type-options'], 'nosniff');
    assert.deepEqual(await raw.body(), await readFile(join(work, 'pc', 'photos', 'one.txt')));
    const [zipDl] = await Promise.all([up.waitForEvent('download'), up.click('a:text("Download this folder as a zip")')]);
    assert.equal(zipDl.suggestedFilename(), 'photos.zip');
    const zipPath = join(work, 'photos.zip');
    await zipDl.saveAs(zipPath);
    const out = join(work, 'unzipped-photos');
    await mustRun('unzip', ['-q', zipPath, '-d', out]);
    for (const name of ['beach.jpg', 'hill.png', 'one.txt'])
      assert.deepEqual(await readFile(join(out, name)), await readFile(join(work, 'pc', 'photos', name)));
    const missing = await up.goto(`${snapshotUrl}pc/nothing-here/`);
    assert.equal(missing?.status(), 404);
    assert.match((await up.textContent('main')) ?? '', /no such file or folder/i);
    await shot(up, '23c-user-snapshot-missing');
  });

  it("refuses a cross-user URL: the user never reaches another user's data or the operator's pages", async () => {
    const dave = await gw.addUser('dave');
    await mkdir(gw.filesDir(dave), { recursive: true });
    await writeFile(join(gw.filesDir(dave), 'dave-secret.txt'), 'only for dave');
    // dave's own plaintext snapshot: carol asks for it by its URL, by host and by the same time under her host.
    const daveSrc = join(work, 'dave-pc');
    await mkdir(daveSrc, { recursive: true });
    await writeFile(join(daveSrc, 'dave-secret.txt'), 'only for dave');
    const daveEnv = await agentEnv(gw, dave, { host: 'dave-pc', under: work });
    await mustAgent(daveEnv, ['key', 'init', '--plaintext']);
    await backup(daveEnv, [daveSrc]);
    const daveView = new SnapshotView(new DiskSnapshotSource(areaLayout(gw.policy.layout, dave.id)));
    const [daveTime] = (await daveView.folderNames('dave-pc')).values();
    assert.ok(daveTime);
    for (const [path, status] of [
      [`/console/snapshots/dave-pc/${daveTime}/dave-pc/dave-secret.txt`, 404],
      [`/console/snapshots/dave-pc/`, 404],
      [`/console/snapshots/pc1/${daveTime}/`, 404],
      [`${new URL(snapshotUrl).pathname}..%2f..%2fdave-pc/`, 400],
    ] as const) {
      const res = await up.request.get(url(path));
      assert.equal(res.status(), status, path);
      const body = await res.text();
      assert.doesNotMatch(body, /only for dave|dave-secret/, path);
      assert.match(body, /Back to your hosts and snapshots/, `${path}: a readable page`);
    }
    await up.goto(url(`/console/snapshots/dave-pc/${daveTime}/dave-pc/`));
    assert.match((await up.textContent('main')) ?? '', /none of your PCs is called dave-pc/i);
    await shot(up, '27b-user-cross-user-snapshot-refused');
    const adminPage = await up.goto(url('/console/admin/users/dave'));
    assert.equal(adminPage?.status(), 403);
    const text = (await up.textContent('main')) ?? '';
    assert.match(text, /signed in as carol/);
    assert.doesNotMatch(text, /dave-secret|only for dave/);
    await shot(up, '27-user-cross-user-refused');
    const guess = await up.request.get(url('/console/files/dave-secret.txt'));
    assert.equal(guess.status(), 404, "a path names a file in the caller's own area only");
    const climb = await up.request.get(url('/console/files/..%2f..%2fdave-secret.txt'));
    assert.equal(climb.status(), 400);
    assert.equal((await up.request.get(url('/metrics'))).status(), 401, 'a user session does not open the metrics');
    const otherArea = await up.request.get(url(`/console/files/?user=dave`));
    assert.doesNotMatch(await otherArea.text(), /dave-secret/);
  });

  it('lists an encrypted snapshot by host, time and type only, and points to kura mount', async () => {
    const frank = await gw.addUser('frank');
    const src = join(work, 'frank-pc');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'private.txt'), 'sealed on the PC');
    const env = await agentEnv(gw, frank, { host: 'laptop', passphrase: 'frank passphrase', under: work });
    await mustAgent(env, ['key', 'init']);
    await backup(env, [src]);
    const context = await browser.newContext({
      ...NO_SCRIPT,
      clientCertificates: [{ origin: gw.url.replace(/\/$/, ''), cert: Buffer.from(frank.certPem), key: Buffer.from(frank.keyPem) }],
    });
    const page = await context.newPage();
    await page.goto(url('/console/snapshots'));
    const text = ((await page.textContent('main')) ?? '').replace(/\s+/g, ' ');
    assert.match(text, /laptop/);
    assert.match(text, /browse them with kura mount on your PC/i);
    assert.equal(await page.locator('a:text("Browse files")').count(), 0);
    await shot(page, '27c-user-encrypted-snapshots');
    await page.goto(url('/console/snapshots/laptop/'));
    await shot(page, '27d-user-encrypted-host');
    await Promise.all([page.waitForNavigation(), page.click('td a')]);
    const sealed = (await page.textContent('main')) ?? '';
    assert.match(sealed, /This snapshot is encrypted/);
    assert.doesNotMatch(sealed, /private\.txt|sealed on the PC/);
    await shot(page, '27e-user-encrypted-snapshot');
    assert.equal((await page.request.get(`${page.url()}frank-pc/private.txt`)).status(), 404);
    await context.close();
  });

  it('refuses a forged form: without the CSRF token, and from another site', async () => {
    const forged = await op.request.post(url('/console/admin/users'), { form: { name: 'mallory' } });
    assert.equal(forged.status(), 403);
    assert.match(await forged.text(), /security token is missing or wrong/);
    const wrongToken = await op.request.post(url('/console/admin/users/carol/disable'), { form: { _csrf: 'x'.repeat(43) } });
    assert.equal(wrongToken.status(), 403);
    assert.equal((await gw.policy.users.get('carol')).disabled, false);
    // A page of another origin posting to the console: the SameSite=Strict cookie does not go along.
    const attacker = await operator.newPage();
    await attacker.setContent(
      `<form method="post" action="${url('/console/admin/users')}"><input name="name" value="mallory"><button>go</button></form>`,
    );
    const [resp] = await Promise.all([attacker.waitForNavigation(), attacker.click('button')]);
    assert.equal(resp?.status(), 401);
    await shot(attacker, '28-csrf-refused');
    assert.equal(await gw.policy.users.find('mallory'), undefined);
  });

  it('a certificate in the browser signs the user in without a form; disabling the user ends access', async () => {
    const certUser = await browser.newContext({
      ...NO_SCRIPT,
      clientCertificates: [
        { origin: gw.url.replace(/\/$/, ''), cert: Buffer.from(carol.certPem as string), key: Buffer.from(carol.keyPem as string) },
      ],
    });
    const page = await certUser.newPage();
    await page.goto(url('/console/'));
    assert.match((await page.textContent('.who')) ?? '', /carol \(certificate\)/);
    await shot(page, '29-user-certificate');
    await op.goto(url('/console/admin/users/carol'));
    await Promise.all([op.waitForNavigation(), op.click('button:text("Disable carol")')]);
    const refused = await up.goto(url('/console/'));
    assert.equal(refused?.status(), 403);
    assert.match((await up.textContent('main')) ?? '', /disabled/);
    await shot(up, '30-user-disabled');
    await up.goto(url('/console/'));
    assert.match(up.url(), /\/console\/signin$/, "the disabled user's session ended");
    assert.equal((await page.goto(url('/console/')))?.status(), 403, 'and the certificate no longer opens the console');
    await certUser.close();
    await user.close();
  });
});
