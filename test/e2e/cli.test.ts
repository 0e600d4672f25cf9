import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, run, runKura, watch, kuraCli, repoRoot, type RunResult, type Watched } from '../helpers/processes.js';

interface UserJson {
  name: string;
  id: string;
  disabled: boolean;
}
interface CertJson {
  serial: string;
  user: string;
  fingerprint256: string;
  revokedAt: string | null;
}

function admin(data: string, args: string[]): Promise<RunResult> {
  return runKura(['admin', ...args, '--data', data]);
}

async function adminJson<T>(data: string, args: string[]): Promise<T> {
  const res = await admin(data, [...args, '--json']);
  assert.equal(res.code, 0, `kura admin ${args.join(' ')} --json exits 0:\n${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

function assertOk(res: RunResult, what: string): void {
  assert.equal(res.code, 0, `${what} exits 0:\n${res.stdout}\n${res.stderr}`);
}

/** A refusal: non-zero exit, one readable line on stderr (no stack trace), nothing on stdout. */
function assertRefused(res: RunResult, message: RegExp): void {
  assert.notEqual(res.code, 0, 'exits non-zero');
  assert.match(res.stderr, /^kura: /);
  assert.match(res.stderr, message);
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(res.stdout, '');
}

describe('kura admin (the real CLI over a data folder)', () => {
  let tmp: string;
  let data: string;

  before(async () => {
    tmp = await makeTempDir('kura-cli-');
    data = join(tmp, 'data');
  });

  after(() => removeTempDir(tmp));

  it('ca init creates the CA once and a second run says nothing changed', async () => {
    const first = await admin(data, ['ca', 'init']);
    assertOk(first, 'ca init');
    assert.match(first.stdout, /Created the Kura CA in /);
    const caPem = await readFile(join(data, 'ca', 'ca.pem'), 'utf8');
    assert.ok(new X509Certificate(caPem).ca, 'ca.pem is a CA certificate');
    assert.equal((await stat(join(data, 'ca', 'ca.key'))).mode & 0o777, 0o600);
    const second = await admin(data, ['ca', 'init']);
    assertOk(second, 'second ca init');
    assert.match(second.stdout, /already exists.*nothing changed/);
    assert.equal(await readFile(join(data, 'ca', 'ca.pem'), 'utf8'), caPem);
  });

  it('user add creates alice and user list shows her as a table and as parseable JSON', async () => {
    const added = await admin(data, ['user', 'add', 'alice']);
    assertOk(added, 'user add alice');
    assert.match(added.stdout, /Added user alice/);
    const human = await admin(data, ['user', 'list']);
    assertOk(human, 'user list');
    const lines = human.stdout.trim().split('\n');
    assert.deepEqual(lines[0]?.split(/\s+/), ['USER', 'STATUS', 'CREATED']);
    assert.match(lines[1] ?? '', /^alice\s+enabled\s+\d{4}-\d\d-\d\dT/);
    const users = await adminJson<UserJson[]>(data, ['user', 'list']);
    assert.deepEqual(
      users.map((u) => [u.name, u.disabled]),
      [['alice', false]],
    );
  });

  it('contract set stores every field and contract show --json reads them back', async () => {
    const flags = '--quota 10GiB --max-snapshots 5 --from 2026-01-01 --until 2030-01-01 --status active --sessions-per-day 100';
    const set = await admin(data, ['contract', 'set', 'alice', ...flags.split(' ')]);
    assertOk(set, 'contract set');
    assert.match(set.stdout, /Contract of alice saved/);
    const c = await adminJson<Record<string, unknown>>(data, ['contract', 'show', 'alice']);
    assert.equal(c.quotaBytes, 10737418240);
    assert.equal(c.maxSnapshots, 5);
    assert.equal(c.validFrom, '2026-01-01T00:00:00.000Z');
    assert.equal(c.validUntil, '2030-01-01T00:00:00.000Z');
    assert.equal(c.status, 'active');
    assert.equal(c.sessionsPerDay, 100);
  });

  it('refuses bad input with a readable message on stderr and changes nothing', async () => {
    const contractBefore = await adminJson<unknown>(data, ['contract', 'show', 'alice']);
    const usersBefore = await adminJson<unknown>(data, ['user', 'list']);
    const cases: [string[], RegExp][] = [
      [['contract', 'set', 'alice', '--quota', 'lots'], /not a size: lots/],
      [['contract', 'set', 'alice', '--status', 'paused'], /--status must be one of active, suspended, cancelled/],
      [['contract', 'set', 'alice', '--from', '2026-01-01', '--until', '2025-01-01'], /must end after it starts/],
      [['contract', 'set', 'alice', '--until', '2025-06-01'], /must end after it starts/],
      [['contract', 'set', 'alice', '--max-snapshots', 'five'], /--max-snapshots must be a whole number/],
      [['contract', 'set', 'alice', '--from', 'someday'], /not a date: someday/],
      [['contract', 'set', 'nobody', '--quota', '1GiB'], /no user named nobody/],
      [['user', 'add', 'Bad Name'], /a user name is 2-32 characters/],
      [['user', 'add', 'alice'], /user alice already exists/],
      [['cert', 'revoke', 'ABCDEF0123'], /no certificate matches ABCDEF0123/],
    ];
    for (const [args, message] of cases) assertRefused(await admin(data, args), message);
    assert.deepEqual(await adminJson<unknown>(data, ['contract', 'show', 'alice']), contractBefore);
    assert.deepEqual(await adminJson<unknown>(data, ['user', 'list']), usersBefore);
  });

  it("cert issue writes alice.pem, alice.key, alice.p12 and ca.pem, signed by the data folder's CA", async () => {
    const out = join(tmp, 'alice-cert');
    const res = await admin(data, ['cert', 'issue', 'alice', '--out', out]);
    assertOk(res, 'cert issue');
    assert.deepEqual((await readdir(out)).sort(), ['alice.key', 'alice.p12', 'alice.pem', 'ca.pem']);
    const caPem = await readFile(join(data, 'ca', 'ca.pem'), 'utf8');
    assert.equal(await readFile(join(out, 'ca.pem'), 'utf8'), caPem);
    const cert = new X509Certificate(await readFile(join(out, 'alice.pem')));
    assert.ok(cert.verify(new X509Certificate(caPem).publicKey), 'signed by the CA');
    assert.match(cert.subject, /CN=alice/);
    assert.match(res.stdout, new RegExp(`serial ${cert.serialNumber}`));
    for (const secret of ['alice.key', 'alice.p12']) assert.equal((await stat(join(out, secret))).mode & 0o777, 0o600, secret);
    assert.ok((await stat(join(out, 'alice.p12'))).size > 0);
  });

  it('cert list shows the certificate as valid and cert revoke by serial marks it revoked', async () => {
    const [cert] = await adminJson<CertJson[]>(data, ['cert', 'list']);
    assert.ok(cert);
    const human = await admin(data, ['cert', 'list']);
    assertOk(human, 'cert list');
    assert.match(human.stdout, new RegExp(`^alice\\s+${cert.serial}\\s+\\S+\\s+append-only\\s+valid$`, 'm'));
    const revoked = await admin(data, ['cert', 'revoke', cert.serial]);
    assertOk(revoked, 'cert revoke');
    assert.match(revoked.stdout, new RegExp(`Revoked certificate ${cert.serial} of alice`));
    const after = await adminJson<CertJson[]>(data, ['cert', 'list', 'alice']);
    assert.equal(after.length, 1);
    assert.notEqual(after[0]?.revokedAt, null);
    assert.match((await admin(data, ['cert', 'list'])).stdout, /revoked \d{4}-/);
  });

  it('app-password add prints a password once and app-password revoke removes it', async () => {
    const added = await admin(data, ['app-password', 'add', 'alice']);
    assertOk(added, 'app-password add');
    const password = added.stdout.trim().split('\n').at(-1) ?? '';
    // Letters and digits only: a password must never look like a command-line option (litmus read a leading '-' as one).
    assert.match(password, /^[A-Za-z0-9]{24}$/);
    const revoked = await admin(data, ['app-password', 'revoke', 'alice']);
    assertOk(revoked, 'app-password revoke');
    assert.match(revoked.stdout, /Revoked 1 app password of alice/);
    const again = await admin(data, ['app-password', 'revoke', 'alice']);
    assert.match(again.stdout, /Revoked 0 app passwords of alice/);
  });

  it("user disable and enable flip the user's status", async () => {
    const disabled = await admin(data, ['user', 'disable', 'alice']);
    assertOk(disabled, 'user disable');
    assert.match(disabled.stdout, /User alice is now disabled/);
    assert.equal((await adminJson<UserJson[]>(data, ['user', 'list']))[0]?.disabled, true);
    assert.match((await admin(data, ['user', 'list'])).stdout, /^alice\s+disabled/m);
    assertOk(await admin(data, ['user', 'enable', 'alice']), 'user enable');
    assert.equal((await adminJson<UserJson[]>(data, ['user', 'list']))[0]?.disabled, false);
  });

  it('usage --recount measures the area on disk, corrects the counter and reports the drift', async () => {
    const [alice] = await adminJson<UserJson[]>(data, ['user', 'list']);
    assert.ok(alice);
    const files = join(data, 'areas', alice.id, 'files');
    await mkdir(join(files, 'sub'), { recursive: true });
    await writeFile(join(files, 'a.bin'), Buffer.alloc(1000, 1));
    await writeFile(join(files, 'sub', 'b.bin'), Buffer.alloc(234, 2));
    const first = await adminJson<Record<string, unknown>[]>(data, ['usage', '--recount']);
    assert.deepEqual(first, [
      { user: 'alice', usedBytes: 1234, quotaBytes: 10737418240, measuredBytes: 1234, counterBefore: 0, drift: 1234 },
    ]);
    const second = await adminJson<Record<string, unknown>[]>(data, ['usage', '--recount']);
    assert.equal(second[0]?.drift, 0);
    const plain = await adminJson<Record<string, unknown>[]>(data, ['usage']);
    assert.deepEqual(plain, [{ user: 'alice', usedBytes: 1234, quotaBytes: 10737418240 }]);
  });
});

interface CurlResult {
  status: number;
  body: string;
}

/** curl against the gateway; the status comes from -w and the body from a scratch file. */
async function curl(tmp: string, args: string[]): Promise<CurlResult> {
  const out = join(tmp, 'curl.out');
  await writeFile(out, '');
  const res = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', ...args], { timeoutMs: 30_000 });
  assert.equal(res.code, 0, `curl ran:\n${res.stderr}`);
  return { status: Number(res.stdout), body: await readFile(out, 'utf8') };
}

interface Demo {
  ca: string;
  cert: string;
  key: string;
  p12: string;
  passwordFile: string;
}

function demoFiles(data: string): Demo {
  const dir = join(data, 'demo');
  return {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'demo.pem'),
    key: join(dir, 'demo.key'),
    p12: join(dir, 'demo.p12'),
    passwordFile: join(dir, 'demo.app-password'),
  };
}

/** The first printed line that starts (after indentation) with prefix. */
function printedLine(output: string, prefix: string): string {
  const line = output.split('\n').find((l) => l.trimStart().startsWith(prefix));
  assert.ok(line, `the output has a line starting with "${prefix}":\n${output}`);
  return line.trim();
}

describe('kura serve on an empty data folder (the first-start contract)', () => {
  let tmp: string;
  let data: string;
  let server: Watched;
  let url: string;
  let demo: Demo;
  let demoFilesDir: string;

  before(async () => {
    tmp = await makeTempDir('kura-serve-');
    data = await makeTempDir('kura-serve-data-');
    server = watch(process.execPath, [kuraCli, 'serve', '--data', data, '--port', '0'], { cwd: repoRoot });
    const listening = await server.waitFor(/Kura gateway listening on (https:\/\/127\.0\.0\.1:(\d+)\/)/);
    url = listening[1] ?? '';
    assert.notEqual(Number(listening[2]), 0, 'the printed URL shows the real port');
    await server.waitFor(/mount -t davfs/);
    demo = demoFiles(data);
    const [user] = await adminJson<UserJson[]>(data, ['user', 'list']);
    demoFilesDir = join(data, 'areas', user?.id ?? 'missing', 'files');
  });

  after(async () => {
    await server.stop();
    await removeTempDir(tmp);
    await removeTempDir(data);
  });

  it('writes ca.pem, demo.pem, demo.key, demo.p12 and demo.app-password to <data>/demo/', async () => {
    assert.deepEqual((await readdir(join(data, 'demo'))).sort(), ['ca.pem', 'demo.app-password', 'demo.key', 'demo.p12', 'demo.pem']);
    assert.equal(await readFile(demo.ca, 'utf8'), await readFile(join(data, 'ca', 'ca.pem'), 'utf8'));
    assert.match(new X509Certificate(await readFile(demo.cert)).subject, /CN=demo/);
    assert.match(await readFile(demo.passwordFile, 'utf8'), /^[A-Za-z0-9_-]{20,}\n$/);
    for (const secret of [demo.key, demo.p12, demo.passwordFile]) assert.equal((await stat(secret)).mode & 0o777, 0o600, secret);
    const users = await adminJson<UserJson[]>(data, ['user', 'list']);
    assert.deepEqual(
      users.map((u) => u.name),
      ['demo'],
    );
  });

  it('prints ready-to-paste rclone, curl and davfs lines that work as printed', async () => {
    const out = server.output();
    const curlCert = printedLine(out, 'curl --cacert ' + demo.ca + ' --cert');
    const curlPassword = printedLine(out, 'curl --cacert ' + demo.ca + ' -u demo:');
    const rclone = printedLine(out, 'rclone ');
    const davfs = printedLine(out, 'davfs2');
    assert.match(davfs, new RegExp(`mount -t davfs ${url}files/ /mnt$`));
    await writeFile(join(tmp, 'README.md'), 'pasted from the first-start output\n');
    assertOk(await run('sh', ['-c', curlCert], { cwd: tmp }), curlCert);
    assert.equal(await readFile(join(demoFilesDir, 'README.md'), 'utf8'), 'pasted from the first-start output\n');
    const listing = await run('sh', ['-c', curlPassword], { cwd: tmp });
    assertOk(listing, curlPassword);
    assert.match(listing.stdout, /README\.md/);
    await writeFile(join(tmp, 'rclone.conf'), '');
    const lsf = await run('sh', ['-c', rclone], { cwd: tmp, env: { ...process.env, RCLONE_CONFIG: join(tmp, 'rclone.conf') } });
    assertOk(lsf, rclone);
    assert.match(lsf.stdout, /^README\.md$/m);
  });

  it('stores and returns a file with curl using the demo certificate', async () => {
    const auth = ['--cacert', demo.ca, '--cert', demo.cert, '--key', demo.key];
    await writeFile(join(tmp, 'by-cert.txt'), 'uploaded with the demo certificate\n');
    const put = await curl(tmp, [...auth, '-T', join(tmp, 'by-cert.txt'), `${url}files/by-cert.txt`]);
    assert.equal(put.status, 201);
    const get = await curl(tmp, [...auth, `${url}files/by-cert.txt`]);
    assert.deepEqual(get, { status: 200, body: 'uploaded with the demo certificate\n' });
    assert.equal(await readFile(join(demoFilesDir, 'by-cert.txt'), 'utf8'), 'uploaded with the demo certificate\n');
  });

  it('stores and returns a file with curl using the demo app password', async () => {
    const password = (await readFile(demo.passwordFile, 'utf8')).trim();
    const auth = ['--cacert', demo.ca, '-u', `demo:${password}`];
    await writeFile(join(tmp, 'by-password.txt'), 'uploaded with the demo app password\n');
    const put = await curl(tmp, [...auth, '-T', join(tmp, 'by-password.txt'), `${url}files/by-password.txt`]);
    assert.equal(put.status, 201);
    const get = await curl(tmp, [...auth, `${url}files/by-password.txt`]);
    assert.deepEqual(get, { status: 200, body: 'uploaded with the demo app password\n' });
    const wrong = await curl(tmp, ['--cacert', demo.ca, '-u', 'demo:not-the-password', `${url}files/by-password.txt`]);
    assert.equal(wrong.status, 401);
  });

  it('refuses the demo certificate with 403 certificate-revoked once another process revokes it, without a restart', async () => {
    const auth = ['--cacert', demo.ca, '--cert', demo.cert, '--key', demo.key];
    assert.equal((await curl(tmp, [...auth, `${url}files/by-cert.txt`])).status, 200);
    const [cert] = await adminJson<CertJson[]>(data, ['cert', 'list', 'demo']);
    assert.ok(cert);
    assertOk(await admin(data, ['cert', 'revoke', cert.serial]), 'cert revoke while the server runs');
    const refused = await curl(tmp, [...auth, `${url}files/by-cert.txt`]);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /^certificate-revoked/);
    const put = await curl(tmp, [...auth, '-T', join(tmp, 'by-cert.txt'), `${url}files/after-revoke.txt`]);
    assert.equal(put.status, 403);
    await assert.rejects(stat(join(demoFilesDir, 'after-revoke.txt')), { code: 'ENOENT' });
    const password = (await readFile(demo.passwordFile, 'utf8')).trim();
    const byPassword = await curl(tmp, ['--cacert', demo.ca, '-u', `demo:${password}`, `${url}files/by-cert.txt`]);
    assert.equal(byPassword.status, 200, 'the app password still works');
  });

  it('refuses a user disabled by another process with 403 user-disabled, and admits it again once enabled', async () => {
    const password = (await readFile(demo.passwordFile, 'utf8')).trim();
    const auth = ['--cacert', demo.ca, '-u', `demo:${password}`];
    assertOk(await admin(data, ['user', 'disable', 'demo']), 'user disable while the server runs');
    const refused = await curl(tmp, [...auth, `${url}files/by-password.txt`]);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /^user-disabled/);
    assertOk(await admin(data, ['user', 'enable', 'demo']), 'user enable while the server runs');
    assert.equal((await curl(tmp, [...auth, `${url}files/by-password.txt`])).status, 200);
  });

  it('stops cleanly on SIGTERM and a restart on the same folder creates no second demo user', async () => {
    const demoCert = await readFile(demo.cert, 'utf8');
    assert.equal(await server.stop('SIGTERM'), 0);
    assert.match(server.output(), /Stopping the gateway/);
    server = watch(process.execPath, [kuraCli, 'serve', '--data', data, '--port', '0'], { cwd: repoRoot });
    const listening = await server.waitFor(/Kura gateway listening on (https:\/\/127\.0\.0\.1:\d+\/)/);
    assert.doesNotMatch(server.output(), /Created a development CA|Created the demo user/);
    assert.equal(await readFile(demo.cert, 'utf8'), demoCert);
    const users = await adminJson<{ name: string }[]>(data, ['user', 'list']);
    assert.deepEqual(
      users.map((u) => u.name),
      ['demo'],
    );
    const healthz = await curl(tmp, ['--cacert', demo.ca, `${listening[1] ?? ''}healthz`]);
    assert.deepEqual(healthz, { status: 200, body: '{"status":"ok"}' });
    assert.equal(await server.stop('SIGTERM'), 0);
  });
});

/** Holds a port on 127.0.0.1 so that a gateway cannot listen on it. */
async function occupyPort(): Promise<Server> {
  const blocker = createServer();
  await new Promise<void>((resolvePromise) => blocker.listen(0, '127.0.0.1', resolvePromise));
  return blocker;
}

describe('kura serve when it cannot start', () => {
  const dirs: string[] = [];
  const freshDataDir = async () => {
    dirs.push(await makeTempDir('kura-serve-fail-'));
    return dirs[dirs.length - 1] ?? '';
  };

  after(async () => {
    for (const dir of dirs) await removeTempDir(dir);
  });

  it('refuses a port that is not a number with a message naming --port, before creating anything', async () => {
    const data = await freshDataDir();
    const res = await runKura(['serve', '--data', data, '--port', 'abc'], { timeoutMs: 30_000 });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /^kura: .*--port/);
    assert.deepEqual(await readdir(data), []);
  });

  it('after a first start that could not listen (port in use), the next start still prints the demo credentials', async () => {
    const data = await freshDataDir();
    const blocker = await occupyPort();
    const port = (blocker.address() as AddressInfo).port;
    const failed = await runKura(['serve', '--data', data, '--port', String(port)], { timeoutMs: 30_000 });
    await new Promise((resolvePromise) => blocker.close(resolvePromise));
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, new RegExp(`^kura: .*port ${port}.* already in use`));
    const server = watch(process.execPath, [kuraCli, 'serve', '--data', data, '--port', '0'], { cwd: repoRoot });
    try {
      await server.waitFor(/Kura gateway listening on/);
      await server.waitFor(/curl --cacert .*demo\.pem/, 5_000);
    } finally {
      await server.stop();
    }
  });
});

describe('kura serve when its output cannot be written', () => {
  let data: string;
  let tmp: string;
  before(async () => {
    data = await makeTempDir('kura-serve-full-');
    tmp = await makeTempDir('kura-serve-full-tmp-');
  });
  after(async () => {
    await removeTempDir(data);
    await removeTempDir(tmp);
  });

  it('keeps serving when stdout and stderr are on a full disk (/dev/full): the log lines are lost, not the gateway', async () => {
    const blocker = await occupyPort();
    const port = (blocker.address() as AddressInfo).port;
    await new Promise((resolvePromise) => blocker.close(resolvePromise));
    const full = await open('/dev/full', 'w');
    const child = spawn(process.execPath, [kuraCli, 'serve', '--data', data, '--port', String(port)], {
      cwd: repoRoot,
      stdio: ['ignore', full.fd, full.fd],
    });
    const exited = new Promise<number | null>((resolvePromise) => child.on('exit', resolvePromise));
    try {
      const ca = join(data, 'demo', 'ca.pem');
      const auth = ['--cacert', ca, '--cert', join(data, 'demo', 'demo.pem'), '--key', join(data, 'demo', 'demo.key')];
      const healthz = `https://127.0.0.1:${port}/healthz`;
      for (let i = 0; i < 150; i++) {
        const probe = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca, healthz], { timeoutMs: 10_000 });
        if (probe.stdout === '200') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      // Each request writes a log line to the full disk; the gateway must answer them all.
      for (let i = 0; i < 5; i++) {
        assert.equal((await curl(tmp, [...auth, `https://127.0.0.1:${port}/files/`])).status, 200);
      }
      assert.equal(child.exitCode, null, 'the gateway is still running');
    } finally {
      child.kill('SIGTERM');
      await exited;
      await full.close();
    }
  });
});
