import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { usageReport } from '../../gateway/policy/recount.js';
import {
  agent,
  agentFixture,
  backup,
  copyAside,
  diffTrees,
  exitOf,
  mustAgent,
  mutateDataset,
  packBytes,
  randomFiles,
  startAgent,
  storedPacks,
  treeFacts,
  waitForPacks,
  type AgentEnv,
  type AgentFixture,
} from '../helpers/agent.js';
import { dav } from '../helpers/gateway.js';

interface Listed {
  id: string;
  host: string;
  time: string;
}

interface PruneSummary {
  event: 'summary';
  packsRemoved: number;
  packsRepacked: number;
  packsWritten: number;
  packsRestored: number;
  bytesRemoved: number;
  bytesWritten: number;
  waitedFor: number;
}

const snapshots = async (env: AgentEnv) => JSON.parse(await mustAgent(env, ['snapshots', '--json'])) as Listed[];

function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '{}') as T;
}

/** The agent env with a second certificate of the same user, issued with the delete right. */
async function deleteRightEnv(f: AgentFixture): Promise<AgentEnv> {
  const cert = await f.gw.policy.certs.issue(f.user.name, { mayDelete: true });
  const dir = join(f.work, 'admin-cert');
  await copyAside(join(f.env.KURA_CERT!, '..'), dir);
  await writeFile(join(dir, 'cert.pem'), cert.certPem);
  await writeFile(join(dir, 'key.pem'), cert.keyPem, { mode: 0o600 });
  return { ...f.env, KURA_CERT: join(dir, 'cert.pem'), KURA_KEY: join(dir, 'key.pem') };
}

async function restoresAs(env: AgentEnv, work: string, id: string, saved: string, label: string): Promise<void> {
  const target = join(work, `restore-${id.slice(0, 12)}`);
  const r = await agent(env, ['restore', id.slice(0, 16), '--target', target]);
  assert.equal(r.code, 0, `restore of ${label}:\n${r.stdout}\n${r.stderr}`);
  assert.deepEqual(diffTrees(await treeFacts(saved), await treeFacts(join(target, 'data'))), [], `${label} restores byte for byte`);
}

describe('retention: forget with a policy, prune, and the append-only certificate', () => {
  let f: AgentFixture;
  let admin: AgentEnv;
  const saved = new Map<string, string>();
  before(async () => {
    f = await agentFixture('keeper', { maxSnapshots: 30 });
    admin = await deleteRightEnv(f);
    // 20 snapshots, each after a day's worth of changes; the sources of the last four kept aside.
    for (let round = 1; round <= 20; round++) {
      if (round > 1) await mutateDataset(f.src, round);
      const s = await backup(f.env, [f.src]);
      if (round > 16) {
        const copy = join(f.work, `source-${round}`);
        await copyAside(f.src, copy);
        saved.set(s.snapshot, copy);
      }
    }
  });
  after(() => f.close());

  it("refuses forget, prune and DELETE with the agent's append-only certificate and with an app password, and says why", async () => {
    const forget = await agent(f.env, ['forget', '--keep-last', '1']);
    assert.notEqual(forget.code, 0);
    assert.match(forget.stderr, /append-only: this credential may add backups but not delete or move them/);
    assert.match(forget.stderr, /--delete-right/);
    const prune = await agent(f.env, ['prune']);
    assert.notEqual(prune.code, 0);
    assert.match(prune.stderr, /append-only/);
    const listed = await snapshots(f.env);
    assert.equal(listed.length, 20, 'nothing was forgotten');
    const one = listed[0]!;
    for (const as of ['cert', 'password'] as const) {
      const del = await dav(f.gw, { method: 'DELETE', path: `/.kura/snapshots/${one.host}/${one.id}`, user: f.user, as });
      assert.equal(del.status, 403, `DELETE as ${as}`);
      assert.match(del.text, /append-only/);
    }
    const [pack] = await storedPacks(f.gw, f.user);
    const id = pack!.path.slice(-64);
    const move = await dav(f.gw, {
      method: 'MOVE',
      path: `/.kura/packs/${id.slice(0, 2)}/${id}`,
      user: f.user,
      headers: { Destination: `/.kura/trash/${id.slice(0, 2)}/${id}` },
    });
    assert.equal(move.status, 403);
    assert.match(move.text, /append-only/);
  });

  it('with the delete right: never deletes a pack directly, only snapshot records and packs in the trash', async () => {
    const cert = await f.gw.policy.certs.issue(f.user.name, { mayDelete: true });
    const [pack] = await storedPacks(f.gw, f.user);
    const id = pack!.path.slice(-64);
    const del = await dav(f.gw, { method: 'DELETE', path: `/.kura/packs/${id.slice(0, 2)}/${id}`, cert });
    assert.equal(del.status, 403);
    assert.match(del.text, /only snapshots\/<host>\/<id> \(forget\) and trash\/<xx>\/<id> \(prune\) can be deleted/);
    const config = await dav(f.gw, { method: 'DELETE', path: '/.kura/config', cert });
    assert.equal(config.status, 403);
  });

  it('forget --keep-last 4 --prune keeps the 4 newest, frees what only the others used (usage and recount agree), and each kept snapshot restores byte for byte', async () => {
    const usedBefore = await f.gw.policy.usage.get(f.user.name);
    const packsBefore = await packBytes(f.gw, f.user);
    const dry = await mustAgent(admin, ['forget', '--keep-last', '4', '--dry-run']);
    assert.match(dry, /Would forget 16 snapshot\(s\) and keep 4; nothing was changed/);
    assert.equal((await snapshots(f.env)).length, 20);

    const out = await mustAgent(admin, ['forget', '--keep-last', '4', '--prune', '--json']);
    const summary = lastJson<PruneSummary>(out);
    assert.equal(summary.event, 'summary');
    const left = await snapshots(f.env);
    assert.deepEqual(left.map((s) => s.id).sort(), [...saved.keys()].sort(), 'the four newest are kept');
    assert.ok(summary.packsRemoved + summary.packsRepacked > 0, `something was removed: ${JSON.stringify(summary)}`);
    const freed = summary.bytesRemoved - summary.bytesWritten;
    assert.ok(freed > 0, `space was freed: ${JSON.stringify(summary)}`);
    assert.equal(packsBefore - (await packBytes(f.gw, f.user)), freed, 'the pack files shrank by what prune says it freed');
    const usedAfter = await f.gw.policy.usage.get(f.user.name);
    // Usage also lost the 16 snapshot records and gained the forget and prune job records.
    assert.ok(usedBefore - usedAfter >= freed, `usage dropped by at least what prune freed: ${usedBefore} → ${usedAfter}`);
    const [line] = (await usageReport(f.gw.policy, true)).filter((l) => l.user === f.user.name);
    assert.equal(line?.drift, 0, 'the recount agrees with the counter');

    for (const [id, source] of saved) await restoresAs(f.env, f.work, id, source, `kept snapshot ${id.slice(0, 8)}`);
    const check = await agent(f.env, ['check', '--read-data']);
    assert.equal(check.code, 0, `kura check --read-data after prune:\n${check.stdout}\n${check.stderr}`);
    const again = lastJson<PruneSummary>(await mustAgent(admin, ['prune', '--json']));
    assert.equal(again.packsRemoved + again.packsRepacked, 0, 'a second prune finds nothing to remove');

    const log = await mustAgent(f.env, ['log']);
    assert.match(log, /forget\s+succeeded/);
    assert.match(log, /prune\s+succeeded/);
  });
});

describe('retention: a prune while a backup uploads', () => {
  let f: AgentFixture;
  let admin: AgentEnv;
  before(async () => {
    f = await agentFixture('racer');
    admin = await deleteRightEnv(f);
  });
  after(() => f.close());

  it('waits for the backup, keeps the packs it counted on, and the new snapshot restores byte for byte', async () => {
    // Snapshot A holds the dataset; once A is forgotten its packs are garbage. Backup B of the same
    // data plus new files finds the dataset's blobs in the index and does not upload them again:
    // prune must not delete them under B.
    const a = await backup(f.env, [f.src]);
    await mustAgent(admin, ['forget', a.snapshot.slice(0, 16)]);
    await randomFiles(join(f.src, 'big'), 12, 4 << 20);
    const source = join(f.work, 'source-b');
    await copyAside(f.src, source);
    const packsBefore = (await storedPacks(f.gw, f.user)).length;

    const b = startAgent(f.env, ['backup', f.src, '--json']);
    await waitForPacks(f.gw, f.user, packsBefore + 1, b);
    b.child.kill('SIGSTOP'); // the PC is busy: the backup has read the index and is mid-upload
    let prune;
    try {
      prune = startAgent(admin, ['prune', '--json']);
      await prune.waitFor(/Waiting for the backup\(s\) running on pc1 to finish/, 60_000);
    } finally {
      b.child.kill('SIGCONT');
    }
    const [bExit, pruneExit] = await Promise.all([exitOf(b), exitOf(prune)]);
    assert.equal(bExit.code, 0, `the backup finished:\n${b.output()}`);
    assert.equal(pruneExit.code, 0, `the prune finished:\n${prune.output()}`);
    const summary = lastJson<PruneSummary>(prune.output());
    assert.equal(summary.waitedFor, 1);
    assert.ok(summary.packsRestored > 0, `the packs B counted on were put back: ${JSON.stringify(summary)}`);

    const [snapshotB] = await snapshots(f.env);
    assert.ok(snapshotB);
    await restoresAs(f.env, f.work, snapshotB.id, source, 'the snapshot made during the prune');
    const check = await agent(f.env, ['check']);
    assert.equal(check.code, 0, `kura check after the race:\n${check.stdout}\n${check.stderr}`);
  });
});

describe('retention: keeping within the plan automatically', () => {
  let f: AgentFixture;
  before(async () => {
    f = await agentFixture('planned', { maxSnapshots: 3 });
  });
  after(() => f.close());

  it('with keepWithinPlan, a backup over the limit forgets what the keep policy does not keep, then commits; without the delete right it fails and says why', async () => {
    const config = join(f.work, 'agent.json');
    await writeFile(config, JSON.stringify({ keepWithinPlan: true, keep: { last: 2 } }));
    const appendOnly = { ...f.env, KURA_CONFIG: config };
    for (let round = 1; round <= 3; round++) {
      await backup(appendOnly, [f.src]);
      await mutateDataset(f.src, round);
    }
    const refused = await agent(appendOnly, ['backup', f.src]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /keepWithinPlan could not forget old snapshots: .*append-only/);
    assert.equal((await snapshots(f.env)).length, 3);

    const planned = { ...(await deleteRightEnv(f)), KURA_CONFIG: config };
    const before3 = (await snapshots(f.env)).map((s) => s.id);
    const r = await agent(planned, ['backup', f.src]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /snapshot limit was reached: forgot 1 old snapshot\(s\) of pc1 that the keep policy does not keep/);
    const now = (await snapshots(f.env)).map((s) => s.id);
    assert.equal(now.length, 3, 'still within the 3 of the contract');
    assert.deepEqual(now.slice(0, 2), before3.slice(1), 'the oldest was forgotten, the two newest kept');
  });
});
