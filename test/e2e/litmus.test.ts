import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dav, startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { makeTempDir, removeTempDir, run, type RunResult } from '../helpers/processes.js';

const SUITES = ['basic', 'copymove', 'props', 'locks', 'http'];
const LITMUS_TIMEOUT_MS = 4 * 60_000;

interface SuiteSummary {
  suite: string;
  run: number;
  passed: number;
  failed: number;
}

/** Runs litmus (all five suites) in a scratch folder, since it writes debug.log into its cwd. */
async function runLitmus(args: string[], workDir: string): Promise<RunResult> {
  const env = { ...process.env, TESTS: SUITES.join(' ') };
  return run('litmus', args, { cwd: workDir, env, timeoutMs: LITMUS_TIMEOUT_MS });
}

function summaries(output: string): SuiteSummary[] {
  const re = /<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g;
  return [...output.matchAll(re)].map((m) => ({ suite: m[1] ?? '', run: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) }));
}

function printSummary(label: string, output: string): void {
  for (const line of output.split('\n').filter((l) => l.includes('<- summary'))) console.log(`litmus (${label}) ${line.trim()}`);
}

/** Every suite ran, none failed, nothing was flagged as a warning, and litmus exited 0. */
function assertClean(result: RunResult): void {
  const output = result.stdout + result.stderr;
  const found = summaries(output);
  assert.deepEqual(
    found.map((s) => s.suite),
    SUITES,
    `every suite reports a summary:\n${output}`,
  );
  for (const s of found) {
    assert.equal(s.failed, 0, `${s.suite}: 0 failed\n${output}`);
    assert.equal(s.passed, s.run, `${s.suite}: every test passed`);
  }
  const warnings = output.split('\n').filter((l) => /warning/i.test(l));
  assert.deepEqual(warnings, [], `no warnings:\n${output}`);
  assert.equal(result.signal, null, 'litmus finished within the time limit');
  assert.equal(result.code, 0, `litmus exits 0:\n${output}`);
}

async function makeFolder(gw: TestGateway, user: TestUser, name: string): Promise<string> {
  const res = await dav(gw, { method: 'MKCOL', path: `/files/${name}/`, user });
  assert.equal(res.status, 201);
  return `${gw.url}files/${name}/`;
}

describe('litmus WebDAV compliance against /files/', () => {
  let gw: TestGateway;
  let user: TestUser;
  let workDir: string;

  before(async () => {
    gw = await startTestGateway();
    user = await gw.addUser('litmus');
    workDir = await makeTempDir('kura-litmus-');
  });

  after(async () => {
    await gw.close();
    await removeTempDir(workDir);
  });

  it('passes all five suites with no failure and no warning when authenticated by client certificate', async () => {
    const p12File = join(workDir, 'litmus.p12');
    await writeFile(p12File, user.p12, { mode: 0o600 });
    const url = await makeFolder(gw, user, 'by-cert');
    const result = await runLitmus(['-c', p12File, url], workDir);
    printSummary('client certificate', result.stdout);
    assertClean(result);
  });

  it('passes all five suites with no failure and no warning when authenticated by app password', async () => {
    const url = await makeFolder(gw, user, 'by-password');
    const result = await runLitmus([url, user.name, user.password], workDir);
    printSummary('app password', result.stdout);
    assertClean(result);
  });
});
