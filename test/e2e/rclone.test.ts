import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { makeTempDir, removeTempDir, run, type RunResult } from '../helpers/processes.js';
import { genDataset } from '../helpers/dataset.js';

const GEN_DATASET = genDataset;
const RCLONE_TIMEOUT_MS = 5 * 60_000;

interface Dataset {
  dir: string;
  files: number;
  bytes: number;
}

async function createDataset(dir: string): Promise<Dataset> {
  const res = await run(process.execPath, [GEN_DATASET, 'create', dir, '--scale', 'tiny'], { timeoutMs: 120_000 });
  assert.equal(res.code, 0, res.stderr);
  const summary = JSON.parse(res.stdout) as { files: number; bytes: number };
  return { dir, files: summary.files, bytes: summary.bytes };
}

/** Every file under dir, as paths relative to dir. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

interface Rclone {
  (args: string[]): Promise<RunResult>;
}

/** rclone with an empty config file, so nothing from the machine's own config leaks in. */
function rcloneWith(configFile: string, auth: string[]): Rclone {
  const env = { ...process.env, RCLONE_CONFIG: configFile };
  return (args) => run('rclone', [...args, ...auth], { env, timeoutMs: RCLONE_TIMEOUT_MS });
}

describe('rclone against the gateway', () => {
  let gw: TestGateway;
  let user: TestUser;
  let tmp: string;
  let dataset: Dataset;
  let remoteFlags: string[];
  let certAuth: string[];

  before(async () => {
    gw = await startTestGateway();
    user = await gw.addUser('rclone');
    tmp = await makeTempDir('kura-rclone-');
    dataset = await createDataset(join(tmp, 'src'));
    await writeFile(join(tmp, 'rclone.conf'), '');
    await writeFile(join(tmp, 'ca.pem'), gw.caPem);
    await writeFile(join(tmp, 'client.pem'), user.certPem);
    await writeFile(join(tmp, 'client.key'), user.keyPem, { mode: 0o600 });
    remoteFlags = ['--webdav-url', `${gw.url}files/`, '--webdav-vendor', 'other', '--ca-cert', join(tmp, 'ca.pem')];
    certAuth = [...remoteFlags, '--client-cert', join(tmp, 'client.pem'), '--client-key', join(tmp, 'client.key')];
  });

  after(async () => {
    await gw.close();
    await removeTempDir(tmp);
  });

  it('copies the tiny dataset up with a client certificate and checks it byte for byte', async () => {
    const rclone = rcloneWith(join(tmp, 'rclone.conf'), certAuth);
    const started = Date.now();
    const copy = await rclone(['copy', dataset.dir, ':webdav:data', '--transfers', '4']);
    const copySeconds = (Date.now() - started) / 1000;
    assert.equal(copy.code, 0, `rclone copy exits 0:\n${copy.stderr}`);
    const check = await rclone(['check', dataset.dir, ':webdav:data', '--download']);
    const totalSeconds = (Date.now() - started) / 1000;
    const what = `${dataset.files} files (${dataset.bytes} bytes)`;
    console.log(`rclone: copied ${what} in ${copySeconds.toFixed(1)} s; copy + check --download took ${totalSeconds.toFixed(1)} s`);
    assert.equal(check.code, 0, `rclone check --download exits 0:\n${check.stderr}`);
  });

  it("leaves exactly the dataset's files, with identical bytes, in the user's folder on disk", async () => {
    const onDisk = join(gw.filesDir(user), 'data');
    const expected = await listFiles(dataset.dir);
    assert.equal(expected.length, dataset.files);
    assert.deepEqual(await listFiles(onDisk), expected);
    const sample = [...expected.filter((p) => p.startsWith('media/')), ...expected.filter((_, i) => i % 50 === 0)];
    for (const path of sample) {
      const [want, got] = await Promise.all([readFile(join(dataset.dir, path)), readFile(join(onDisk, path))]);
      assert.ok(want.equals(got), `${path} has identical bytes on disk`);
    }
  });

  it("counts exactly the dataset's total bytes against the user's quota", async () => {
    assert.equal(await gw.policy.usage.get(user.name), dataset.bytes);
  });

  it('lists and sizes the uploaded folder when authenticated by an obscured app password', async () => {
    const obscured = await run('rclone', ['obscure', user.password]);
    assert.equal(obscured.code, 0, obscured.stderr);
    const auth = [...remoteFlags, '--webdav-user', user.name, '--webdav-pass', obscured.stdout.trim()];
    const rclone = rcloneWith(join(tmp, 'rclone.conf'), auth);
    const started = Date.now();
    const lsf = await rclone(['lsf', ':webdav:data']);
    assert.equal(lsf.code, 0, `rclone lsf exits 0:\n${lsf.stderr}`);
    assert.deepEqual(lsf.stdout.split('\n').filter(Boolean).sort(), ['copies/', 'docs/', 'media/']);
    const size = await rclone(['size', ':webdav:data', '--json']);
    console.log(`rclone: listed and sized the folder with the app password in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(size.code, 0, `rclone size exits 0:\n${size.stderr}`);
    assert.deepEqual(JSON.parse(size.stdout), { count: dataset.files, bytes: dataset.bytes, sizeless: 0 });
  });
});
