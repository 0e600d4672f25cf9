import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, issueClientCert } from '../../gateway/policy/ca.js';
import { dav, startTestGateway, type DavResponse, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { basicAuth } from '../helpers/hostile.js';

const DAY_MS = 86_400_000;
const depth0 = { Depth: '0' };
const depth1 = { Depth: '1' };

function assertRefused(res: DavResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.ok(res.text.startsWith(code), `body should start with ${code}: ${res.text}`);
}

function assertBasicChallenge(res: DavResponse): void {
  const challenge = res.headers['www-authenticate'];
  const all = Array.isArray(challenge) ? challenge.join('\n') : (challenge ?? '');
  assert.match(all, /^Basic realm="Kura"/);
  assert.doesNotMatch(all, /digest/i);
}

async function filesIn(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

describe('identity: who may reach an area', () => {
  let gw: TestGateway;
  let alice: TestUser;
  let alice2: TestUser;

  before(async () => {
    gw = await startTestGateway();
    alice = await gw.addUser('alice');
    alice2 = await gw.addUser('alice2');
  });

  after(async () => {
    await gw.close();
  });

  it('refuses a certificate from another CA with 403 certificate-not-trusted and writes nothing', async () => {
    const foreignCa = createCa('Someone else CA');
    const foreign = issueClientCert(foreignCa, 'alice');
    const before = await gw.policy.usage.get('alice');
    const put = await dav(gw, { method: 'PUT', path: '/files/from-foreign-ca.txt', cert: foreign, body: 'not yours' });
    assertRefused(put, 403, 'certificate-not-trusted');
    const list = await dav(gw, { method: 'PROPFIND', path: '/files/', cert: foreign, headers: depth1 });
    assertRefused(list, 403, 'certificate-not-trusted');
    assert.ok(!(await filesIn(gw.filesDir(alice))).includes('from-foreign-ca.txt'));
    assert.equal(await gw.policy.usage.get('alice'), before);
  });

  it('refuses an expired certificate of the Kura CA with 403 certificate-expired', async () => {
    const now = Date.now();
    const expired = await gw.policy.certs.issue('alice', { notBefore: new Date(now - 10 * DAY_MS), notAfter: new Date(now - DAY_MS) });
    const res = await dav(gw, { method: 'PUT', path: '/files/expired.txt', cert: expired, body: 'late' });
    assertRefused(res, 403, 'certificate-expired');
    assert.ok(!(await filesIn(gw.filesDir(alice))).includes('expired.txt'));
  });

  it('refuses a revoked certificate on the very next request, without a restart', async () => {
    const cert = await gw.policy.certs.issue('alice');
    const first = await dav(gw, { method: 'PROPFIND', path: '/files/', cert, headers: depth0 });
    assert.equal(first.status, 207);
    await gw.policy.certs.revoke(cert.fingerprint256);
    const next = await dav(gw, { method: 'PUT', path: '/files/after-revoke.txt', cert, body: 'too late' });
    assertRefused(next, 403, 'certificate-revoked');
    assert.ok(!(await filesIn(gw.filesDir(alice))).includes('after-revoke.txt'));
    const own = await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, headers: depth0 });
    assert.equal(own.status, 207, "revoking one certificate leaves the user's other certificates working");
  });

  it('refuses a Kura certificate whose extended key usage is serverAuth only with 403 certificate-not-for-client-auth', async () => {
    const serverOnly = await gw.policy.certs.issue('alice', { extKeyUsage: 'serverAuth' });
    const res = await dav(gw, { method: 'PROPFIND', path: '/files/', cert: serverOnly, headers: depth0 });
    assertRefused(res, 403, 'certificate-not-for-client-auth');
  });

  it('answers a request without credentials with 401 and a Basic challenge, never Digest', async () => {
    const res = await dav(gw, { method: 'PROPFIND', path: '/files/', headers: depth0 });
    assertRefused(res, 401, 'credentials-required');
    assertBasicChallenge(res);
  });

  it('answers a wrong app password with 401 and a Basic challenge', async () => {
    const res = await dav(gw, {
      method: 'PROPFIND',
      path: '/files/',
      headers: { ...depth0, authorization: basicAuth('alice', 'wrong-password') },
    });
    assert.equal(res.status, 401);
    assertBasicChallenge(res);
    const unknown = await dav(gw, {
      method: 'PROPFIND',
      path: '/files/',
      headers: { ...depth0, authorization: basicAuth('nobody', alice.password) },
    });
    assert.equal(unknown.status, 401);
    const otherUsers = await dav(gw, {
      method: 'PROPFIND',
      path: '/files/',
      headers: { ...depth0, authorization: basicAuth('alice2', alice.password) },
    });
    assert.equal(otherUsers.status, 401, "alice's app password does not open alice2's area");
  });

  it('lets the right app password PROPFIND /files/ with Depth 0 (207)', async () => {
    const res = await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, as: 'password', headers: depth0 });
    assert.equal(res.status, 207);
    assert.match(res.text, /<D:href>\/files\/<\/D:href>/);
  });

  it('refuses a disabled user with 403 user-disabled (certificate and app password) and lets them in once enabled again', async () => {
    const bob = await gw.addUser('bob');
    await gw.policy.users.setDisabled('bob', true);
    const byCert = await dav(gw, { method: 'PUT', path: '/files/while-disabled.txt', user: bob, body: 'x' });
    assertRefused(byCert, 403, 'user-disabled');
    const byPassword = await dav(gw, { method: 'PROPFIND', path: '/files/', user: bob, as: 'password', headers: depth0 });
    assertRefused(byPassword, 403, 'user-disabled');
    assert.deepEqual(await filesIn(gw.filesDir(bob)), []);
    await gw.policy.users.setDisabled('bob', false);
    assert.equal((await dav(gw, { method: 'PROPFIND', path: '/files/', user: bob, headers: depth0 })).status, 207);
    assert.equal((await dav(gw, { method: 'PROPFIND', path: '/files/', user: bob, as: 'password', headers: depth0 })).status, 207);
  });

  it("ignores a forged X-SSL-Client-Cert header carrying another user's valid PEM: still 401 without a TLS certificate", async () => {
    const forged = {
      ...depth0,
      'X-SSL-Client-Cert': encodeURIComponent(alice2.certPem),
      'X-Client-Cert': alice2.certPem.replace(/\s+/g, ' ').trim(),
      'X-Forwarded-Client-Cert': `Hash=${alice2.fingerprint256.replace(/:/g, '')};Subject="CN=alice2"`,
      'SSL-Client-Verify': 'SUCCESS',
    };
    const res = await dav(gw, { method: 'PROPFIND', path: '/files/', headers: forged });
    assertRefused(res, 401, 'credentials-required');
    const put = await dav(gw, { method: 'PUT', path: '/files/forged.txt', headers: forged, body: 'x' });
    assert.equal(put.status, 401);
    assert.ok(!(await filesIn(gw.filesDir(alice2))).includes('forged.txt'));
  });

  it("keeps alice2's files out of alice's sight: listing and GET as alice never show them", async () => {
    const put = await dav(gw, { method: 'PUT', path: '/files/alice2-only.txt', user: alice2, body: 'for alice2' });
    assert.equal(put.status, 201);
    assert.ok((await filesIn(gw.filesDir(alice2))).includes('alice2-only.txt'));
    assert.notEqual(gw.filesDir(alice), gw.filesDir(alice2));
    for (const as of ['cert', 'password'] as const) {
      const list = await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, as, headers: depth1 });
      assert.equal(list.status, 207);
      assert.doesNotMatch(list.text, /alice2-only/);
      assert.equal((await dav(gw, { method: 'GET', path: '/files/alice2-only.txt', user: alice, as })).status, 404);
    }
    for (const path of [
      '/alice2/files/alice2-only.txt',
      `/${alice2.id}/files/alice2-only.txt`,
      `/files/${alice2.id}/files/alice2-only.txt`,
    ]) {
      const res = await dav(gw, { method: 'GET', path, user: alice });
      assert.equal(res.status, 404, `${path} must not reach alice2's area`);
      assert.doesNotMatch(res.text, /for alice2/);
    }
  });

  it('picks the user by fingerprint, not subject: an unregistered Kura-CA certificate with CN alice2 is refused', async () => {
    const kuraCa = await gw.policy.certs.loadCa();
    for (const cn of ['alice2', 'alice', 'alice2,CN=alice']) {
      const unregistered = issueClientCert(kuraCa, cn);
      const res = await dav(gw, { method: 'GET', path: '/files/alice2-only.txt', cert: unregistered });
      assertRefused(res, 403, 'certificate-unknown');
    }
    const foreign = issueClientCert(createCa('Kura client CA'), 'alice2');
    const res = await dav(gw, { method: 'GET', path: '/files/alice2-only.txt', cert: foreign });
    assertRefused(res, 403, 'certificate-not-trusted');
  });

  it("lets alice's certificate win over a Basic header with alice2's password: the request stays in alice's area", async () => {
    const headers = { ...depth1, authorization: basicAuth('alice2', alice2.password) };
    const list = await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, headers });
    assert.equal(list.status, 207);
    assert.doesNotMatch(list.text, /alice2-only/);
    const put = await dav(gw, { method: 'PUT', path: '/files/mixed.txt', user: alice, headers, body: 'mixed' });
    assert.equal(put.status, 201);
    assert.ok(!(await filesIn(gw.filesDir(alice2))).includes('mixed.txt'));
    assert.ok((await filesIn(gw.filesDir(alice))).includes('mixed.txt'));
  });

  it('sends no Access-Control-Allow-Origin header, whatever the Origin', async () => {
    const origin = { Origin: 'https://evil.example' };
    const responses = [
      await dav(gw, { method: 'OPTIONS', path: '/files/', user: alice, headers: { ...origin, 'Access-Control-Request-Method': 'PUT' } }),
      await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, headers: { ...origin, ...depth0 } }),
      await dav(gw, { method: 'GET', path: '/files/', user: alice, headers: origin }),
      await dav(gw, { method: 'PROPFIND', path: '/files/', headers: { ...origin, ...depth0 } }),
      await dav(gw, { method: 'GET', path: '/healthz', headers: origin }),
    ];
    for (const res of responses) {
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['access-control-allow-credentials'], undefined);
    }
  });

  it('answers /healthz with 200 without any credentials', async () => {
    const res = await dav(gw, { method: 'GET', path: '/healthz' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { status: 'ok' });
  });

  it('keeps refused requests from creating anything in the areas folder of an unknown caller', async () => {
    const areas = join(gw.dataDir, 'areas');
    const before = await filesIn(areas);
    const foreign = issueClientCert(createCa('Another CA'), 'mallory');
    await dav(gw, { method: 'PUT', path: '/files/m.txt', cert: foreign, body: 'm' });
    await dav(gw, { method: 'PUT', path: '/files/m.txt', headers: { authorization: basicAuth('mallory', 'guess') }, body: 'm' });
    assert.deepEqual(await filesIn(areas), before);
  });
});
