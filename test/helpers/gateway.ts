import { request as httpsRequest, type RequestOptions } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import { Policy } from '../../gateway/policy/policy.js';
import type { ContractChange } from '../../gateway/policy/contracts.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { ensureTls } from '../../gateway/tls.js';
import { areaLayout } from '../../gateway/storage/data-dir.js';

/** A real gateway over real TLS on 127.0.0.1, with its own temporary data folder. */
export interface TestGateway {
  url: string;
  port: number;
  dataDir: string;
  policy: Policy;
  caPem: string;
  running: RunningGateway;
  addUser(name: string, contract?: ContractChange): Promise<TestUser>;
  filesDir(user: TestUser): string;
  close(): Promise<void>;
}

export interface TestUser {
  name: string;
  id: string;
  certPem: string;
  keyPem: string;
  p12: Buffer;
  fingerprint256: string;
  password: string;
}

/** With `dataDir`, the gateway keeps its data there (the caller's folder, left in place by close). */
export async function startTestGateway(given?: { dataDir: string }): Promise<TestGateway> {
  const dataDir = given?.dataDir ?? (await mkdtemp(join(tmpdir(), 'kura-test-')));
  const policy = await Policy.open(dataDir);
  await policy.certs.initCa();
  const tls = await ensureTls(policy);
  const running = await startGateway({ policy, tls, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
  return {
    url: running.url,
    port: running.port,
    dataDir,
    policy,
    caPem: tls.clientCaPem,
    running,
    async addUser(name, contract = {}) {
      const user = await policy.users.add(name);
      await policy.contracts.set(name, { quotaBytes: 1024 ** 3, ...contract });
      const cert = await policy.certs.issue(name);
      const { password } = await policy.appPasswords.add(name, 'test');
      return {
        name,
        id: user.id,
        certPem: cert.certPem,
        keyPem: cert.keyPem,
        p12: cert.p12,
        fingerprint256: cert.fingerprint256,
        password,
      };
    },
    filesDir(user) {
      return areaLayout(policy.layout, user.id).files;
    },
    async close() {
      await running.close();
      await policy.close();
      if (!given) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface DavRequest {
  method: string;
  path: string;
  /** Authenticate as this user: with its certificate (default) or its app password. */
  user?: TestUser;
  as?: 'cert' | 'password';
  /** A client certificate to present instead of the user's (e.g. one from another CA). */
  cert?: { certPem: string; keyPem: string };
  headers?: Record<string, string | number>;
  body?: string | Buffer | Readable;
}

export interface DavResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** One request on a fresh TLS connection, verifying the gateway's certificate against the Kura CA. */
export function dav(gw: TestGateway, req: DavRequest): Promise<DavResponse> {
  const opts: RequestOptions = {
    host: '127.0.0.1',
    port: gw.port,
    method: req.method,
    path: req.path,
    ca: gw.caPem,
    agent: false,
    headers: { ...(req.headers ?? {}) },
  };
  const cert = req.cert ?? (req.user && req.as !== 'password' ? req.user : undefined);
  if (cert) Object.assign(opts, { cert: cert.certPem, key: cert.keyPem });
  if (req.user && req.as === 'password') {
    (opts.headers as Record<string, string>).authorization =
      'Basic ' + Buffer.from(`${req.user.name}:${req.user.password}`).toString('base64');
  }
  return new Promise((resolve, reject) => {
    const r = httpsRequest(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    if (req.body === undefined || typeof req.body === 'string' || Buffer.isBuffer(req.body)) r.end(req.body);
    else req.body.pipe(r);
  });
}
