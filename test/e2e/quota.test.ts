import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { usageReport } from '../../gateway/policy/recount.js';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { dav, startTestGateway, type DavResponse, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { rawConnect, requestHead, sendChunked, waitFor, type RawResponse } from '../helpers/raw-tls.js';
import { foundProps, propText } from '../helpers/robustness-xml.js';

const KiB = 1024;
const QUOTA = 1024 * KiB;

let gw: TestGateway;
let users = 0;

/** A fresh user with a 1 MiB quota, so every test starts from an empty area and a zero counter. */
const quotaUser = () => gw.addUser(`quota${++users}`, { quotaBytes: QUOTA });
const used = (user: TestUser) => gw.policy.usage.get(user.name);
const tmpOf = (user: TestUser) => areaLayout(gw.policy.layout, user.id).tmp;
const put = (user: TestUser, path: string, body: Buffer): Promise<DavResponse> => dav(gw, { user, method: 'PUT', path, body });

/** Bytes of every regular file under dir (0 when it does not exist; files vanishing meanwhile count 0). */
async function bytesUnder(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let total = 0;
  for (const name of names) {
    const st = await lstat(join(dir, name)).catch(() => null);
    if (st?.isDirectory()) total += await bytesUnder(join(dir, name));
    else if (st?.isFile()) total += st.size;
  }
  return total;
}

async function assertNoLeftovers(user: TestUser): Promise<void> {
  assert.deepEqual(await readdir(tmpOf(user)), [], 'no temp file is left in the area');
}

/** A chunked PUT on its own connection: the final response, or null when the server hung up without one. */
async function chunkedPut(user: TestUser, path: string, data: Buffer, chunkSize = 32 * KiB): Promise<RawResponse | null> {
  const conn = await rawConnect(gw, user);
  try {
    await conn.write(requestHead(gw, 'PUT', path, { 'Transfer-Encoding': 'chunked' }));
    const response = conn.nextResponse(15_000).catch(() => null);
    await sendChunked(conn, data, chunkSize);
    return await response;
  } finally {
    conn.destroy();
  }
}

describe('quota: uploads against a 1 MiB quota', () => {
  before(async () => {
    gw = await startTestGateway();
  });
  after(async () => {
    await gw.close();
  });

  it('refuses a Content-Length over what is left with 507 before the body is read (no 100 Continue)', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/first.bin', Buffer.alloc(700 * KiB, 1))).status, 201);
    const conn = await rawConnect(gw, user);
    try {
      await conn.write(requestHead(gw, 'PUT', '/files/second.bin', { 'Content-Length': 400 * KiB, Expect: '100-continue' }));
      const res = await conn.nextResponse(5000);
      assert.equal(res.status, 507);
      assert.match(res.body, /^quota-exceeded/);
      assert.deepEqual(conn.interim, [], 'the server never asked for the body');
    } finally {
      conn.destroy();
    }
    await sleep(50);
    assert.deepEqual(await readdir(gw.filesDir(user)), ['first.bin']);
    assert.equal(await used(user), 700 * KiB);
    await assertNoLeftovers(user);
  });

  it('stops a chunked body at the quota with 507, removes the partial file and leaves the counter unchanged', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/kept.bin', Buffer.alloc(100 * KiB, 1))).status, 201);
    const res = await chunkedPut(user, '/files/too-big.bin', Buffer.alloc(QUOTA, 2));
    await sleep(100);
    assert.deepEqual(await readdir(gw.filesDir(user)), ['kept.bin']);
    assert.equal(await used(user), 100 * KiB);
    await assertNoLeftovers(user);
    assert.ok(res, 'a response arrives before the connection closes');
    assert.equal(res.status, 507, res.body);
    assert.match(res.body, /^quota-exceeded/);
  });

  it('lets at most two of three parallel 400 KiB chunked uploads win, and the counter matches the disk', async () => {
    const user = await quotaUser();
    let peakOnDisk = 0;
    let racing = true;
    const sampler = (async () => {
      while (racing) {
        peakOnDisk = Math.max(peakOnDisk, (await bytesUnder(gw.filesDir(user))) + (await bytesUnder(tmpOf(user))));
        await sleep(5);
      }
    })();
    const names = ['a.bin', 'b.bin', 'c.bin'];
    const results = await Promise.all(names.map((n, i) => chunkedPut(user, `/files/${n}`, Buffer.alloc(400 * KiB, i + 1), 16 * KiB)));
    racing = false;
    await sampler;
    await sleep(100);
    const onDisk = await readdir(gw.filesDir(user));
    assert.ok(onDisk.length >= 1 && onDisk.length <= 2, `files on disk: ${onDisk.join(', ')}`);
    for (const name of onDisk) assert.equal((await lstat(join(gw.filesDir(user), name))).size, 400 * KiB);
    assert.equal(await used(user), await bytesUnder(gw.filesDir(user)));
    assert.ok(peakOnDisk <= QUOTA, `at most the quota was ever on disk (peak ${peakOnDisk})`);
    const statuses = results.map((r) => r?.status ?? 0);
    assert.equal(statuses.filter((s) => s === 201).length, onDisk.length, `statuses ${statuses.join(', ')}`);
    const expected = statuses.every((s) => s === 201 || s === 507);
    assert.ok(expected, `every upload gets 201 or 507: ${statuses.join(', ')}`);
    await assertNoLeftovers(user);
  });

  it('counts only the new size when a file is overwritten', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/doc.bin', Buffer.alloc(300 * KiB, 1))).status, 201);
    assert.equal((await put(user, '/files/doc.bin', Buffer.alloc(200 * KiB, 2))).status, 204);
    assert.equal(await used(user), 200 * KiB);
    assert.equal((await put(user, '/files/doc.bin', Buffer.alloc(500 * KiB, 3))).status, 204);
    assert.equal(await used(user), 500 * KiB);
    await assertNoLeftovers(user);
  });

  it('accepts a new version that fits once the old one it replaces is gone', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/big.bin', Buffer.alloc(600 * KiB, 1))).status, 201);
    const res = await put(user, '/files/big.bin', Buffer.alloc(700 * KiB, 2));
    assert.equal(res.status, 204, `replacing 600 KiB by 700 KiB under a 1 MiB quota: ${res.status} ${res.text}`);
    assert.equal(await used(user), 700 * KiB);
    assert.equal((await lstat(join(gw.filesDir(user), 'big.bin'))).size, 700 * KiB);
  });

  it('gives the space back on DELETE', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/one.bin', Buffer.alloc(600 * KiB, 1))).status, 201);
    assert.equal((await put(user, '/files/two.bin', Buffer.alloc(600 * KiB, 2))).status, 507);
    assert.equal((await dav(gw, { user, method: 'DELETE', path: '/files/one.bin' })).status, 204);
    assert.equal(await used(user), 0);
    assert.equal((await put(user, '/files/two.bin', Buffer.alloc(600 * KiB, 2))).status, 201);
    assert.equal(await used(user), 600 * KiB);
  });

  it('refuses a collection COPY that does not fit with 507 and copies nothing', async () => {
    const user = await quotaUser();
    assert.equal((await dav(gw, { user, method: 'MKCOL', path: '/files/dir/' })).status, 201);
    assert.equal((await put(user, '/files/dir/x.bin', Buffer.alloc(300 * KiB, 1))).status, 201);
    assert.equal((await put(user, '/files/dir/y.bin', Buffer.alloc(300 * KiB, 2))).status, 201);
    const res = await dav(gw, { user, method: 'COPY', path: '/files/dir/', headers: { Destination: '/files/copy/' } });
    assert.equal(res.status, 507);
    assert.match(res.text, /^quota-exceeded/);
    assert.deepEqual(await readdir(gw.filesDir(user)), ['dir']);
    assert.equal(await used(user), 600 * KiB);
    await assertNoLeftovers(user);
  });

  it('leaves the destination in place when a COPY over it does not fit (507)', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/big.bin', Buffer.alloc(600 * KiB, 1))).status, 201);
    assert.equal((await put(user, '/files/small.bin', Buffer.alloc(100 * KiB, 2))).status, 201);
    const res = await dav(gw, { user, method: 'COPY', path: '/files/big.bin', headers: { Destination: '/files/small.bin' } });
    assert.equal(res.status, 507);
    const kept = await dav(gw, { user, method: 'GET', path: '/files/small.bin' });
    assert.ok(kept.body.equals(Buffer.alloc(100 * KiB, 2)), 'the file the COPY would have replaced is intact');
    assert.equal(await used(user), 700 * KiB);
    await assertNoLeftovers(user);
  });

  it('reports quota-used-bytes and quota-available-bytes (RFC 4331) consistent with the counter', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/q.bin', Buffer.alloc(250 * KiB, 1))).status, 201);
    const body =
      '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>';
    const res = await dav(gw, { user, method: 'PROPFIND', path: '/files/', body, headers: { Depth: '0' } });
    assert.equal(res.status, 207);
    const props = foundProps(res.text, '/files/');
    const counter = await used(user);
    assert.equal(counter, 250 * KiB);
    assert.equal(Number(propText(props, 'DAV:', 'quota-used-bytes')), counter);
    assert.equal(Number(propText(props, 'DAV:', 'quota-available-bytes')), QUOTA - counter);
  });

  it('leaves no partial file and no drift when a client vanishes mid chunked upload', async () => {
    const user = await quotaUser();
    assert.equal((await put(user, '/files/base.bin', Buffer.alloc(100 * KiB, 1))).status, 201);
    const conn = await rawConnect(gw, user);
    try {
      await conn.write(requestHead(gw, 'PUT', '/files/vanishing.bin', { 'Transfer-Encoding': 'chunked' }));
      assert.ok(await sendChunked(conn, Buffer.alloc(300 * KiB, 2), 32 * KiB, false));
      assert.ok(await waitFor(async () => (await used(user)) === 400 * KiB), 'the server has reserved every byte sent so far');
    } finally {
      conn.destroy();
    }
    await conn.closed;
    await sleep(200);
    assert.deepEqual(await readdir(gw.filesDir(user)), ['base.bin']);
    assert.equal(await used(user), 100 * KiB);
    await assertNoLeftovers(user);
  });

  it('finds no drift between the counters and the disk after all of the above (usageReport recount)', async () => {
    const lines = await usageReport(gw.policy, true);
    const mine = lines.filter((l) => l.user.startsWith('quota'));
    assert.equal(mine.length, users);
    for (const line of mine) assert.equal(line.drift, 0, `drift for ${line.user}: ${JSON.stringify(line)}`);
  });
});
