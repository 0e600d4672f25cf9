import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { dav, type TestGateway } from '../helpers/gateway.js';
import { runKura } from '../helpers/processes.js';
import {
  agent,
  exitOf,
  mustAgent,
  randomFiles,
  startAgent,
  storedPacks,
  summaryOf,
  waitForPacks,
  type AgentEnv,
  agentFixture,
  type AgentFixture,
} from '../helpers/agent.js';

interface ShownJob {
  id: string;
  host: string;
  type: string;
  state: string;
  shown: string;
  files: number;
  bytes: number;
  snapshot: string | null;
  error: string | null;
  endedAt: string | null;
}

describe('the backup log: every job recorded on the gateway, read by the user and the operator', () => {
  let fixture: AgentFixture;
  let gw: TestGateway;
  let work: string;
  let env: AgentEnv;
  let src: string;
  let userName: string;
  const log = async (extraEnv: Record<string, string> = {}): Promise<ShownJob[]> =>
    JSON.parse(await mustAgent({ ...env, ...extraEnv }, ['log', '--json'])) as ShownJob[];

  before(async () => {
    fixture = await agentFixture('logged');
    ({ gw, work, env, src } = fixture);
    userName = fixture.user.name;
  });
  after(() => fixture.close());

  it('records a backup that succeeded, with its snapshot, files and bytes, readable over DAV as one file per job', async () => {
    const summary = summaryOf(await mustAgent(env, ['backup', src, '--json']));
    const [job, ...more] = await log();
    assert.equal(more.length, 0);
    assert.deepEqual([job!.type, job!.state, job!.shown, job!.snapshot], ['incremental', 'succeeded', 'succeeded', summary.snapshot]);
    assert.ok(job!.files > 500 && job!.bytes > 1_000_000, JSON.stringify(job));
    assert.ok(job!.endedAt);
    const table = await mustAgent(env, ['log']);
    assert.match(table, /STARTED +HOST +TYPE +RESULT/);
    assert.match(table, new RegExp(`incremental +succeeded .*${summary.snapshot.slice(0, 12)}`));
  });

  it('shows the operator the same log with `kura admin log USER`', async () => {
    const r = await runKura(['admin', 'log', userName, '--data', gw.dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const jobs = JSON.parse(r.stdout) as ShownJob[];
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]!.state, 'succeeded');
    const unknown = await runKura(['admin', 'log', 'nobody', '--data', gw.dataDir]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no user named nobody/);
  });

  it('records a failed backup with the reason, and a killed one as interrupted once it stops moving', async () => {
    const failed = await agent(env, ['backup', join(work, 'missing-folder')]);
    assert.notEqual(failed.code, 0);
    const failedJob = (await log()).at(-1)!;
    assert.deepEqual([failedJob.state, failedJob.shown], ['failed', 'failed']);
    assert.match(failedJob.error ?? '', /missing-folder/, 'the reason is recorded');
    assert.ok(failedJob.endedAt);

    const big = join(work, 'big');
    await randomFiles(big, 6, 20 << 20);
    const user = await gw.policy.users.get(userName);
    const testUser = { name: userName, id: user.id } as Parameters<typeof waitForPacks>[1];
    const before = (await storedPacks(gw, testUser)).length;
    const run = startAgent(env, ['backup', big]);
    await waitForPacks(gw, testUser, before + 2, run);
    run.child.kill('SIGKILL');
    await exitOf(run);
    const jobs = await log();
    const killed = jobs[jobs.length - 1]!;
    assert.deepEqual([killed.state, killed.shown], ['running', 'running'], 'just killed: not yet known to be dead');
    await new Promise((r) => setTimeout(r, 2500));
    const later = (await log({ KURA_JOB_STALE_SECONDS: '2' })).at(-1)!;
    assert.deepEqual([later.id, later.state, later.shown], [killed.id, 'running', 'interrupted']);
    const admin = await runKura(['admin', 'log', userName, '--data', gw.dataDir], { env: { ...process.env, KURA_JOB_STALE_SECONDS: '2' } });
    assert.match(admin.stdout, /incremental +interrupted/);
  });

  it('refuses to change a job that has ended, and a malformed or misplaced record', async () => {
    const [done] = await log();
    const path = `/.kura/log/${done!.id}`;
    const me = await userOf(gw, userName, env);
    const original = await dav(gw, { method: 'GET', path, user: me });
    assert.equal(original.status, 200);
    const rewritten = original.text.replace('"succeeded"', '"failed"');
    const overwrite = await dav(gw, { method: 'PUT', path, user: me, body: rewritten });
    assert.equal(overwrite.status, 403);
    assert.match(overwrite.text, /append-only/);
    const garbage = await dav(gw, { method: 'PUT', path: '/.kura/log/20260101T000000Z-00000000', user: me, body: '{"kura":"job"}' });
    assert.equal(garbage.status, 400);
    const badName = await dav(gw, { method: 'PUT', path: '/.kura/log/../x', user: me, body: original.text });
    assert.ok(badName.status >= 400 && badName.status < 500, `status ${badName.status}`);
    assert.equal((await dav(gw, { method: 'GET', path, user: me })).text, original.text, 'unchanged');
  });
});

/** The test user behind an agent environment (its certificate files are in the env). */
async function userOf(gw: TestGateway, name: string, env: AgentEnv) {
  const { readFile } = await import('node:fs/promises');
  const user = await gw.policy.users.get(name);
  return {
    name,
    id: user.id,
    certPem: await readFile(env.KURA_CERT!, 'utf8'),
    keyPem: await readFile(env.KURA_KEY!, 'utf8'),
    p12: Buffer.alloc(0),
    fingerprint256: '',
    password: '',
  };
}
