/**
 * WebDAV throughput benchmark: Kura against `rclone serve webdav`, both over TLS on 127.0.0.1.
 *
 * One run writes (or reuses) a file of incompressible bytes, starts both servers as child
 * processes, PUTs the file to each and GETs it back, best of N runs, and prints MB/s (10^6 bytes
 * per second), the Kura/rclone ratios and Kura's peak RSS. See bench/README.md.
 *
 *   node dist/bench/dav-throughput.js [--size-mib 1024] [--runs 2] [--json] [--no-cache]
 *                                     ["--kura-node-args=--cpu-prof --cpu-prof-dir=DIR"]
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueServerCert } from '../gateway/policy/ca.js';
import { nodeFlags, secondsSince, startServer, stopServer, type Server } from './procs.js';

const MIB = 1024 * 1024;
const MB = 1e6;
const GOAL_RSS_MB = 150;
const KURA_CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/kura.js');

interface Options {
  sizeMib: number;
  runs: number;
  json: boolean;
  cache: boolean;
  kuraNodeArgs: string | undefined;
}

interface SourceFile {
  path: string;
  size: number;
  sha256: string;
}

/** How to reach one server: its base URL for the file and the TLS material a client presents. */
interface Target {
  name: string;
  fileUrl: URL;
  tls: Pick<RequestOptions, 'ca' | 'cert' | 'key'>;
}

interface Figures {
  server: string;
  putMBps: number;
  getMBps: number;
  peakRssMB: number;
}

function progress(line: string): void {
  process.stderr.write(line + '\n');
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
      'no-cache': { type: 'boolean', default: false },
      'kura-node-args': { type: 'string' },
    },
  });
  const sizeMib = Number(values['size-mib']);
  const runs = Number(values.runs);
  if (!Number.isInteger(sizeMib) || sizeMib < 1) throw new Error('--size-mib takes a whole number of MiB ≥ 1');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number ≥ 1');
  return { sizeMib, runs, json: values.json, cache: !values['no-cache'], kuraNodeArgs: values['kura-node-args'] };
}

// ---------------------------------------------------------------- the source file

function cachePath(sizeMib: number): string {
  return join(tmpdir(), sizeMib === 1024 ? 'kura-bench-1g.bin' : `kura-bench-${sizeMib}m.bin`);
}

/** The cached file when it has the right size, otherwise a fresh one (8 MiB random chunks). */
async function prepareSource(opts: Options, workDir: string): Promise<SourceFile> {
  const size = opts.sizeMib * MIB;
  const path = opts.cache ? cachePath(opts.sizeMib) : join(workDir, 'source.bin');
  const existing = await stat(path).catch(() => null);
  if (existing?.size === size) {
    progress(`reusing ${path}; hashing it…`);
    return { path, size, sha256: await hashFile(path) };
  }
  progress(`writing ${formatMib(opts.sizeMib)} test file ${path}…`);
  return { path, size, sha256: await writeRandomFile(path, size) };
}

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let written = 0; written < size;) {
      const chunk = randomBytes(Math.min(8 * MIB, size - written));
      hash.update(chunk);
      await fh.write(chunk);
      written += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function formatMib(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}

// ---------------------------------------------------------------- child processes

/** Kura's own CLI; `nodeArgs` (e.g. "--cpu-prof", which NODE_OPTIONS does not allow) go before the script. */
function startKura(dataDir: string, nodeArgs: string | undefined): Promise<Server> {
  const args = [...nodeFlags(nodeArgs), KURA_CLI];
  args.push('serve', '--data', dataDir, '--port', '0', '--host', '127.0.0.1');
  return startServer(process.execPath, args, /listening on (https:\/\/\S+\/)/);
}

/** rclone with a certificate from a throw-away CA, serving `folder` without authentication. */
async function startRclone(folder: string, tlsDir: string): Promise<Server & { caPem: string }> {
  const ca = createCa('kura-bench CA', { days: 2 });
  const leaf = issueServerCert(ca, ['127.0.0.1'], { days: 2 });
  await writeFile(join(tlsDir, 'rclone.pem'), leaf.certPem);
  await writeFile(join(tlsDir, 'rclone.key'), leaf.keyPem, { mode: 0o600 });
  const args = ['serve', 'webdav', folder, '--addr', '127.0.0.1:0'];
  args.push('--cert', join(tlsDir, 'rclone.pem'), '--key', join(tlsDir, 'rclone.key'));
  const server = await startServer('rclone', args, /Server started on \[?(https:\/\/[^\s\]]+)/);
  return { ...server, caPem: ca.certPem };
}

// ---------------------------------------------------------------- transfers

function requestOptions(target: Target, method: string, headers: Record<string, string> = {}): RequestOptions {
  const url = target.fileUrl;
  return { method, hostname: url.hostname, port: url.port, path: url.pathname, agent: false, headers, ...target.tls };
}

/** PUTs the file streamed from disk; resolves with the seconds until the server's answer. */
async function timePut(target: Target, source: SourceFile): Promise<number> {
  const started = process.hrtime.bigint();
  const req = request(requestOptions(target, 'PUT', { 'Content-Length': String(source.size) }));
  const answer = new Promise<number>((done, reject) => {
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => done(res.statusCode ?? 0));
    });
    req.once('error', reject);
  });
  await pipeline(createReadStream(source.path, { highWaterMark: MIB }), req);
  const status = await answer;
  if (status !== 201 && status !== 204) throw new Error(`${target.name} PUT answered ${status}`);
  return secondsSince(started);
}

/** GETs the file, counting bytes (and hashing them when `verify`); resolves with the seconds taken. */
async function timeGet(target: Target, source: SourceFile, verify: boolean): Promise<number> {
  const started = process.hrtime.bigint();
  const hash = verify ? createHash('sha256') : null;
  const res = await new Promise<import('node:http').IncomingMessage>((done, reject) => {
    request(requestOptions(target, 'GET'), done).once('error', reject).end();
  });
  if (res.statusCode !== 200) throw new Error(`${target.name} GET answered ${res.statusCode}`);
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    hash?.update(chunk);
  }
  const seconds = secondsSince(started);
  if (bytes !== source.size) throw new Error(`${target.name} GET returned ${bytes} bytes, expected ${source.size}`);
  const digest = hash?.digest('hex');
  if (digest !== undefined && digest !== source.sha256) throw new Error(`${target.name} GET returned different bytes`);
  return seconds;
}

/** One server under test: where to send requests, its process, and the best times seen so far. */
interface Contender {
  target: Target;
  server: Server;
  bestPut: number;
  bestGet: number;
}

/**
 * `runs` rounds; each round PUTs then GETs on every contender in turn, so a change in the machine's
 * load during the run hits both servers alike. Only the first GET of each server hashes what comes
 * back, so the client's SHA-256 does not cap the rate of the later ones.
 */
async function measure(contenders: Contender[], source: SourceFile, runs: number): Promise<void> {
  for (let i = 1; i <= runs; i++) {
    for (const c of contenders) {
      progress(`${c.target.name} PUT ${i}/${runs}…`);
      c.bestPut = Math.min(c.bestPut, await timePut(c.target, source));
      progress(`${c.target.name} GET ${i}/${runs}${i === 1 ? ' (verifying SHA-256)' : ''}…`);
      c.bestGet = Math.min(c.bestGet, await timeGet(c.target, source, i === 1));
    }
  }
}

async function figuresOf(c: Contender, source: SourceFile): Promise<Figures> {
  const rate = (seconds: number) => source.size / MB / seconds;
  return { server: c.target.name, putMBps: rate(c.bestPut), getMBps: rate(c.bestGet), peakRssMB: await c.server.rss.finish() };
}

// ---------------------------------------------------------------- the two servers

async function startKuraContender(workDir: string, opts: Options): Promise<Contender> {
  const dataDir = join(workDir, 'kura-data');
  progress('starting Kura…');
  const server = await startKura(dataDir, opts.kuraNodeArgs);
  const demo = join(dataDir, 'demo');
  const [ca, cert, key] = await Promise.all(['ca.pem', 'demo.pem', 'demo.key'].map((f) => readFile(join(demo, f), 'utf8')));
  const target: Target = { name: 'Kura', fileUrl: new URL('files/bench.bin', server.url), tls: { ca, cert, key } };
  return { target, server, bestPut: Infinity, bestGet: Infinity };
}

async function startRcloneContender(workDir: string): Promise<Contender> {
  const folder = await mkdtemp(join(workDir, 'rclone-'));
  progress('starting rclone serve webdav…');
  const server = await startRclone(folder, workDir);
  const target: Target = { name: 'rclone', fileUrl: new URL('bench.bin', server.url), tls: { ca: server.caPem } };
  return { target, server, bestPut: Infinity, bestGet: Infinity };
}

/** Starts both servers, measures, and stops whichever of them started, whatever happens. */
async function benchBoth(workDir: string, source: SourceFile, opts: Options): Promise<[Figures, Figures]> {
  const started: Contender[] = [];
  try {
    started.push(await startKuraContender(workDir, opts));
    started.push(await startRcloneContender(workDir));
    const [kura, rclone] = started as [Contender, Contender];
    await measure([kura, rclone], source, opts.runs);
    return [await figuresOf(kura, source), await figuresOf(rclone, source)];
  } finally {
    await Promise.all(started.map((c) => stopServer(c.server.child)));
  }
}

// ---------------------------------------------------------------- report

interface Report {
  sizeBytes: number;
  runs: number;
  results: Figures[];
  ratio: { put: number; get: number };
  kuraPeakRssMB: number;
  goalsMet: boolean;
}

function buildReport(source: SourceFile, runs: number, kura: Figures, rclone: Figures): Report {
  const ratio = { put: kura.putMBps / rclone.putMBps, get: kura.getMBps / rclone.getMBps };
  const goalsMet = ratio.put >= 1 && ratio.get >= 1 && kura.peakRssMB < GOAL_RSS_MB;
  return { sizeBytes: source.size, runs, results: [kura, rclone], ratio, kuraPeakRssMB: kura.peakRssMB, goalsMet };
}

function printTable(r: Report): void {
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(12))).join('  ');
  const lines = [
    `WebDAV over TLS on 127.0.0.1, ${(r.sizeBytes / MIB).toFixed(0)} MiB file, best of ${r.runs} (MB = 10^6 bytes)`,
    '',
    row(['server', 'PUT MB/s', 'GET MB/s', 'peak RSS MB']),
    ...r.results.map((f) => row([f.server, f.putMBps.toFixed(1), f.getMBps.toFixed(1), f.peakRssMB.toFixed(1)])),
    '',
    `Kura/rclone PUT ratio: ${r.ratio.put.toFixed(2)}  (goal ≥ 1.00)`,
    `Kura/rclone GET ratio: ${r.ratio.get.toFixed(2)}  (goal ≥ 1.00)`,
    `Kura peak RSS:         ${r.kuraPeakRssMB.toFixed(1)} MB  (goal < ${GOAL_RSS_MB} MB)`,
    r.goalsMet ? 'Goals met.' : `Goals NOT met: ${unmetGoals(r).join('; ')}.`,
  ];
  console.log(lines.join('\n'));
}

function unmetGoals(r: Report): string[] {
  const unmet: string[] = [];
  if (r.ratio.put < 1) unmet.push('PUT slower than rclone');
  if (r.ratio.get < 1) unmet.push('GET slower than rclone');
  if (r.kuraPeakRssMB >= GOAL_RSS_MB) unmet.push(`peak RSS ≥ ${GOAL_RSS_MB} MB`);
  return unmet;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = readOptions();
  const workDir = await mkdtemp(join(tmpdir(), 'kura-bench-'));
  const cleanUp = () => rm(workDir, { recursive: true, force: true });
  process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));
  try {
    const source = await prepareSource(opts, workDir);
    const [kura, rclone] = await benchBoth(workDir, source, opts);
    const report = buildReport(source, opts.runs, kura, rclone);
    if (opts.json) console.log(JSON.stringify(report, null, 2));
    else printTable(report);
  } finally {
    await cleanUp();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
