import assert from 'node:assert/strict';
import { describe, it, before, after, afterEach } from 'node:test';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { dav, startTestGateway, type DavRequest, type DavResponse, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { startIsolatedGateway, type IsolatedGateway } from '../helpers/isolated-gateway.js';
import { rawConnect, rawRequest, requestHead, sendChunked, waitFor } from '../helpers/raw-tls.js';
import { foundProps, propText } from '../helpers/robustness-xml.js';

const MiB = 1024 * 1024;
const PROPFIND_ALL = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';

let gw: TestGateway;
let user: TestUser;

const call = (req: Omit<DavRequest, 'user'>): Promise<DavResponse> => dav(gw, { user, ...req });
const put = (path: string, body: string | Buffer, headers: Record<string, string> = {}) => call({ method: 'PUT', path, body, headers });
const propfind = (path: string, body?: string, headers: Record<string, string> = { Depth: '0' }) =>
  call({ method: 'PROPFIND', path, body, headers: { 'Content-Type': 'application/xml', ...headers } });
const onDisk = (name: string) => join(gw.filesDir(user), name);
const tmpDir = () => areaLayout(gw.policy.layout, user.id).tmp;
const isThere = () => true;
const notThere = () => false;
const exists = (path: string): Promise<boolean> => stat(path).then(isThere, notThere);

async function assertStillServes(): Promise<void> {
  const res = await propfind('/files/');
  assert.equal(res.status, 207, 'the gateway still answers PROPFIND Depth 0 after the hostile request');
}

describe('robustness: hostile and unusual requests', () => {
  before(async () => {
    gw = await startTestGateway();
    user = await gw.addUser('robin');
  });
  after(async () => {
    await gw.close();
  });
  afterEach(assertStillServes);

  it('answers 400 to a path with a broken percent escape (GET /%ZZ)', async () => {
    const res = await call({ method: 'GET', path: '/%ZZ' });
    assert.equal(res.status, 400);
  });

  it('applies a PROPPATCH with two <D:set> elements and stores both properties', async () => {
    assert.equal((await put('/files/two-sets.txt', 'x')).status, 201);
    const body =
      '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:kura:test">' +
      '<D:set><D:prop><Z:first>one</Z:first></D:prop></D:set>' +
      '<D:set><D:prop><Z:second>two</Z:second></D:prop></D:set></D:propertyupdate>';
    const res = await call({ method: 'PROPPATCH', path: '/files/two-sets.txt', body, headers: { 'Content-Type': 'application/xml' } });
    assert.equal(res.status, 207);
    const props = foundProps((await propfind('/files/two-sets.txt', PROPFIND_ALL)).text, '/files/two-sets.txt');
    assert.equal(propText(props, 'urn:kura:test', 'first'), 'one');
    assert.equal(propText(props, 'urn:kura:test', 'second'), 'two');
  });

  it('refuses with 412 a PUT whose If header asks for a lock nobody holds (<DAV:no-lock>)', async () => {
    assert.equal((await put('/files/no-lock.txt', 'original')).status, 201);
    const res = await put('/files/no-lock.txt', 'changed', { If: '(<DAV:no-lock>)' });
    assert.equal(res.status, 412);
    assert.equal(await readFile(onDisk('no-lock.txt'), 'utf8'), 'original');
  });

  for (const corrupt of ['(<foo', 'garbage', '(<urn:a> [etag', '<http://x/a>']) {
    it(`answers 400 to a corrupt If header (${corrupt}) and changes nothing`, async () => {
      const res = await put('/files/corrupt-if.txt', 'data', { If: corrupt });
      assert.equal(res.status, 400);
      assert.equal(await exists(onDisk('corrupt-if.txt')), false);
    });
  }

  it('refuses a 9999999999-byte PUT with 507 from the headers alone, without buffering or creating anything', async () => {
    const usedBefore = await gw.policy.usage.get(user.name);
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const conn = await rawConnect(gw, user);
    try {
      await conn.write(requestHead(gw, 'PUT', '/files/huge.bin', { 'Content-Length': 9999999999 }));
      const res = await conn.nextResponse(5000);
      assert.equal(res.status, 507);
      assert.match(res.body, /^quota-exceeded/);
    } finally {
      conn.destroy();
    }
    assert.ok(Date.now() - started < 2000, 'the refusal comes at once');
    assert.ok(process.memoryUsage().rss - rssBefore < 50 * MiB, 'memory stays flat');
    assert.equal(await exists(onDisk('huge.bin')), false);
    assert.deepEqual(await readdir(tmpDir()), []);
    assert.equal(await gw.policy.usage.get(user.name), usedBefore);
  });

  it('keeps the old version intact when a client vanishes in the middle of replacing a file', async () => {
    const v1 = Buffer.from('version one of the file\n');
    assert.equal((await put('/files/interrupted.bin', v1)).status, 201);
    const usedBefore = await gw.policy.usage.get(user.name);
    const conn = await rawConnect(gw, user);
    try {
      await conn.write(requestHead(gw, 'PUT', '/files/interrupted.bin', { 'Content-Length': 10 * MiB }));
      await conn.write(Buffer.alloc(MiB, 7));
      assert.ok(await waitFor(async () => (await readdir(tmpDir())).length === 1), 'the upload is under way in a temp file');
      const reserved = 10 * MiB - v1.length;
      assert.equal(await gw.policy.usage.get(user.name), usedBefore + reserved, 'the declared length less the replaced file is reserved');
    } finally {
      conn.destroy();
    }
    await conn.closed;
    await sleep(200);
    assert.deepEqual(await readFile(onDisk('interrupted.bin')), v1);
    assert.deepEqual(await readdir(tmpDir()), [], 'no temp file is left behind');
    assert.equal(await gw.policy.usage.get(user.name), usedBefore, 'the usage counter is back to what v1 takes');
  });

  it('refuses PROPFIND without a Depth header with 403 propfind-finite-depth', async () => {
    const res = await call({ method: 'PROPFIND', path: '/files/' });
    assert.equal(res.status, 403);
    assert.match(res.text, /propfind-finite-depth/);
  });

  it('refuses PROPFIND with Depth: infinity with 403 propfind-finite-depth', async () => {
    const res = await propfind('/files/', PROPFIND_ALL, { Depth: 'infinity' });
    assert.equal(res.status, 403);
    assert.match(res.text, /propfind-finite-depth/);
  });

  it('answers 400 to a PROPFIND whose body is not well-formed XML', async () => {
    const res = await propfind('/files/', '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag></D:propfind>');
    assert.equal(res.status, 400);
  });

  it('keeps the namespace of a dead property (PROPPATCH then PROPFIND)', async () => {
    assert.equal((await put('/files/ns.txt', 'x')).status, 201);
    const body =
      '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>' +
      '<x:foo xmlns:x="http://example.com/ns">bar</x:foo></D:prop></D:set></D:propertyupdate>';
    assert.equal((await call({ method: 'PROPPATCH', path: '/files/ns.txt', body })).status, 207);
    const ask = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><y:foo xmlns:y="http://example.com/ns"/></D:prop></D:propfind>';
    const res = await propfind('/files/ns.txt', ask);
    assert.equal(res.status, 207);
    const props = foundProps(res.text, '/files/ns.txt');
    assert.equal(propText(props, 'http://example.com/ns', 'foo'), 'bar');
    assert.equal(props.filter((p) => p.local === 'foo' && p.ns !== 'http://example.com/ns').length, 0);
  });

  it('refuses a COPY with Overwrite: F onto an existing file with 412 and leaves the destination alone', async () => {
    assert.equal((await put('/files/copy-src.txt', 'source')).status, 201);
    assert.equal((await put('/files/copy-dst.txt', 'destination')).status, 201);
    const headers = { Destination: '/files/copy-dst.txt', Overwrite: 'F' };
    const res = await call({ method: 'COPY', path: '/files/copy-src.txt', headers });
    assert.equal(res.status, 412);
    assert.equal(await readFile(onDisk('copy-dst.txt'), 'utf8'), 'destination');
  });

  it('gives GET and HEAD an ETag and Last-Modified, and answers 304 to If-None-Match with that ETag', async () => {
    assert.equal((await put('/files/cond.txt', 'conditional')).status, 201);
    const got = await call({ method: 'GET', path: '/files/cond.txt' });
    const head = await call({ method: 'HEAD', path: '/files/cond.txt' });
    assert.equal(got.status, 200);
    assert.equal(got.text, 'conditional');
    assert.equal(head.status, 200);
    const etag = got.headers.etag;
    assert.ok(typeof etag === 'string' && etag.length > 2);
    assert.equal(head.headers.etag, etag);
    assert.ok(!Number.isNaN(Date.parse(String(got.headers['last-modified']))));
    assert.equal(head.headers['last-modified'], got.headers['last-modified']);
    const again = await call({ method: 'GET', path: '/files/cond.txt', headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
  });

  it('serves a byte range with 206 and Content-Range: bytes 0-9/SIZE', async () => {
    const content = 'abcdefghijklmnopqrstuvwxyz';
    assert.equal((await put('/files/range.txt', content)).status, 201);
    const res = await call({ method: 'GET', path: '/files/range.txt', headers: { Range: 'bytes=0-9' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], `bytes 0-9/${content.length}`);
    assert.equal(res.text, 'abcdefghij');
  });

  it('answers 416 with Content-Range: bytes */SIZE to a range that starts past the end', async () => {
    const content = 'abcdefghijklmnopqrstuvwxyz';
    assert.equal((await put('/files/range-end.txt', content)).status, 201);
    const res = await call({ method: 'GET', path: '/files/range-end.txt', headers: { Range: `bytes=${content.length}-` } });
    assert.equal(res.status, 416);
    assert.equal(res.headers['content-range'], `bytes */${content.length}`);
  });

  it('announces DAV classes 1 and 2 and MS-Author-Via: DAV in OPTIONS', async () => {
    const res = await call({ method: 'OPTIONS', path: '/files/' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.dav, '1, 2');
    assert.equal(res.headers['ms-author-via'], 'DAV');
  });

  it('refuses a billion-laughs body with 400 in well under a second', async () => {
    const entities = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) entities.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    const body = `<?xml version="1.0"?><!DOCTYPE lolz [${entities.join('')}]><D:propfind xmlns:D="DAV:"><D:prop>&lol9;</D:prop></D:propfind>`;
    const started = Date.now();
    const res = await propfind('/files/', body);
    assert.equal(res.status, 400);
    assert.ok(Date.now() - started < 1000, 'answered quickly');
  });

  it('refuses an external entity (XXE to file:///etc/passwd) with 400 and never shows the file', async () => {
    const body =
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
      '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:leak xmlns:Z="urn:z">&xxe;</Z:leak></D:prop></D:set></D:propertyupdate>';
    assert.equal((await put('/files/xxe.txt', 'x')).status, 201);
    const res = await call({ method: 'PROPPATCH', path: '/files/xxe.txt', body });
    assert.equal(res.status, 400);
    const passwd = await readFile('/etc/passwd', 'utf8');
    const firstLine = passwd.split('\n')[0] ?? '';
    assert.ok(!res.text.includes(firstLine) && !res.text.includes('root:'), 'the response never carries /etc/passwd');
    const later = await propfind('/files/xxe.txt', PROPFIND_ALL);
    assert.ok(!later.text.includes('root:'), 'nothing of /etc/passwd was stored as a property');
  });

  it('refuses a 2 MiB PROPFIND body with 413 (or 400)', async () => {
    const filler = `<!--${'x'.repeat(2 * MiB)}-->`;
    const body = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/>${filler}</D:propfind>`;
    const res = await propfind('/files/', body);
    assert.ok(res.status === 413 || res.status === 400, `status ${res.status}`);
  });

  it('refuses a 2 MiB chunked PROPFIND body with 413 (or 400) once the limit is crossed', async () => {
    const body = Buffer.from(`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/><!--${'x'.repeat(2 * MiB)}--></D:propfind>`);
    const conn = await rawConnect(gw, user);
    try {
      await conn.write(requestHead(gw, 'PROPFIND', '/files/', { 'Transfer-Encoding': 'chunked', Depth: '0' }));
      const response = conn.nextResponse(10_000);
      await sendChunked(conn, body);
      const res = await response;
      assert.ok(res.status === 413 || res.status === 400, `status ${res.status}`);
    } finally {
      conn.destroy();
    }
  });

  it('refuses a PUT without the lock token on a locked file with 423, and accepts it with the token', async () => {
    assert.equal((await put('/files/locked.txt', 'before')).status, 201);
    const lockBody =
      '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>' +
      '<D:locktype><D:write/></D:locktype><D:owner>robin</D:owner></D:lockinfo>';
    const locked = await call({ method: 'LOCK', path: '/files/locked.txt', body: lockBody, headers: { Depth: '0', Timeout: 'Second-60' } });
    assert.equal(locked.status, 200);
    const token = /<([^>]+)>/.exec(String(locked.headers['lock-token']))?.[1];
    assert.ok(token, 'LOCK returns a Lock-Token');
    assert.equal((await put('/files/locked.txt', 'intruder')).status, 423);
    assert.equal(await readFile(onDisk('locked.txt'), 'utf8'), 'before');
    assert.equal((await put('/files/locked.txt', 'owner', { If: `(<${token}>)` })).status, 204);
    assert.equal((await call({ method: 'UNLOCK', path: '/files/locked.txt', headers: { 'Lock-Token': `<${token}>` } })).status, 204);
  });

  it('answers 405 with an Allow header to a method the gateway does not implement (PATCH)', async () => {
    const res = await call({ method: 'PATCH', path: '/files/', body: 'x' });
    assert.equal(res.status, 405);
    assert.match(String(res.headers.allow), /PROPFIND/);
  });

  it('answers 405 with an Allow header to an unknown method (BREW)', async () => {
    const res = await call({ method: 'BREW', path: '/files/' });
    assert.equal(res.status, 405);
    assert.match(String(res.headers.allow), /PROPFIND/);
  });
});

/**
 * Deeply nested XML goes to a gateway in a worker thread: if parsing it blocked the gateway's event
 * loop, this test still sees the timeout instead of the whole runner freezing with it.
 */
describe('robustness: deeply nested XML', () => {
  let isolated: IsolatedGateway;
  before(async () => {
    isolated = await startIsolatedGateway();
  });
  after(async () => {
    await isolated.close();
  });

  it('refuses 100,000 nested elements with 400 quickly and keeps serving', async () => {
    const depth = 100_000;
    const body = `<D:propfind xmlns:D="DAV:"><D:prop>${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}</D:prop></D:propfind>`;
    const started = Date.now();
    const headers = { Depth: '0', 'Content-Type': 'application/xml' };
    const res = await rawRequest(isolated, isolated.user, { method: 'PROPFIND', path: '/files/', headers }, body, 3000);
    assert.equal(res.status, 400);
    assert.ok(Date.now() - started < 2000, 'answered quickly');
    const followUp = await rawRequest(isolated, isolated.user, { method: 'PROPFIND', path: '/files/', headers: { Depth: '0' } }, '', 3000);
    assert.equal(followUp.status, 207);
  });
});
