import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { createCa, fingerprintOf, issueClientCert, issueServerCert, toPkcs12, type PemPair } from '../../gateway/policy/ca.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY_MS = 86_400_000;

// Key generation dominates the cost, so one CA and server cert serve every test.
const ca = createCa('Kura Test CA');
const caX509 = new X509Certificate(ca.certPem);
const server = issueServerCert(ca, ['localhost', '127.0.0.1', '::1']);

interface HandshakeResult {
  authorized: boolean;
  authorizationError: string | undefined;
  fingerprint256: string | undefined;
}

interface TestServer {
  port: number;
  /** What the server concluded about each request's client certificate. */
  seen: HandshakeResult[];
  close(): Promise<void>;
}

/** Mutual-TLS server that asks for, but does not require, a client certificate. */
async function startServer(): Promise<TestServer> {
  const seen: HandshakeResult[] = [];
  const srv = https.createServer(
    { key: server.keyPem, cert: server.certPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const result: HandshakeResult = {
        authorized: socket.authorized,
        authorizationError: socket.authorizationError?.toString(),
        fingerprint256: socket.getPeerCertificate().fingerprint256,
      };
      seen.push(result);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(result));
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  };
  return { port: (srv.address() as AddressInfo).port, seen, close };
}

/** Real TLS round trip with Node as the client; resolves with the server's verdict. */
async function handshake(client: https.RequestOptions): Promise<HandshakeResult> {
  const srv = await startServer();
  try {
    return await new Promise<HandshakeResult>((resolve, reject) => {
      // The client verifies the server too (default rejectUnauthorized), exercising the IP SAN.
      const options = { host: '127.0.0.1', port: srv.port, path: '/', ca: [ca.certPem], agent: false, ...client };
      const req = https.request(options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(JSON.parse(body) as HandshakeResult));
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    await srv.close();
  }
}

async function withTempFile<T>(data: Buffer, fn: (file: string) => T | Promise<T>, name = 'bundle.p12'): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kura-ca-'));
  try {
    const file = path.join(dir, name);
    fs.writeFileSync(file, data);
    return await fn(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs a client asynchronously (the TLS server lives in this process) with stdin closed, so a
 * password prompt fails fast instead of hanging. `cwd` is a temp dir because litmus drops
 * debug.log/child.log there. Exit status is ignored; callers check the output.
 */
function runClient(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve) => {
    const options = { cwd, timeout: 30_000, env: { ...process.env, TESTS: 'basic' } };
    const child = execFile(cmd, args, options, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
    child.stdin?.end();
  });
}

function parseP12(p12: Buffer, password: string): forge.pkcs12.Pkcs12Pfx {
  return forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(p12.toString('binary')), password);
}

function keyBags(pfx: forge.pkcs12.Pkcs12Pfx): forge.pkcs12.Bag[] {
  return pfx.safeContents.flatMap((sc) => sc.safeBags).filter((bag) => bag.type !== forge.pki.oids.certBag);
}

test('CA certificate is self-signed, a CA, and named CN + O=Kura', () => {
  assert.equal(caX509.ca, true);
  assert.equal(caX509.checkIssued(caX509), true);
  assert.equal(caX509.verify(caX509.publicKey), true);
  assert.match(caX509.subject, /CN=Kura Test CA/);
  assert.match(caX509.subject, /O=Kura/);
  assert.equal(caX509.issuer, caX509.subject);
});

test('client certificate chains to the CA and carries clientAuth', () => {
  const alice = issueClientCert(ca, 'alice');
  const x = new X509Certificate(alice.certPem);
  assert.equal(x.verify(caX509.publicKey), true);
  assert.equal(x.checkIssued(caX509), true);
  assert.equal(x.ca, false);
  assert.match(x.subject, /CN=alice/);
  assert.match(x.subject, /O=Kura/);
  assert.equal(x.issuer, caX509.subject);
  assert.ok(x.keyUsage.includes(CLIENT_AUTH), `EKU ${x.keyUsage.join(',')}`);
  assert.equal(fingerprintOf(alice.certPem), x.fingerprint256);
  assert.equal(alice.fingerprint256, x.fingerprint256);
  assert.equal(alice.serial, x.serialNumber);
  assert.match(alice.serial, /^[0-7][0-9A-F]{31}$/, 'positive 16-byte serial');
  assert.equal(new Date(x.validFrom).getTime(), alice.notBefore.getTime());
  assert.equal(new Date(x.validTo).getTime(), alice.notAfter.getTime());
  // Backdated ~5 minutes for clock skew, valid for 365 days by default.
  const skew = Date.now() - alice.notBefore.getTime();
  assert.ok(skew > 4 * 60_000 && skew < 6 * 60_000, `backdate ${skew}ms`);
  assert.equal(alice.notAfter.getTime() - alice.notBefore.getTime(), 365 * DAY_MS);
  assert.notEqual(issueClientCert(ca, 'alice').serial, alice.serial);
});

test('non-ASCII user names survive as UTF8String', () => {
  const cert = issueClientCert(ca, 'jürgen_ops@example');
  assert.match(new X509Certificate(cert.certPem).subject, /CN=jürgen_ops@example/);
});

test('serverAuth variant is not usable for client authentication', () => {
  const cert = issueClientCert(ca, 'mallory', { extKeyUsage: 'serverAuth' });
  const x = new X509Certificate(cert.certPem);
  assert.ok(!x.keyUsage.includes(CLIENT_AUTH));
  assert.ok(x.keyUsage.includes(SERVER_AUTH));
});

test('expired certificate has validTo in the past', () => {
  const notBefore = new Date(Date.now() - 30 * DAY_MS);
  const notAfter = new Date(Date.now() - DAY_MS);
  const cert = issueClientCert(ca, 'bob', { notBefore, notAfter });
  const x = new X509Certificate(cert.certPem);
  assert.ok(new Date(x.validTo).getTime() < Date.now());
  assert.ok(cert.notAfter.getTime() < Date.now());
  assert.equal(x.verify(caX509.publicKey), true);
});

test('server certificate matches its DNS names and IPs', () => {
  const x = new X509Certificate(server.certPem);
  assert.equal(x.checkHost('localhost'), 'localhost');
  assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(x.checkIP('::1'), '::1');
  assert.equal(x.checkHost('example.com'), undefined);
  assert.ok(x.keyUsage.includes(SERVER_AUTH));
  assert.ok(!x.keyUsage.includes(CLIENT_AUTH));
  assert.equal(x.checkIssued(caX509), true);
  assert.equal(x.verify(caX509.publicKey), true);
});

test('bad inputs are refused', () => {
  assert.throws(() => issueServerCert(ca, []), /at least one host/);
  assert.throws(() => issueClientCert(ca, ''), /common name/);
  const now = new Date();
  assert.throws(() => issueClientCert(ca, 'x', { notBefore: now, notAfter: now }), /notAfter/);
  const other = createCa('Other CA');
  const mixed: PemPair = { certPem: ca.certPem, keyPem: other.keyPem };
  assert.throws(() => issueClientCert(mixed, 'x'), /does not match/);
  const leaf = issueClientCert(ca, 'leaf');
  assert.throws(() => issueClientCert(leaf, 'x'), /not a CA/);
  assert.throws(() => fingerprintOf('not a pem'), /PEM/);
  assert.throws(() => fingerprintOf(ca.keyPem), /no CERTIFICATE block/);
});

test('TLS handshake with client cert/key is authorized and fingerprints match', async () => {
  const alice = issueClientCert(ca, 'alice');
  const result = await handshake({ cert: alice.certPem, key: alice.keyPem });
  assert.equal(result.authorized, true, result.authorizationError);
  assert.equal(result.fingerprint256, fingerprintOf(alice.certPem));
});

test('TLS rejects certificates that are expired, serverAuth-only or from another CA', async () => {
  const past = { notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) };
  const cases: Array<[PemPair, string]> = [
    [issueClientCert(ca, 'old', past), 'CERT_HAS_EXPIRED'],
    [issueClientCert(ca, 'srv', { extKeyUsage: 'serverAuth' }), 'INVALID_PURPOSE'],
    [issueClientCert(createCa('Evil CA'), 'eve'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  ];
  for (const [cert, code] of cases) {
    const result = await handshake({ cert: cert.certPem, key: cert.keyPem });
    assert.equal(result.authorized, false);
    assert.equal(result.authorizationError, code);
  }
});

test('TLS handshake with the passphrase-less PKCS#12 is authorized', async () => {
  const alice = issueClientCert(ca, 'alice');
  const p12 = toPkcs12(alice, ca.certPem, { friendlyName: 'alice' });
  for (const client of [{ pfx: p12, passphrase: '' }, { pfx: p12 }]) {
    const result = await handshake(client);
    assert.equal(result.authorized, true, result.authorizationError);
    assert.equal(result.fingerprint256, alice.fingerprint256);
  }
});

test('PKCS#12 without passphrase opens with the empty password in forge and the openssl CLI', async () => {
  const alice = issueClientCert(ca, 'alice');
  const p12 = toPkcs12(alice, ca.certPem, { friendlyName: 'alice' });
  // Shrouded with "" (what `openssl pkcs12 -export -passout pass:` writes), not a plain keyBag:
  // neon's GnuTLS backend can only import the key in that form.
  const bags = keyBags(parseP12(p12, ''));
  assert.deepEqual(
    bags.map((b) => b.type),
    [forge.pki.oids.pkcs8ShroudedKeyBag],
  );
  assert.equal(bags[0]?.key?.n.toString(16), forge.pki.privateKeyFromPem(alice.keyPem).n.toString(16));
  await withTempFile(p12, (file) => {
    const certs = openssl(['pkcs12', '-in', file, '-nokeys', '-passin', 'pass:']);
    assert.equal(certs.match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf + CA');
    assert.match(certs, /friendlyName: alice/);
    const leafPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(certs)?.[0] ?? '';
    assert.equal(fingerprintOf(leafPem), alice.fingerprint256);
    const keyPem = openssl(['pkcs12', '-in', file, '-nocerts', '-nodes', '-passin', 'pass:']);
    const spki = (pem: string): string => createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
    assert.equal(spki(keyPem), spki(alice.keyPem));
  });
});

test('PKCS#12 with a passphrase needs that passphrase', async () => {
  const alice = issueClientCert(ca, 'alice');
  const p12 = toPkcs12(alice, ca.certPem, { passphrase: 'secret' });
  assert.throws(() => parseP12(p12, ''), /MAC could not be verified/);
  await withTempFile(p12, (file) => {
    openssl(['pkcs12', '-in', file, '-nokeys', '-passin', 'pass:secret']);
    assert.throws(() => openssl(['pkcs12', '-in', file, '-nokeys', '-passin', 'pass:']));
  });
  const result = await handshake({ pfx: p12, passphrase: 'secret' });
  assert.equal(result.authorized, true, result.authorizationError);
});

test('curl loads the passphrase-less PKCS#12 without a prompt', async () => {
  const alice = issueClientCert(ca, 'alice');
  const srv = await startServer();
  try {
    await withTempFile(toPkcs12(alice, ca.certPem), async (file) => {
      const url = `https://127.0.0.1:${srv.port}/`;
      const args = (caFile: string): string[] => ['-sS', '--cert-type', 'P12', '--cert', file, '--cacert', caFile, url];
      const out = await withTempFile(Buffer.from(ca.certPem), (caFile) => runClient('curl', args(caFile), path.dirname(file)), 'ca.pem');
      assert.match(out, /"authorized":true/);
    });
    assert.equal(srv.seen[0]?.fingerprint256, alice.fingerprint256);
  } finally {
    await srv.close();
  }
});

test('litmus (neon) loads the passphrase-less PKCS#12 without a prompt', async () => {
  const alice = issueClientCert(ca, 'alice');
  const srv = await startServer();
  try {
    const out = await withTempFile(toPkcs12(alice, ca.certPem, { friendlyName: 'alice' }), (file) =>
      runClient('litmus', ['-c', file, `https://127.0.0.1:${srv.port}/dav/`], path.dirname(file)),
    );
    // Only "begin" matters: it loads the certificate. The dummy server fails later DAV checks.
    assert.match(out, /begin\.+ pass/, out);
    assert.ok(srv.seen.length > 0 && srv.seen.every((r) => r.authorized), JSON.stringify(srv.seen));
  } finally {
    await srv.close();
  }
});
