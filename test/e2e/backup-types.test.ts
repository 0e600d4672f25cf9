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

describe('the baseline: a known image marked once, never uploaded', () => {
  let fixture: AgentFixture;
  before(async () => {
    fixture = await agentFixture('imaged');
  });
  after(() => fixture.close());

  it('kura baseline mark hashes without uploading; later backups send only changes; restore leaves baseline files to the image and says so', async () => {
    const { env, src, work } = fixture;
    const image = join(work, 'image');
    await copyAside(src, image);
    const facts = await treeFacts(src);
    const dataBytes = [...facts.values()].reduce((n, f) => n + f.size, 0);
    const marked = summaryOf(await mustAgent(env, ['baseline', 'mark', src, '--json'])) as unknown as TypedSummary;
    assert.equal(marked.type, 'baseline');
    assert.ok(marked.bytesRead >= dataBytes * 0.99, 'every file was read and hashed');
    assert.ok(marked.bytesUploaded < dataBytes / 50, `only folder listings went up: ${marked.bytesUploaded} of ${dataBytes} bytes`);

    await mutateDataset(src, 1);
    const incremental = summaryOf(await mustAgent(env, ['backup', src, '--json'])) as unknown as TypedSummary;
    assert.equal(incremental.parent, marked.snapshot, 'compared with the baseline');
    // A changed file goes up whole (its unchanged parts were never uploaded); unchanged files not at all.
    const after = await treeFacts(src);
    const changedFiles = [...after].filter(([rel, f]) => f.type === 'file' && facts.get(rel)?.content !== f.content);
    const changedBytes = changedFiles.reduce((n, [, f]) => n + f.size, 0);
    assert.ok(changedFiles.length < after.size / 2, 'the mutation leaves most files as they were');
    assert.ok(
      incremental.bytesUploaded < changedBytes * 1.05 + 256 * 1024,
      `only the changed files travel: ${incremental.bytesUploaded} bytes for ${changedFiles.length} files of ${changedBytes} bytes`,
    );
    const differential = summaryOf(await mustAgent(env, ['backup', src, '--type', 'differential', '--json'])) as unknown as TypedSummary;
    assert.equal(differential.parent, marked.snapshot, 'a differential differs from the baseline too');

    const target = join(work, 'restored');
    const r = await agent(env, ['restore', incremental.snapshot.slice(0, 16), '--target', target]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /file\(s\) are unchanged since the marked baseline and were never uploaded: restore them from the baseline image/,
    );
    // Every file that differs from the image was restored byte for byte; the image's own are left out.
    const now = await treeFacts(src);
    const back = await treeFacts(join(target, 'data'));
    const imageFiles = new Set([...(await treeFacts(image)).values()].filter((f) => f.type === 'file').map((f) => f.content));
    let restored = 0;
    let left = 0;
    for (const [rel, want] of now) {
      if (want.type !== 'file') continue;
      // A file of the image (a renamed folder's too, recognised by its inode) keeps its baseline mark.
      const fromImage = imageFiles.has(want.content);
      const got = back.get(rel);
      if (fromImage) {
        assert.equal(got, undefined, `${rel} is the image's and is not restored`);
        left++;
      } else {
        assert.equal(got?.content, want.content, `${rel} changed since the image and is restored`);
        assert.equal(got?.mtimeMs, want.mtimeMs);
        restored++;
      }
    }
    assert.ok(restored > 0 && left > 0, `${restored} restored, ${left} left to the image`);
    const check = await agent(env, ['check', '--read-data']);
    assert.equal(check.code, 0, `the baseline's unuploaded blobs are not damage:\n${check.stdout}\n${check.stderr}`);
  });
});
