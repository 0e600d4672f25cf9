import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's place in dist/test/helpers/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The built CLI, as `npm run kura` would run it. */
export const kuraCli = join(repoRoot, 'dist/bin/kura.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed with SIGKILL after this long; the result then has signal SIGKILL. */
  timeoutMs?: number;
}

/**
 * Runs a command asynchronously (so a gateway in this process keeps serving) and collects its
 * output. Never rejects because of the exit status; rejects only when the command cannot start.
 */
export function run(command: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = collect(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolvePromise, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: out.stdout(), stderr: out.stderr() });
    });
  });
}

/** Runs the Kura CLI with node. */
export function runKura(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [kuraCli, ...args], { cwd: repoRoot, ...opts });
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  return { stdout: () => Buffer.concat(out).toString('utf8'), stderr: () => Buffer.concat(err).toString('utf8') };
}

/** A long-running child whose output is watched line by line. */
export interface Watched {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of pattern in the output so far or later; rejects on timeout or exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends a signal and resolves with the exit code once the process has ended. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export function watch(command: string, args: string[], opts: SpawnOptions = {}): Watched {
  const child = spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (c: Buffer) => {
    text += c.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.once('exit', () => {
    for (const l of listeners) l();
  });
  return {
    child,
    output: () => text,
    waitFor: (pattern, timeoutMs = 30_000) => waitForPattern(child, () => text, listeners, pattern, timeoutMs),
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

function waitForPattern(
  child: ChildProcess,
  text: () => string,
  listeners: Set<() => void>,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      listeners.delete(check);
      fn();
    };
    const check = () => {
      const m = pattern.exec(text());
      if (m) done(() => resolvePromise(m));
      else if (child.exitCode !== null || child.signalCode !== null) {
        done(() => reject(new Error(`process exited before printing ${pattern}:\n${text()}`)));
      }
    };
    const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${pattern}:\n${text()}`))), timeoutMs);
    listeners.add(check);
    check();
  });
}

/** A fresh temporary folder; remove it with removeTempDir. */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
