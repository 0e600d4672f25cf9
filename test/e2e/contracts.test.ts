import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { dav, startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { keepAliveAgent, requestVia } from '../helpers/hostile.js';

const DAY_MS = 86_400_000;
const depth0 = { Depth: '0' };

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A refusal is a 403 whose plain-text body starts with the stable code. */
function assertRefused(res: Answer, code: string): void {
  assert.equal(res.status, 403, `expected 403 ${code}, got ${res.status}: ${res.text}`);
  assert.ok(res.text.startsWith(`${code}:`), `body should start with "${code}:": ${res.text}`);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  assert.ok(res.text.length > code.length + 3, 'the body explains the refusal after the code');
}

async function filesIn(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

/** A user with a certificate and an app password but no contract at all. */
async function addUserWithoutContract(gw: TestGateway, name: string): Promise<TestUser> {
  const user = await gw.policy.users.add(name);
  const cert = await gw.policy.certs.issue(name);
  const { password } = await gw.policy.appPasswords.add(name, 'test');
  return { name, id: user.id, certPem: cert.certPem, keyPem: cert.keyPem, p12: cert.p12, fingerprint256: cert.fingerprint256, password };
}

/** A PUT and a PROPFIND by certificate and by app password, each refused with code; nothing is stored. */
async function assertLockedOut(gw: TestGateway, user: TestUser, code: string): Promise<void> {
  const usage = await gw.policy.usage.get(user.name);
  assertRefused(await dav(gw, { method: 'PUT', path: '/files/refused.txt', user, body: 'should not land' }), code);
  assertRefused(await dav(gw, { method: 'PROPFIND', path: '/files/', user, headers: depth0 }), code);
  assertRefused(await dav(gw, { method: 'PROPFIND', path: '/files/', user, as: 'password', headers: depth0 }), code);
  assert.deepEqual(await filesIn(gw.filesDir(user)), []);
  assert.equal(await gw.policy.usage.get(user.name), usage);
}

describe('contracts: checked on every request', () => {
  let gw: TestGateway;
  const agents: Agent[] = [];

  before(async () => {
    gw = await startTestGateway();
  });

  after(async () => {
    for (const agent of agents) agent.destroy();
    await gw.close();
  });

  it('refuses a user without a contract with 403 contract-missing', async () => {
    const user = await addUserWithoutContract(gw, 'nocontract');
    await assertLockedOut(gw, user, 'contract-missing');
  });

  it('refuses a contract whose validFrom is in the future with 403 contract-not-yet-valid', async () => {
    const user = await gw.addUser('early', { validFrom: new Date(Date.now() + DAY_MS).toISOString() });
    await assertLockedOut(gw, user, 'contract-not-yet-valid');
  });

  it('refuses a contract whose validUntil has passed with 403 contract-expired', async () => {
    const now = Date.now();
    const user = await gw.addUser('lapsed', {
      validFrom: new Date(now - 30 * DAY_MS).toISOString(),
      validUntil: new Date(now - DAY_MS).toISOString(),
    });
    await assertLockedOut(gw, user, 'contract-expired');
  });

  it('refuses the next request on an open connection once the contract is suspended, and works again when reactivated', async () => {
    const user = await gw.addUser('paused');
    const agent = keepAliveAgent(gw, user);
    agents.push(agent);
    const first = await requestVia(agent, gw, 'PUT', '/files/before.txt', {}, 'before suspension');
    assert.equal(first.status, 201);
    await gw.policy.contracts.set(user.name, { status: 'suspended' });
    const second = await requestVia(agent, gw, 'PUT', '/files/during.txt', {}, 'during suspension');
    assert.equal(second.localPort, first.localPort, 'the second request rides the same TLS connection');
    assertRefused(second, 'contract-suspended');
    assertRefused(await requestVia(agent, gw, 'GET', '/files/before.txt'), 'contract-suspended');
    assertRefused(await dav(gw, { method: 'GET', path: '/files/before.txt', user }), 'contract-suspended');
    assert.deepEqual(await filesIn(gw.filesDir(user)), ['before.txt']);
    await gw.policy.contracts.set(user.name, { status: 'active' });
    const third = await requestVia(agent, gw, 'GET', '/files/before.txt');
    assert.equal(third.localPort, first.localPort);
    assert.equal(third.status, 200);
    assert.equal(third.text, 'before suspension');
  });

  it('refuses the third new TLS connection of the day with access-limit-reached while an open connection keeps working', async () => {
    const user = await gw.addUser('limited', { sessionsPerDay: 2 });
    const agent = keepAliveAgent(gw, user);
    agents.push(agent);
    const opened = await requestVia(agent, gw, 'PROPFIND', '/files/', depth0);
    assert.equal(opened.status, 207);
    assert.equal((await dav(gw, { method: 'PROPFIND', path: '/files/', user, headers: depth0 })).status, 207);
    assertRefused(await dav(gw, { method: 'PROPFIND', path: '/files/', user, headers: depth0 }), 'access-limit-reached');
    assertRefused(await dav(gw, { method: 'PUT', path: '/files/third.txt', user, as: 'password', body: 'no' }), 'access-limit-reached');
    assert.deepEqual(await filesIn(gw.filesDir(user)), []);
    const put = await requestVia(agent, gw, 'PUT', '/files/on-open-connection.txt', {}, 'still allowed');
    assert.equal(put.localPort, opened.localPort);
    assert.equal(put.status, 201);
    const get = await requestVia(agent, gw, 'GET', '/files/on-open-connection.txt');
    assert.equal(get.status, 200);
    assert.equal(get.text, 'still allowed');
    assert.deepEqual(await filesIn(gw.filesDir(user)), ['on-open-connection.txt']);
  });

  it("counts sessions per user: another user is not limited by the first one's allowance", async () => {
    const user = await gw.addUser('roomy', { sessionsPerDay: 1 });
    const other = await gw.addUser('neighbour', { sessionsPerDay: 1 });
    assert.equal((await dav(gw, { method: 'PROPFIND', path: '/files/', user, headers: depth0 })).status, 207);
    assertRefused(await dav(gw, { method: 'PROPFIND', path: '/files/', user, headers: depth0 }), 'access-limit-reached');
    assert.equal((await dav(gw, { method: 'PROPFIND', path: '/files/', user: other, headers: depth0 })).status, 207);
  });
});
