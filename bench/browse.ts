/**
 * Browsing benchmark: list a 10,000-entry folder of a snapshot and stream a large file out of it,
 * from the gateway's /snapshots/ (TLS, client certificate), from `kura mount` (plain HTTP on
 * 127.0.0.1) and, as the peer, from `rclone serve webdav` (TLS) on the plain dataset. See bench/README.md.
 *
 *   node dist/bench/browse.js [--size-mib 1024] [--entries 10000] [--json]
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueServerCert } from '../gateway/policy/ca.js';
import { RssSampler, runTimed, startServer, stopServer, type Server } from './procs.js';

const MIB = 1024 * 1024;
const MB = 1e6;
const KURA_CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/kura.js');

interface Target {
  name: string;
  /** The URL of the folder that holds `many/` and `big.bin`. */
  base: URL;
  tls: Pick<RequestOptions, 'ca' | 'cert' | 'key'>;
  server: Server;
}

interface Figures {
  server: string;
  listColdMs: number;
  listWarmMs: number;
  getMBps: number;
  peakRssMB: number;
}

const progress = (line: string) => process.stderr.write(line + '\n');

function send(target: Target, path: string, method: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const url = new URL(path, target.base);
  const opts: RequestOptions = { method, hostname: url.hostname, port: url.port, path: url.pathname, headers, agent: false, ...target.tls };
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((done, reject) => request(opts, done).once('error', reject).end());
}

/** PROPFIND Depth 1 on many/: milliseconds until the whole answer is in, and how many responses it held. */
async function timeList(target: Target): Promise<{ ms: number; responses: number }> {
  const started = performance.now();
  const res = await send(target, 'many/', 'PROPFIND', { Depth: '1' });
  let text = '';
  for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString('utf8');
  const ms = performance.now() - started;
  if (res.statusCode !== 207) throw new Error(`${target.name} PROPFIND answered ${res.statusCode}`);
  return { ms, responses: (text.match(/<(?:\w+:)?response[ >]/g) ?? []).length };
}

/** GET big.bin, hashing it; MB/s. */
async function timeGet(target: Target, size: number, sha256: string): Promise<number> {
  const started = performance.now();
  const res = await send(target, 'big.bin', 'GET');
  if (res.statusCode !== 200) throw new Error(`${target.name} GET answered ${res.statusCode}`);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  const seconds = (performance.now() - started) / 1000;
  if (bytes !== size || hash.digest('hex') !== sha256) throw new Error(`${target.name} GET returned other bytes (${bytes})`);
  return size / MB / seconds;
}

async function measure(target: Target, entries: number, size: number, sha256: string): Promise<Figures> {
  progress(`${target.name}: listing many/ and streaming big.bin…`);
  // The kernel's peak (VmHWM) is reset first, so the backup the gateway received does not count.
  const pid = target.server.child.pid;
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
  await target.server.rss.finish();
  target.server.rss = new RssSampler(pid!);
  const cold = await timeList(target);
  if (cold.responses !== entries + 1) throw new Error(`${target.name} listed ${cold.responses - 1} entries, not ${entries}`);
  let warm = Infinity;
  for (let i = 0; i < 3; i++) warm = Math.min(warm, (await timeList(target)).ms);
  const getMBps = await timeGet(target, size, sha256);
  return { server: target.name, listColdMs: cold.ms, listWarmMs: warm, getMBps, peakRssMB: await target.server.rss.finish() };
}

/** The dataset: many/ with `entries` small files, and big.bin of random bytes (the 1 GiB one is cached in TMPDIR). */
async function prepareSource(dir: string, entries: number, sizeMib: number): Promise<string> {
  await mkdir(join(dir, 'many'), { recursive: true });
  for (let i = 0; i < entries; i++) await writeFile(join(dir, 'many', `file-${String(i).padStart(5, '0')}.txt`), `entry ${i}\n`);
  const cached = join(tmpdir(), sizeMib === 1024 ? 'kura-bench-1g.bin' : `kura-bench-${sizeMib}m.bin`);
  if ((await stat(cached).catch(() => null))?.size !== sizeMib * MIB) {
    progress(`writing ${cached}…`);
    const fh = await open(cached, 'w');
    for (let i = 0; i < sizeMib; i += 8) await fh.write(randomBytes(Math.min(8, sizeMib - i) * MIB));
    await fh.close();
  }
  await copyFile(cached, join(dir, 'big.bin'));
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(join(dir, 'big.bin'), { highWaterMark: 4 * MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function startRclone(folder: string, work: string): Promise<Target> {
  const ca = createCa('kura-bench CA', { days: 2 });
  const leaf = issueServerCert(ca, ['127.0.0.1'], { days: 2 });
  await writeFile(join(work, 'rclone.pem'), leaf.certPem);
  await writeFile(join(work, 'rclone.key'), leaf.keyPem, { mode: 0o600 });
  const args = ['serve', 'webdav', folder, '--addr', '127.0.0.1:0', '--cert', join(work, 'rclone.pem'), '--key', join(work, 'rclone.key')];
  const server = await startServer('rclone', args, /Server started on \[?(https:\/\/[^\s\]]+)/);
  return {
    name: 'rclone serve webdav',
    base: new URL(server.url.endsWith('/') ? server.url : server.url + '/'),
    tls: { ca: ca.certPem },
    server,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'size-mib': { type: 'string', default: '1024' }, entries: { type: 'string', default: '10000' }, json: { type: 'boolean' } },
  });
  const sizeMib = Number(values['size-mib']);
  const entries = Number(values.entries);
  const work = await mkdtemp(join(tmpdir(), 'kura-bench-browse-'));
  const servers: Server[] = [];
  try {
    const src = join(work, 'src');
    progress(`preparing ${entries} small files and a ${sizeMib} MiB file…`);
    const sha256 = await prepareSource(src, entries, sizeMib);
    const gateway = await startServer(
      process.execPath,
      [KURA_CLI, 'serve', '--data', join(work, 'data'), '--port', '0'],
      /listening on (https:\/\/\S+\/)/,
    );
    servers.push(gateway);
    const demo = join(work, 'data', 'demo');
    const env = { ...process.env, KURA_GATEWAY: gateway.url, KURA_CERT: join(demo, 'demo.pem'), KURA_KEY: join(demo, 'demo.key') };
    Object.assign(env, { KURA_CA: join(demo, 'ca.pem'), KURA_HOST: 'bench', KURA_STATE_DIR: join(work, 'state') });
    await runTimed(process.execPath, [KURA_CLI, 'key', 'init', '--plaintext'], env);
    progress('backing up (plaintext repository)…');
    const backup = await runTimed(process.execPath, [KURA_CLI, 'backup', src, '--quiet'], env);
    progress(`backup took ${backup.seconds.toFixed(1)} s`);
    const tls = {
      ca: await readFile(join(demo, 'ca.pem'), 'utf8'),
      cert: await readFile(join(demo, 'demo.pem'), 'utf8'),
      key: await readFile(join(demo, 'demo.key'), 'utf8'),
    };
    const root: Target = { name: 'probe', base: new URL('/snapshots/bench/', gateway.url), tls, server: gateway };
    let listing = '';
    for await (const chunk of (await send(root, '', 'PROPFIND', { Depth: '1' })) as AsyncIterable<Buffer>)
      listing += chunk.toString('utf8');
    const time = /\/snapshots\/bench\/(\d{8}T\d{6}Z[^/<]*)\//.exec(listing)?.[1];
    if (!time) throw new Error(`no snapshot listed:\n${listing}`);
    const kura: Target = {
      name: 'kura gateway /snapshots/',
      base: new URL(`/snapshots/bench/${time}/src/`, gateway.url),
      tls,
      server: gateway,
    };
    const results = [await measure(kura, entries, sizeMib * MIB, sha256)];
    const mount = await startServer(process.execPath, [KURA_CLI, 'mount', '--quiet', '--json'], /"url":"(http:[^"]+)"/, env);
    servers.push(mount);
    results.push(
      await measure(
        { name: 'kura mount', base: new URL(`bench/${time}/src/`, mount.url), tls: {}, server: mount },
        entries,
        sizeMib * MIB,
        sha256,
      ),
    );
    const rclone = await startRclone(src, work);
    servers.push(rclone.server);
    results.push(await measure(rclone, entries, sizeMib * MIB, sha256));
    report(results, { entries, sizeMib, backupSeconds: backup.seconds }, Boolean(values.json));
  } finally {
    for (const s of servers) await stopServer(s.child);
    await rm(work, { recursive: true, force: true });
  }
}

function report(results: Figures[], setup: { entries: number; sizeMib: number; backupSeconds: number }, json: boolean): void {
  if (json) return void process.stdout.write(JSON.stringify({ ...setup, results }, null, 2) + '\n');
  const rows = results.map(
    (r) =>
      `${r.server.padEnd(26)} ${r.listColdMs.toFixed(0).padStart(8)} ${r.listWarmMs.toFixed(0).padStart(8)} ${r.getMBps.toFixed(0).padStart(8)} ${r.peakRssMB.toFixed(0).padStart(8)}`,
  );
  process.stdout.write(
    [
      `Depth 1 PROPFIND of ${setup.entries} entries (ms: first, best of 3 more); GET of ${setup.sizeMib} MiB (MB/s); server peak RSS (MB)`,
      `${'server'.padEnd(26)} ${'cold'.padStart(8)} ${'warm'.padStart(8)} ${'GET'.padStart(8)} ${'RSS'.padStart(8)}`,
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();
