import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { parsePack } from '../../format/index.js';
import { basename, join } from 'node:path';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { BlobIndex } from '../../gateway/storage/blob-index.js';
import { indexFile } from '../../gateway/storage/pack-check.js';
import { startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { makeTempDir, removeTempDir, runKura, type RunResult } from '../helpers/processes.js';
import {
  agent,
  agentEnv,
  backup,
  corruptBiggestPack,
  mustAgent,
  packsDir,
  randomFiles,
  smallTree,
  storedPacks,
  type AgentEnv,
} from '../helpers/agent.js';

const MiB = 1024 * 1024;
const PASSPHRASE = 'check the storehouse';

let gw: TestGateway;
let work: string;
let users = 0;

/** A fresh user whose repository holds one backup of a small tree plus one 12 MiB file (album/). */
async function backedUp(opts: { plaintext?: boolean } = {}): Promise<{ user: TestUser; env: AgentEnv; src: string }> {
  const user = await gw.addUser(`ck${++users}`);
  const env = await agentEnv(gw, user, { passphrase: opts.plaintext ? undefined : PASSPHRASE, under: work });
  await mustAgent(env, ['key', 'init', ...(opts.plaintext ? ['--plaintext'] : [])]);
  const src = join(work, `src-${users}`, 'album');
  await smallTree(src, 0);
  await randomFiles(src, 1, 12 * MiB, 'big');
  await backup(env, [src]);
  return { user, env, src };
}

function adminCheck(user: string, ...extra: string[]): Promise<RunResult> {
  return runKura(['admin', 'check', user, ...extra, '--data', gw.dataDir], { timeoutMs: 120_000 });
}

interface AgentReport {
  event: string;
  status: 'ok' | 'damaged';
  snapshots: number;
  dataBlobs: number;
  blobsRead: number;
  damaged: { id: string; pack: string | null; reason: string }[];
  packs: { pack: string; blobs: string[] }[];
  affected: { id: string; paths: string[] }[];
}

interface AdminReport {
  status: 'ok' | 'damaged';
  packs: number;
  indexedPacks: number;
  problems: { kind: string; pack: string; blobs: string[]; message: string }[];
  repairedIndex: { packs: number; blobs: number } | null;
}

async function agentCheck(env: AgentEnv, ...extra: string[]): Promise<{ r: RunResult; report: AgentReport }> {
  const r = await agent(env, ['check', '--json', ...extra]);
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  return { r, report: JSON.parse(last) as AgentReport };
}

async function adminReport(user: string, ...extra: string[]): Promise<{ r: RunResult; report: AdminReport }> {
  const r = await adminCheck(user, '--json', ...extra);
  return { r, report: JSON.parse(r.stdout) as AdminReport };
}

const indexOf = (user: TestUser) => indexFile(areaLayout(gw.policy.layout, user.id));

describe('kura check and kura admin check against a real gateway', () => {
  before(async () => {
    gw = await startTestGateway();
    work = await makeTempDir('kura-check-');
  });
  after(async () => {
    await gw.close();
    await removeTempDir(work);
  });

  it('reports a clean repository as clean: exit 0 from both checks, every blob read with --read-data', async () => {
    const { user, env } = await backedUp();
    const { r, report } = await agentCheck(env, '--read-data');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(report.status, 'ok');
    assert.equal(report.snapshots, 1);
    assert.ok(report.dataBlobs >= 12, `a 12 MiB file is several blobs (${report.dataBlobs})`);
    assert.ok(report.blobsRead > report.dataBlobs, 'data blobs and trees were read');
    const human = await agent(env, ['check']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /no damage found/i, "the summary goes to stderr, as backup's and restore's do");
    const admin = await adminCheck(user.name);
    assert.equal(admin.code, 0, `${admin.stdout}\n${admin.stderr}`);
    assert.match(admin.stdout, /No damage found/);
  });

  it('a byte flipped in a stored pack: both checks name the pack, the agent check names the file, exit 3', async () => {
    const { user, env } = await backedUp();
    const { pack, blob } = await corruptBiggestPack(gw, user);
    const packId = basename(pack);
    const { r, report } = await agentCheck(env, '--read-data');
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.equal(report.status, 'damaged');
    assert.deepEqual(
      report.damaged.map((d) => [d.id, d.pack]),
      [[blob, packId]],
    );
    assert.deepEqual(
      report.affected.flatMap((a) => a.paths),
      ['album/big_0.bin'],
    );
    const human = await agent(env, ['check', '--read-data']);
    assert.equal(human.code, 3);
    assert.match(human.stdout, new RegExp(`Damaged pack ${packId}:\\n  data blob ${blob}: its bytes were altered`));
    assert.match(human.stdout, /^ {2}album\/big_0\.bin$/m);
    const light = await agent(env, ['check']);
    assert.equal(light.code, 0, 'without --read-data only trees are read, and they are intact');
    const admin = await adminReport(user.name);
    assert.equal(admin.r.code, 3, admin.r.stderr);
    assert.deepEqual(
      admin.report.problems.map((p) => [p.kind, p.pack]),
      [['hash-mismatch', packId]],
    );
    assert.ok(admin.report.problems[0]?.blobs.includes(blob));
    const text = await adminCheck(user.name);
    assert.match(text.stdout, new RegExp(`hash-mismatch: pack ${packId} does not hash to its name`));
  });

  it('a plaintext repository: the admin check also names the damaged blob', async () => {
    const { user } = await backedUp({ plaintext: true });
    const { pack, blob } = await corruptBiggestPack(gw, user);
    const { r, report } = await adminReport(user.name);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.pack, p.kind === 'bad-blob' ? p.blobs : []]),
      [
        ['bad-blob', basename(pack), [blob]],
        ['hash-mismatch', basename(pack), []],
      ],
    );
  });

  it('a deleted index: --repair-index rebuilds it, both checks are clean, and the next backup uploads no data', async () => {
    const { user, env, src } = await backedUp();
    const file = indexOf(user);
    const before = await new BlobIndex(file).list();
    await rm(file);
    const broken = await adminReport(user.name);
    assert.equal(broken.r.code, 3);
    assert.equal(broken.report.indexedPacks, 0);
    assert.deepEqual([...new Set(broken.report.problems.map((p) => p.kind))], ['not-indexed']);
    const repair = await adminReport(user.name, '--repair-index');
    assert.equal(repair.r.code, 0, repair.r.stdout);
    assert.equal(repair.report.repairedIndex?.packs, before.length);
    const after = await new BlobIndex(file).list();
    const key = (l: typeof before) => l.map((p) => JSON.stringify(p)).sort();
    assert.deepEqual(key(after), key(before), 'the rebuilt index lists the same packs and blobs');
    assert.equal((await adminCheck(user.name)).code, 0);
    assert.equal((await agentCheck(env, '--read-data')).r.code, 0);
    const packsBefore = (await storedPacks(gw, user)).length;
    const next = await backup(env, [src]);
    assert.equal(next.packs, 0, 'no pack uploaded: every blob was found in the rebuilt index');
    assert.equal(next.bytesUploaded, 0);
    assert.equal((await storedPacks(gw, user)).length, packsBefore);
  });

  it('hostile: a user that does not exist is refused with exit 2 and a reason', async () => {
    const r = await adminCheck('nobody-here');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no user named nobody-here/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('hostile: a file with a bad name under packs/ is reported, never indexed, and the agent is not misled', async () => {
    const { user, env } = await backedUp();
    const dir = join(packsDir(gw, user), 'zz');
    await mkdir(dir);
    await writeFile(join(dir, 'not-a-pack'), 'hello');
    const prefix = basename(join((await storedPacks(gw, user))[0]!.path, '..'));
    const misplaced = (prefix === 'ab' ? 'cd' : 'ab').repeat(32);
    await writeFile(join(packsDir(gw, user), prefix, misplaced), 'x');
    const { r, report } = await adminReport(user.name, '--repair-index');
    assert.equal(r.code, 3);
    assert.deepEqual(
      report.problems.map((p) => p.kind),
      ['bad-name', 'bad-name'],
    );
    const messages = report.problems.map((p) => p.message).join('\n');
    assert.match(messages, /packs\/zz is not a folder named by two hex digits/);
    assert.match(messages, new RegExp(`packs/${prefix}/${misplaced} is not named by its 64-hex id`));
    const indexed = new Set((await new BlobIndex(indexOf(user)).list()).map((p) => p.pack));
    assert.ok(!indexed.has(misplaced), 'a misplaced file is not indexed');
    assert.equal(report.repairedIndex?.packs, indexed.size);
    assert.equal((await agentCheck(env, '--read-data')).r.code, 0, 'the agent check still finds everything');
  });

  it('hostile: a truncated pack is unreadable to both checks; --repair-index drops it and the files stay named', async () => {
    const { user, env } = await backedUp();
    const biggest = (await storedPacks(gw, user)).sort((a, b) => b.size - a.size)[0]!;
    const id = basename(biggest.path);
    const cut = Math.floor(biggest.size / 2);
    const lost = parsePack(await readFile(biggest.path))
      .entries.filter((e) => e.offset + e.length > cut)
      .map((e) => e.id)
      .sort();
    await truncate(biggest.path, cut);
    const admin = await adminReport(user.name);
    assert.equal(admin.r.code, 3);
    assert.deepEqual(admin.report.problems.map((p) => [p.kind, p.pack]).sort(), [
      ['hash-mismatch', id],
      ['unreadable', id],
    ]);
    const { r, report } = await agentCheck(env, '--read-data');
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(
      report.packs.map((p) => p.pack),
      [id],
    );
    assert.deepEqual(report.damaged.map((d) => d.id).sort(), lost, 'exactly the blobs past the cut are lost');
    const paths = report.affected.flatMap((a) => a.paths);
    assert.ok(paths.includes('album/big_0.bin'), paths.join());
    const repair = await adminReport(user.name, '--repair-index');
    assert.equal(repair.r.code, 3, 'the damaged pack is still there');
    const indexed = new Set((await new BlobIndex(indexOf(user)).list()).map((p) => p.pack));
    assert.ok(!indexed.has(id), 'a pack whose trailer cannot be read is left out of the rebuilt index');
    const after = await agentCheck(env);
    assert.equal(after.r.code, 3);
    assert.ok(after.report.damaged.every((d) => d.pack === null && /not in its index/.test(d.reason)));
    const stillNamed = after.report.affected.flatMap((a) => a.paths);
    assert.ok(
      paths.every((p) => stillNamed.includes(p)),
      `the files named before are named again: ${stillNamed.join()}`,
    );
  });
});
