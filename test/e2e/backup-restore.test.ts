import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { usageReport } from '../../gateway/policy/recount.js';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { dav, startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { makeTempDir, removeTempDir, type RunResult, type Watched } from '../helpers/processes.js';
import {
  agent,
  agentEnv,
  backup,
  copyAside,
  corruptBiggestPack,
  createDataset,
  decorateTree,
  diffTrees,
  exitOf,
  mustAgent,
  mutateDataset,
  namesUnder,
  packBytes,
  randomFiles,
  smallTree,
  startAgent,
  storedPacks,
  swapTwinBlobs,
  treeFacts,
  waitForFile,
  waitForPacks,
  type AgentEnv,
  type AgentOptions,
} from '../helpers/agent.js';

const MiB = 1024 * 1024;
const PASSPHRASE = 'correct horse battery staple';

/**
 * Bound on the second backup's upload, as a multiple of the bytes the generator really changed: the
 * issue's 2×. The generator inserts 1 MiB of random bytes into two of the large files, and an
 * insertion costs itself plus the chunk it lands in plus a little until the old cuts are found again:
 * with the half-MiB chunks of new repositories, 1.65 MiB of new chunks per inserted MiB on average
 * over 600 insertions into these files, p90 2.18 (`node dist/bench/chunk-insertions.js --scale
 * tiny`); this mutation (seed 1, round 1) uploads 1.70×. The 0.88 MiB chunks used before stored 2.38
 * MiB on average and 2.27× here; restic (0.14) stored 1.77× to 2.74× over six fresh repositories,
 * 2.29× on average. Re-sending the two edited files whole would be over 8×.
 */
const INCREMENTAL_LIMIT = 2;

let gw: TestGateway;
let work: string;
/** The tiny benchmark dataset, never modified. */
let tiny: string;
/** The tiny dataset plus 4 × 20 MiB of random files: several packs per backup. */
let big: string;
let users = 0;
let dirs = 0;

const newDir = (label: string) => join(work, `${label}-${++dirs}`);
const freshDir = async (label: string) => {
  const dir = newDir(label);
  await mkdir(dir);
  return dir;
};
const usage = (user: TestUser) => gw.policy.usage.get(user.name);
const tmpOf = (user: TestUser) => areaLayout(gw.policy.layout, user.id).tmp;

/** A fresh user with its agent environment, the repository initialised. */
async function newRepo(opts: AgentOptions & { plaintext?: boolean; quotaBytes?: number } = { passphrase: PASSPHRASE }) {
  const user = await gw.addUser(`br${++users}`, opts.quotaBytes ? { quotaBytes: opts.quotaBytes } : {});
  const env = await agentEnv(gw, user, { ...opts, under: work });
  await mustAgent(env, ['key', 'init', ...(opts.plaintext ? ['--plaintext'] : [])]);
  return { user, env };
}

/** Restores `spec` into a fresh folder and returns that folder (the snapshot's folder is inside it). */
async function restoreOk(env: AgentEnv, spec: string): Promise<string> {
  const target = newDir('restore');
  const r = await agent(env, ['restore', spec, '--target', target]);
  assert.equal(r.code, 0, `restore ${spec} exits 0:\n${r.stdout}\n${r.stderr}`);
  return target;
}

/** The restored copy of `source` (TARGET/<basename>) equals `expected`: names, kinds, bytes, modes, mtimes, link targets. */
async function assertSameTree(expected: string, target: string, folderName: string): Promise<void> {
  assert.deepEqual(await readdir(target), [folderName], 'the target holds only the backed-up folder');
  const diff = diffTrees(await treeFacts(expected), await treeFacts(join(target, folderName)));
  assert.deepEqual(diff, [], `restored tree differs from ${expected}`);
}

async function assertNoTempFiles(user: TestUser): Promise<void> {
  for (let i = 0; i < 50 && (await readdir(tmpOf(user))).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await readdir(tmpOf(user)), [], 'no temp file is left in the area');
}

/** The bytes of packs one uninterrupted backup of dir stores, in a fresh user's area. */
async function cleanRunPackBytes(dir: string): Promise<number> {
  const clean = await newRepo();
  await backup(clean.env, [dir]);
  return packBytes(gw, clean.user);
}

async function roundTrip(opts: AgentOptions & { plaintext?: boolean }): Promise<void> {
  const { env } = await newRepo(opts);
  const src = join(await freshDir('rt'), 'data');
  await copyAside(tiny, src);
  await decorateTree(src);
  const first = await backup(env, [src]);
  const saved = newDir('saved');
  await copyAside(src, saved);
  const changed = await mutateDataset(src, 1);
  const second = await backup(env, [src]);
  assert.ok(
    second.bytesUploaded < INCREMENTAL_LIMIT * changed,
    `second backup uploaded ${second.bytesUploaded} B for ${changed} changed bytes (limit ${INCREMENTAL_LIMIT}×)`,
  );
  assert.notEqual(first.snapshot, second.snapshot);
  const targets = await Promise.all([restoreOk(env, first.snapshot.slice(0, 12)), restoreOk(env, second.snapshot.slice(0, 12))]);
  await assertSameTree(saved, targets[0], 'data');
  await assertSameTree(src, targets[1], 'data');
}

function assertCancelled(w: Watched, exit: { code: number | null }): void {
  assert.notEqual(exit.code, 0, `a cancelled backup exits non-zero:\n${w.output()}`);
  assert.match(w.output(), /cancelled/i);
  assert.match(w.output(), /resume/i);
}

async function snapshotCount(env: AgentEnv): Promise<number> {
  return (JSON.parse(await mustAgent(env, ['snapshots', '--json'])) as unknown[]).length;
}

function assertRefusal(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `exits non-zero:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('backup and restore with the real agent against a real gateway', () => {
  before(async () => {
    gw = await startTestGateway();
    work = await makeTempDir('kura-backup-restore-');
    tiny = join(work, 'tiny');
    await createDataset(tiny);
    big = join(work, 'big');
    await copyAside(tiny, big);
    await randomFiles(join(big, 'random'), 4, 20 * MiB);
  });
  after(async () => {
    await gw.close();
    await removeTempDir(work);
  });

  describe('round trip: backup, change, backup again, restore both snapshots', () => {
    it('restores both snapshots of an encrypted repository identically (bytes, modes, mtimes, symlinks) and the second uploads only the changes', async () => {
      await roundTrip({ passphrase: PASSPHRASE });
    });

    it('restores both snapshots of a plaintext repository identically and the second uploads only the changes', async () => {
      await roundTrip({ plaintext: true });
    });
  });

  describe('a repository with one small snapshot', () => {
    let user: TestUser;
    let env: AgentEnv;
    let src: string;
    before(async () => {
      ({ user, env } = await newRepo());
      src = join(await freshDir('small'), 'docs');
      await smallTree(src);
      await backup(env, [src]);
    });

    it('restores on a different PC with only the certificate and the passphrase, or with an exported key file', async () => {
      const otherPc = await agentEnv(gw, user, { passphrase: PASSPHRASE, host: 'pc2', under: work });
      const keyFile = join(await freshDir('key'), 'kura.key');
      const [target] = await Promise.all([restoreOk(otherPc, 'latest'), mustAgent(otherPc, ['key', 'export', '--out', keyFile])]);
      await assertSameTree(src, target, 'docs');
      assert.equal((await lstat(keyFile)).mode & 0o777, 0o600, 'the key file is private');
      const withKeyFile = await agentEnv(gw, user, { keyFile, host: 'pc3', under: work });
      assert.equal(withKeyFile.KURA_PASSPHRASE, undefined);
      await assertSameTree(src, await restoreOk(withKeyFile, 'latest'), 'docs');
    });

    it('restores only the paths asked for, a folder and a file, and refuses a path the snapshot does not hold', async () => {
      const target = newDir('partial');
      const r = await agent(env, ['restore', 'latest', 'docs/sub', '/docs/a.txt', '--target', target, '--json']);
      assert.equal(r.code, 0, `partial restore exits 0:\n${r.stdout}\n${r.stderr}`);
      assert.deepEqual((await readdir(join(target, 'docs'))).sort(), ['a.txt', 'sub'], 'nothing else of docs/');
      assert.deepEqual(diffTrees(await treeFacts(join(src, 'sub')), await treeFacts(join(target, 'docs', 'sub'))), []);
      assert.deepEqual(await readFile(join(target, 'docs', 'a.txt')), await readFile(join(src, 'a.txt')));
      const summary = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; restored?: number })
        .find((e) => e.event === 'summary');
      assert.equal(summary?.restored, 3, 'a.txt, sub/b.md and sub/deeper/random.bin');
      const again = await agent(env, ['restore', 'latest', 'docs/sub', 'docs/a.txt', '--target', target]);
      assert.equal(again.code, 0, `second partial restore exits 0:\n${again.stdout}\n${again.stderr}`);
      assert.match(again.stdout + again.stderr, /files in the paths asked for\s+3\b/);
      assert.match(again.stdout + again.stderr, /already there and verified\s+3\b/);

      const untouched = newDir('partial-absent');
      const absent = await agent(env, ['restore', 'latest', 'docs/sub', 'docs/nope.txt', '--target', untouched]);
      assertRefusal(absent, /not in snapshot [0-9a-f]{12}: "docs\/nope\.txt"/);
      assert.equal(await lstat(untouched).catch(() => null), null, 'the target is not even created');
    });

    it('refuses a wrong passphrase with a clear message and writes nothing to the target', async () => {
      const wrong = await agentEnv(gw, user, { passphrase: 'not the passphrase', under: work });
      const target = newDir('wrong-target');
      const packs = await storedPacks(gw, user);
      const [restore, again] = await Promise.all([agent(wrong, ['restore', 'latest', '--target', target]), agent(wrong, ['backup', src])]);
      assertRefusal(restore, /wrong passphrase/i);
      assert.equal(await lstat(target).catch(() => null), null, 'the target is not even created');
      assertRefusal(again, /wrong passphrase/i);
      assert.deepEqual(await storedPacks(gw, user), packs, 'a backup with the wrong passphrase stores nothing');
    });

    it('hostile: refuses with 400 a pack whose bytes do not match its name, storing nothing and charging nothing', async () => {
      const packs = await storedPacks(gw, user);
      const used = await usage(user);
      const name = 'ab' + 'c0ffee'.repeat(11).slice(0, 62);
      const res = await dav(gw, { user, method: 'PUT', path: `/.kura/packs/ab/${name}`, body: Buffer.alloc(64 * 1024, 7) });
      assert.equal(res.status, 400, res.text);
      assert.match(res.text, /bad-pack/);
      assert.deepEqual(await storedPacks(gw, user), packs, 'nothing stored under kura/packs');
      assert.equal(await usage(user), used, 'usage counter unchanged');
      await assertNoTempFiles(user);
    });

    it('hostile: answers 2xx to a repeat PUT of an existing pack and keeps a single copy', async () => {
      const packs = await storedPacks(gw, user);
      const pack = packs[0];
      assert.ok(pack);
      const used = await usage(user);
      const body = await readFile(pack.path);
      const id = basename(pack.path);
      const res = await dav(gw, { user, method: 'PUT', path: `/.kura/packs/${id.slice(0, 2)}/${id}`, body });
      assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}: ${res.text}`);
      assert.deepEqual(await storedPacks(gw, user), packs, 'no second copy');
      assert.ok((await readFile(pack.path)).equals(body), 'the stored pack is unchanged');
      assert.equal(await usage(user), used, 'usage counter unchanged');
    });

    it('hostile: refuses with 403 to DELETE a snapshot record (append-only) and keeps it', async () => {
      const snapshots = join(areaLayout(gw.policy.layout, user.id).kura, 'snapshots', 'pc1');
      const [id] = await readdir(snapshots);
      assert.ok(id);
      const res = await dav(gw, { user, method: 'DELETE', path: `/.kura/snapshots/pc1/${id}` });
      assert.equal(res.status, 403, res.text);
      assert.match(res.text, /append-only/);
      assert.ok(await lstat(join(snapshots, id)), 'the record is still there');
      assert.equal(await snapshotCount(env), 1);
    });
  });

  it('resumes a backup killed with SIGKILL twice and stores no more than 1.1× the packs of a clean run', async () => {
    const { user, env } = await newRepo();
    for (const morePacks of [1, 2]) {
      const w = startAgent(env, ['backup', big, '--json']);
      await waitForPacks(gw, user, (await storedPacks(gw, user)).length + morePacks, w);
      w.child.kill('SIGKILL');
      assert.equal((await exitOf(w)).signal, 'SIGKILL');
    }
    assert.equal(await snapshotCount(env), 0, 'a killed backup commits no snapshot');
    const done = await backup(env, [big]);
    const stored = await packBytes(gw, user);
    assert.ok(done.bytesUploaded < stored, 'the last run reused the packs of the killed runs');
    const [cleanBytes, target] = await Promise.all([cleanRunPackBytes(big), restoreOk(env, done.snapshot.slice(0, 16))]);
    assert.ok(stored <= 1.1 * cleanBytes, `resumed runs stored ${stored} B of packs, a clean run ${cleanBytes} B`);
    await assertSameTree(big, target, 'big');
    await assertNoTempFiles(user);
  });

  it('stops cleanly on `backup --cancel` and on Ctrl-C, says it can be resumed, and the next backup completes', async () => {
    const { user, env } = await newRepo();
    const pidFile = join(env.KURA_STATE_DIR ?? '', 'backup-pc1.pid');
    const first = startAgent(env, ['backup', big]);
    await waitForFile(pidFile, first);
    const cancel = await agent(env, ['backup', '--cancel']);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /asked the backup of pc1 .* to stop/i);
    assertCancelled(first, await exitOf(first));
    const second = startAgent(env, ['backup', big]);
    await waitForPacks(gw, user, (await storedPacks(gw, user)).length + 1, second);
    second.child.kill('SIGINT');
    assertCancelled(second, await exitOf(second));
    assert.equal(await lstat(pidFile).catch(() => null), null, 'the pid file is removed');
    assert.equal(await snapshotCount(env), 0, 'a cancelled backup commits no snapshot');
    const done = await backup(env, [big]);
    assert.ok(done.bytesUploaded < (await packBytes(gw, user)), 'the completing run reused the parts already uploaded');
    assert.equal(await snapshotCount(env), 1);
  });

  it('restores every other file when a pack is damaged on disk, names the lost file, exits 3 and leaves no partial file', async () => {
    const { user, env } = await newRepo();
    const src = join(newDir('damaged'), 'album');
    await smallTree(src, 0);
    await randomFiles(src, 1, 24 * MiB, 'big');
    await backup(env, [src]);
    await corruptBiggestPack(gw, user);
    const target = newDir('damaged-target');
    const r = await agent(env, ['restore', 'latest', '--target', target]);
    assert.equal(r.code, 3, `exit code 3:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /^NOT restored: album\/big_0\.bin: /m);
    assert.equal(r.stderr.match(/^NOT restored: /gm)?.length, 1, `only the damaged file is named:\n${r.stderr}`);
    assert.equal(await lstat(join(target, 'album', 'big_0.bin')).catch(() => null), null, 'no partial file');
    assert.deepEqual(diffTrees(await treeFacts(src), await treeFacts(join(target, 'album')), ['big_0.bin']), []);
    assert.deepEqual(
      (await namesUnder(target)).filter((n) => n.includes('.kura-restore-')),
      [],
      'no temp file left',
    );
  });

  it('hostile: catches a gateway that serves one genuine blob in place of another, naming both files', async () => {
    const { user, env } = await newRepo();
    const src = join(newDir('swapped'), 'album');
    await smallTree(src, 0);
    // Two random files under the chunker's minimum: one raw blob each, of the same stored length.
    await randomFiles(src, 2, 200 << 10, 'twin');
    await backup(env, [src]);
    await swapTwinBlobs(gw, user);
    const target = newDir('swapped-target');
    const r = await agent(env, ['restore', 'latest', '--target', target]);
    assert.equal(r.code, 3, `exit code 3:\n${r.stdout}\n${r.stderr}`);
    const named = (r.stderr.match(/^NOT restored: .*$/gm) ?? []).sort();
    assert.equal(named.length, 2, `both files are named:\n${r.stderr}`);
    assert.match(named[0]!, /^NOT restored: album\/twin_0\.bin: .*is not the blob of this id/);
    assert.match(named[1]!, /^NOT restored: album\/twin_1\.bin: /);
    for (const name of ['twin_0.bin', 'twin_1.bin'])
      assert.equal(await lstat(join(target, 'album', name)).catch(() => null), null, `no ${name}`);
    assert.deepEqual(diffTrees(await treeFacts(src), await treeFacts(join(target, 'album')), ['twin_0.bin', 'twin_1.bin']), []);
    const check = await agent(env, ['check', '--read-data']);
    assert.notEqual(check.code, 0, `kura check --read-data finds them too:\n${check.stdout}`);
  });

  it('fails a backup over quota with 507 quota-exceeded, and the usage counter equals the bytes on disk', async () => {
    const { user, env } = await newRepo({ passphrase: PASSPHRASE, quotaBytes: 5 * MiB });
    const r = await agent(env, ['backup', tiny]);
    assertRefusal(r, /507/);
    assert.match(r.stderr, /quota-exceeded/);
    assert.equal(await snapshotCount(env), 0);
    await assertNoTempFiles(user);
    const line = (await usageReport(gw.policy, true)).find((l) => l.user === user.name);
    assert.ok(line);
    assert.equal(line.drift, 0, `counter ${line.counterBefore} B, disk ${line.measuredBytes} B`);
    assert.ok((line.measuredBytes ?? Infinity) <= 5 * MiB);
  });
});
