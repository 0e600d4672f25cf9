import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agent, mustAgent, startAgent, type AgentEnv, agentFixture, type AgentFixture } from '../helpers/agent.js';

interface Job {
  id: string;
  type: string;
  state: string;
  startedAt: string;
  endedAt: string | null;
}

describe('kura agent: scheduled backups, one at a time, missed runs caught up, and its status', () => {
  let fixture: AgentFixture;
  let env: AgentEnv;
  let src: string;
  const jobs = async () => JSON.parse(await mustAgent(env, ['log', '--json'])) as Job[];
  const until = async <T>(what: string, probe: () => Promise<T | null>, timeoutMs = 60_000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== null) return found;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };

  before(async () => {
    fixture = await agentFixture('scheduled');
    ({ env, src } = fixture);
  });
  after(() => fixture.close());

  it('runs a seconds-level schedule twice without overlap, logs both, answers run-now and status, and stops on SIGTERM', async () => {
    const daemon = startAgent(env, ['agent', src, '--schedule', 'incremental@*/2 * * * * *']);
    try {
      await daemon.waitFor(/Kura agent for pc1: incremental at/, 30_000);
      const two = await until('two finished scheduled backups', async () => {
        const done = (await jobs()).filter((j) => j.state === 'succeeded');
        return done.length >= 2 ? done : null;
      });
      assert.ok(Date.parse(two[1]!.startedAt) >= Date.parse(two[0]!.endedAt!), `no overlap: ${JSON.stringify(two)}`);
      const status = JSON.parse(await mustAgent(env, ['agent', 'status', '--json'])) as {
        running: boolean;
        lastRun: { result: string } | null;
        next: { at: string | null }[];
      };
      assert.equal(status.running, true);
      assert.equal(status.lastRun?.result, 'succeeded');
      assert.ok(Date.parse(status.next[0]!.at!) > Date.now() - 2000, 'the next run is ahead');
      const human = await mustAgent(env, ['agent', 'status']);
      assert.match(human, /Agent for pc1: running/);
      assert.match(human, /Next incremental: /);

      assert.match(await mustAgent(env, ['agent', 'run-now', '--type', 'full']), /Asked the agent of pc1/);
      await until('the full backup asked for', async () =>
        (await jobs()).some((j) => j.type === 'full' && j.state === 'succeeded') ? true : null,
      );
    } finally {
      assert.equal(await daemon.stop('SIGTERM', 60_000), 0, daemon.output());
    }
    assert.match(daemon.output(), /Stopping: the schedules end/);
    assert.match(await mustAgent(env, ['agent', 'status']), /Agent for pc1: not running/);
    const all = await jobs();
    for (let i = 1; i < all.length; i++) {
      assert.ok(Date.parse(all[i]!.startedAt) >= Date.parse(all[i - 1]!.endedAt ?? all[i - 1]!.startedAt), 'never two at once');
    }
  });

  it('catches up a run that was due while the agent was not running', async () => {
    const stateFile = join(env.KURA_STATE_DIR!, 'agent-pc1.json');
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { next: { cron: string; type: string; at: string | null }[] };
    const yearly = '0 0 1 1 *';
    state.next = [{ cron: yearly, type: 'differential', at: new Date(Date.now() - 3600_000).toISOString() }];
    await writeFile(stateFile, JSON.stringify(state));
    const before = (await jobs()).length;
    const daemon = startAgent(env, ['agent', src, '--schedule', `differential@${yearly}`]);
    try {
      await daemon.waitFor(/was missed while the agent was not running: running it now/, 30_000);
      await until('the catch-up backup', async () =>
        (await jobs()).length > before && (await jobs()).at(-1)!.state !== 'running' ? true : null,
      );
      assert.equal((await jobs()).at(-1)!.type, 'differential');
    } finally {
      assert.equal(await daemon.stop('SIGTERM', 60_000), 0, daemon.output());
    }
  });

  it('refuses a bad schedule with a readable message', async () => {
    const r = await agent(env, ['agent', src, '--schedule', 'weekly@0 0 * * 0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /a schedule is TYPE@CRON/);
    const bad = await agent(env, ['agent', src, '--schedule', 'incremental@not a cron']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not a valid cron expression/);
  });
});
