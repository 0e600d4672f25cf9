import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  agent,
  copyAside,
  diffTrees,
  mustAgent,
  mutateDataset,
  summaryOf,
  treeFacts,
  type AgentEnv,
  agentFixture,
  type AgentFixture,
} from '../helpers/agent.js';

interface TypedSummary {
  snapshot: string;
  type: string;
  parent: string | null;
  files: number;
  bytes: number;
  bytesRead: number;
  bytesUploaded: number;
  changedFiles: number;
  newFiles: number;
}

describe('backup types: incremental, differential, full and copy, each restoring on its own', () => {
  let fixture: AgentFixture;
  let work: string;
  let env: AgentEnv;
  let src: string;
  /** Each snapshot and a copy of the folder as it was backed up. */
  const taken: { summary: TypedSummary; saved: string }[] = [];
  let round = 0;

  const run = async (type: string): Promise<TypedSummary & { output: string }> => {
    const r = await agent(env, ['backup', src, '--type', type, '--json']);
    assert.equal(r.code, 0, `backup --type ${type} exits 0:\n${r.stdout}\n${r.stderr}`);
    const summary = summaryOf(r.stdout) as unknown as TypedSummary;
    const saved = join(work, `saved-${taken.length}`);
    await copyAside(src, saved);
    taken.push({ summary, saved });
    return { ...summary, output: r.stdout };
  };
  const mutate = () => mutateDataset(src, ++round);

  before(async () => {
    fixture = await agentFixture('types');
    ({ work, env, src } = fixture);
  });
  after(() => fixture.close());

  it('makes a differential without a full base a full backup, and says so', async () => {
    const first = await run('differential');
    assert.equal(first.type, 'full');
    assert.equal(first.parent, null);
    assert.match(first.output, /no full backup to differ from: this backup was made as a full one/);
  });

  it('compares an incremental with the latest snapshot, a differential with the latest full', async () => {
    const full = taken[0]!.summary;
    await mutate();
    const incr = await run('incremental');
    assert.deepEqual([incr.type, incr.parent], ['incremental', full.snapshot]);
    await mutate();
    const diff = await run('differential');
    assert.deepEqual([diff.type, diff.parent], ['differential', full.snapshot], 'the differential skips the incremental');
    // Against the full, the differential sees the changes of both rounds; the incremental saw one.
    assert.ok(diff.changedFiles + diff.newFiles > incr.changedFiles + incr.newFiles, JSON.stringify({ incr, diff }));
  });

  it('reads every file again for a full or a copy but uploads only what the repository lacks; a copy is no base', async () => {
    await mutate();
    const copy = await run('copy');
    assert.deepEqual([copy.type, copy.parent], ['copy', null]);
    assert.equal(copy.bytesRead, copy.bytes, 'a copy reads every byte');
    assert.ok(copy.bytesUploaded < copy.bytes / 4, `a copy of mostly stored data uploads little (${copy.bytesUploaded} of ${copy.bytes})`);
    await mutate();
    const incr = await run('incremental');
    assert.equal(incr.parent, copy.snapshot, 'an incremental compares with a copy too');
    const diff = await run('differential');
    assert.equal(diff.parent, taken[0]!.summary.snapshot, 'a differential still compares with the full, not the copy');
    const full = await run('full');
    assert.deepEqual([full.type, full.parent, full.bytesRead], ['full', null, full.bytes]);
    await mutate();
    const after = await run('differential');
    assert.equal(after.parent, full.snapshot, 'the new full is the base from now on');
  });

  it('restores every snapshot, whatever its type, exactly as its folder was', async () => {
    const listed = JSON.parse(await mustAgent(env, ['snapshots', '--json'])) as { id: string; type: string }[];
    assert.deepEqual(
      taken.map((t) => listed.find((s) => s.id === t.summary.snapshot)?.type),
      taken.map((t) => t.summary.type),
      'the snapshot list shows each type',
    );
    for (const [i, t] of taken.entries()) {
      const target = join(work, `restore-${i}`);
      const r = await agent(env, ['restore', t.summary.snapshot.slice(0, 12), '--target', target]);
      assert.equal(r.code, 0, `restore of ${t.summary.type} #${i}:\n${r.stdout}\n${r.stderr}`);
      assert.deepEqual(await readdir(target), ['data']);
      assert.deepEqual(
        diffTrees(await treeFacts(t.saved), await treeFacts(join(target, 'data'))),
        [],
        `${t.summary.type} #${i} restores as it was`,
      );
    }
  });

  it('refuses an unknown type with a readable message', async () => {
    const r = await agent(env, ['backup', src, '--type', 'weekly']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--type must be incremental, differential, full or copy, not weekly/);
  });
});

describe("the contract's snapshot limit", () => {
  let fixture: AgentFixture;
  before(async () => {
    fixture = await agentFixture('limited', { maxSnapshots: 3 });
  });
  after(() => fixture.close());

  it('refuses the fourth snapshot of a 3-snapshot contract with 403 snapshot-limit-reached and a way out; once raised, the next backup only records it', async () => {
    const { gw, user, env, src } = fixture;
    for (let round = 1; round <= 3; round++) {
      await mustAgent(env, ['backup', src, '--json']);
      await mutateDataset(src, round);
    }
    const refused = await agent(env, ['backup', src]);
    assert.notEqual(refused.code, 0, 'the fourth backup fails');
    assert.match(refused.stderr, /403: snapshot-limit-reached: the contract allows 3 snapshots and 3 are stored; forget old snapshots/);
    assert.match(refused.stderr, /the next backup only records the snapshot/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    const listed = JSON.parse(await mustAgent(env, ['snapshots', '--json'])) as unknown[];
    assert.equal(listed.length, 3, 'still three snapshots');

    await gw.policy.contracts.set(user.name, { maxSnapshots: 4 });
    const fourth = summaryOf(await mustAgent(env, ['backup', src, '--json']));
    assert.ok(fourth.bytesUploaded < 64 * 1024, `the data was already there: ${fourth.bytesUploaded} bytes uploaded`);
    assert.equal((JSON.parse(await mustAgent(env, ['snapshots', '--json'])) as unknown[]).length, 4);
  });
});
