import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig, type Schedule } from '../agent/config.js';
import { backupChild, readState, Scheduler } from '../agent/scheduler.js';
import { isKuraRunning, stateDir, withConnection, type CommonFlags } from './agent-commands.js';

interface AgentFlags extends CommonFlags {
  schedule?: string[];
  type?: string;
}

const TYPES = ['incremental', 'differential', 'full', 'copy'] as const;

/** `kura agent` (the long-lived scheduler), `kura agent status` and `kura agent run-now`. */
export function addAgentDaemonCommands(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  const agent = program.command('agent').description('run backups on schedules (kura agent), or ask the running agent');
  withConnection(agent.command('start', { isDefault: true }).description('run scheduled backups until stopped (the default)'))
    .argument('[folders...]', "folders to back up (default: the config file's folders)")
    .option('--schedule <type@cron...>', 'a schedule, e.g. "incremental@0 * * * *" (default: the config file\'s schedules)')
    .action((folders: string[], flags: AgentFlags) => run(() => daemon(folders, flags), flags.json));
  withConnection(agent.command('status').description('the running agent: last run, its result, the next runs')).action(
    (flags: AgentFlags) => run(() => status(flags), flags.json),
  );
  withConnection(agent.command('run-now').description('ask the running agent for a backup now'))
    .option('--type <type>', 'incremental (default), differential, full or copy', 'incremental')
    .action((flags: AgentFlags) => run(() => runNow(flags), flags.json));
}

const stateFile = (host: string) => join(stateDir(), `agent-${host}.json`);
const nowFile = (host: string) => join(stateDir(), `agent-${host}.now`);

async function daemon(folders: string[], flags: AgentFlags): Promise<void> {
  const config = await loadConfig(flags);
  const targets = (folders.length > 0 ? folders : config.folders).map((f) => resolve(f));
  if (targets.length === 0) throw new Error('name the folders to back up, or list them in the config file');
  const schedules = flags.schedule?.map(parseSchedule) ?? config.schedules;
  if (schedules.length === 0) throw new Error('give a schedule (--schedule "incremental@0 * * * *") or list schedules in the config file');
  await mkdir(stateDir(), { recursive: true });
  const previous = await readState(stateFile(config.host));
  if (previous && previous.pid !== process.pid && (await isKuraRunning(previous.pid, 'agent'))) {
    throw new Error(`an agent for ${config.host} is already running (process ${previous.pid})`);
  }
  const say = (line: string) =>
    process.stdout.write(flags.json ? JSON.stringify({ message: line }) + '\n' : `${new Date().toISOString()}  ${line}\n`);
  const childArgs = [...targets, ...connectionArgs(flags)];
  const scheduler = new Scheduler(
    schedules,
    (type) => backupChild([...childArgs, '--type', type], process.env),
    stateFile(config.host),
    say,
  );
  await scheduler.start();
  say(`Kura agent for ${config.host}: ${schedules.map((s) => `${s.type} at "${s.cron}"`).join(', ')}. Stop with Ctrl-C.`);
  process.on('SIGUSR1', () => {
    void readFile(nowFile(config.host), 'utf8')
      .catch(() => 'incremental')
      .then((t) => scheduler.trigger(TYPES.find((x) => x === t.trim()) ?? 'incremental', 'asked'));
  });
  await new Promise<void>((done) => {
    const stop = () => {
      say('Stopping: the schedules end; a backup in progress finishes first.');
      void scheduler.stop().then(done);
    };
    process.once('SIGINT', stop).once('SIGTERM', stop);
  });
}

async function status(flags: AgentFlags): Promise<void> {
  const config = await loadConfig(flags);
  const state = await readState(stateFile(config.host));
  const running = state !== null && (await isKuraRunning(state.pid, 'agent'));
  if (flags.json) {
    process.stdout.write(JSON.stringify({ host: config.host, running, ...state }, null, 2) + '\n');
    return;
  }
  if (!state) {
    process.stdout.write(`No agent has run for ${config.host} on this PC yet.\n`);
    return;
  }
  const lines = [
    `Agent for ${config.host}: ${running ? `running (process ${state.pid}, since ${state.startedAt})` : 'not running'}`,
    state.lastRun
      ? `Last run: ${state.lastRun.type}, ${state.lastRun.result}, ${state.lastRun.startedAt} – ${state.lastRun.endedAt}${state.lastRun.snapshot ? `, snapshot ${state.lastRun.snapshot.slice(0, 12)}` : ''}`
      : 'Last run: none yet',
    ...state.next.map((n) => `Next ${n.type}: ${n.at ?? 'never'} ("${n.cron}")`),
    ...(state.skipped > 0 ? [`Skipped because a backup was still running: ${state.skipped}`] : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

async function runNow(flags: AgentFlags): Promise<void> {
  const config = await loadConfig(flags);
  const type = flags.type ?? 'incremental';
  if (!TYPES.some((t) => t === type)) throw new Error(`--type must be incremental, differential, full or copy, not ${type}`);
  const state = await readState(stateFile(config.host));
  if (!state || !(await isKuraRunning(state.pid, 'agent')))
    throw new Error(`no agent is running for ${config.host}: start one with kura agent`);
  await writeFile(nowFile(config.host), type);
  process.kill(state.pid, 'SIGUSR1');
  process.stdout.write(`Asked the agent of ${config.host} (process ${state.pid}) for a ${type} backup now.\n`);
}

function parseSchedule(spec: string): Schedule {
  const at = spec.indexOf('@');
  const type = spec.slice(0, at);
  const found = TYPES.find((t) => t === type);
  if (at < 0 || !found) throw new Error(`a schedule is TYPE@CRON, e.g. "incremental@0 * * * *", not "${spec}"`);
  return { type: found, cron: spec.slice(at + 1) };
}

/** The connection flags, passed on to each backup the agent starts. */
function connectionArgs(flags: AgentFlags): string[] {
  const out: string[] = [];
  const add = (name: string, value: string | undefined) => value !== undefined && out.push(name, value);
  add('--config', flags.config);
  add('--gateway', flags.gateway);
  add('--cert', flags.cert);
  add('--key', flags.key);
  add('--ca', flags.ca);
  add('--host', flags.host);
  add('--key-file', flags.keyFile);
  for (const e of flags.exclude ?? []) add('--exclude', e);
  return out;
}
