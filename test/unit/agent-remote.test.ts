import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GatewayRemote, RemoteError } from '../../agent/remote.js';
import { createCa, issueClientCert, issueServerCert } from '../../gateway/policy/ca.js';

// The agent's GatewayRemote (the webdav client over its undici transport, agent/gateway-fetch.ts)
// against a scripted HTTPS server that requires a client certificate: what each failure costs.

const ca = createCa('Kura Remote Test CA');
const serverCert = issueServerCert(ca, ['127.0.0.1']);
const client = issueClientCert(ca, 'alice');
const FILE = randomBytes(3 << 20);

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void;

describe('GatewayRemote over real TLS with a client certificate', () => {
  let server: https.Server;
  let url = '';
  let handler: Handler;
  let requests: { method: string; url: string; user: string; headers: IncomingMessage['headers'] }[] = [];

  before(async () => {
    server = https.createServer(
      { key: serverCert.keyPem, cert: serverCert.certPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const user = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
        requests.push({ method: req.method ?? '', url: req.url ?? '', user, headers: req.headers });
        handler(req, res, requests.length);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    requests = [];
  });

  const remote = () =>
    new GatewayRemote({ url, certPem: client.certPem, keyPem: client.keyPem, caPem: ca.certPem }, { attempts: 4, baseMs: 5 });

  it('reads a byte range straight into its destination, presenting the certificate', async () => {
    handler = (_req, res) => serveRange(res, 1000, 2_000_999);
    const dest = new Uint8Array(2_000_000);
    assert.equal(await remote().readRange('/.kura/packs/ab/cd', 1000, dest), true);
    assert.ok(Buffer.from(dest).equals(FILE.subarray(1000, 2_001_000)));
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.headers.range, 'bytes=1000-2000999');
    assert.equal(requests[0]?.user, 'alice');
  });

  it('retries a response cut off mid-body, and the range arrives whole on the next attempt', async () => {
    handler = (req, res, attempt) => {
      if (attempt > 1) return serveRange(res, 0, FILE.length - 1);
      res.writeHead(206, { 'content-length': FILE.length, 'content-range': `bytes 0-${FILE.length - 1}/${FILE.length}` });
      res.write(FILE.subarray(0, 1 << 20), () => req.socket.destroy());
    };
    const dest = new Uint8Array(FILE.length);
    assert.equal(await remote().readRange('/p', 0, dest), true);
    assert.ok(Buffer.from(dest).equals(FILE));
    assert.equal(requests.length, 2);
  });

  it('retries 503 with backoff until the gateway answers', async () => {
    handler = (_req, res, attempt) => {
      if (attempt <= 2) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('busy: try again');
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(FILE.subarray(0, 5000));
    };
    const got = await remote().getFile('/.kura/config');
    assert.ok(got?.equals(FILE.subarray(0, 5000)));
    assert.equal(requests.length, 3);
  });

  for (const status of [401, 403, 507]) {
    it(`stops at once on ${status} and reports the gateway's reason`, async () => {
      handler = (_req, res) => void res.writeHead(status, { 'content-type': 'text/plain' }).end(`reason-${status}: said by the gateway`);
      const err = await remote()
        .putFile('/.kura/packs/ab/cd', FILE.subarray(0, 100))
        .then(
          () => null,
          (e: unknown) => e,
        );
      assert.ok(err instanceof RemoteError, `got ${String(err)}`);
      assert.equal(err.status, status);
      assert.equal(err.retryable, false);
      assert.match(
        err.message,
        new RegExp(`PUT /.kura/packs/ab/cd: the gateway answered ${status}: reason-${status}: said by the gateway`),
      );
      assert.equal(requests.length, 1);
    });
  }

  it('sends a pack PUT of several MiB whole, with its length, and a 404 GET is null', async () => {
    const received: Buffer[] = [];
    handler = (req, res) => {
      if (req.method === 'GET') return void res.writeHead(404).end('not-found: no such file');
      req.on('data', (c: Buffer) => received.push(c));
      req.on('end', () => res.writeHead(201).end());
    };
    await remote().putFile('/.kura/packs/ab/cd', FILE);
    assert.ok(Buffer.concat(received).equals(FILE));
    assert.equal(requests[0]?.headers['content-length'], String(FILE.length));
    assert.equal(await remote().getFile('/.kura/config'), null);
  });

  it('gives up on a gateway that is gone after its attempts, as a retryable network failure', async () => {
    const gone = new GatewayRemote(
      { url: 'https://127.0.0.1:9/', certPem: client.certPem, keyPem: client.keyPem, caPem: ca.certPem },
      { attempts: 2, baseMs: 5 },
    );
    const err = await gone.getFile('/.kura/config').then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RemoteError, `got ${String(err)}`);
    assert.equal(err.status, null);
    assert.match(err.message, /GET \/\.kura\/config: cannot reach the gateway \(.*ECONNREFUSED/);
  });
});

function serveRange(res: ServerResponse, start: number, end: number): void {
  res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${FILE.length}` });
  res.end(FILE.subarray(start, end + 1));
}
