import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dav } from '../helpers/gateway.js';
import { browseFixture, hrefsOf, MANY_ENTRIES, type BrowseFixture } from '../helpers/browse.js';
import { run } from '../helpers/processes.js';

const READ_ONLY = 'read-only: snapshots are read-only';

describe('/snapshots/ on the gateway (plaintext repository)', () => {
  let f: BrowseFixture;
  const get = (path: string, headers: Record<string, string> = {}) => dav(f.gw, { method: 'GET', path, user: f.user, headers });
  const propfind = (path: string, depth = '1', body?: string) =>
    dav(f.gw, { method: 'PROPFIND', path, user: f.user, headers: { Depth: depth }, body });

  before(async () => {
    f = await browseFixture('browser');
  });
  after(async () => {
    await f?.close();
  });

  it('lists hosts, then snapshots named by their time, then the backed-up folder', async () => {
    assert.deepEqual(hrefsOf((await propfind('/snapshots/')).text), ['/snapshots/', `/snapshots/${f.env.KURA_HOST}/`]);
    assert.match(f.snapshotPath, /^\/snapshots\/pc1\/\d{8}T\d{6}Z\/$/);
    assert.deepEqual(hrefsOf((await propfind(f.snapshotPath)).text), [f.snapshotPath, `${f.snapshotPath}data/`]);
  });

  it('shows names, sizes, types and ETags from the trees, the same as the source folder', async () => {
    const res = await propfind(`${f.snapshotPath}data/docs/d0_0/`);
    assert.equal(res.status, 207);
    const names = (await readdir(join(f.src, 'docs/d0_0'))).sort();
    const responses = res.text.split('<D:response>').slice(2);
    assert.equal(responses.length, names.length);
    for (const r of responses) {
      const name = decodeURIComponent(/<D:href>[^<]*\/([^/<]+)\/?<\/D:href>/.exec(r)![1]!);
      assert.ok(names.includes(name), `${name} is in the source`);
      if (r.includes('<D:collection/>')) continue;
      const size = (await readFile(join(f.src, 'docs/d0_0', name))).length;
      assert.match(r, new RegExp(`<D:getcontentlength>${size}</D:getcontentlength>`));
      assert.match(r, /<D:getetag>"[0-9a-f]{32}"<\/D:getetag>/);
      assert.match(r, /<D:getcontenttype>[^<]+<\/D:getcontenttype>/);
    }
  });

  it(`answers Depth 1 on a ${MANY_ENTRIES}-entry folder well under a second`, async () => {
    await propfind(`${f.snapshotPath}data/many/`); // the first read decodes and caches the tree
    const started = performance.now();
    const res = await propfind(`${f.snapshotPath}data/many/`);
    const ms = performance.now() - started;
    console.log(`PROPFIND Depth 1 on ${MANY_ENTRIES} entries: ${ms.toFixed(0)} ms, ${res.body.length} bytes`);
    assert.equal(hrefsOf(res.text).length, MANY_ENTRIES + 1);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });

  it('GETs every file of a folder byte for byte, and NFD names reach the same file as NFC', async () => {
    const entries = await readdir(join(f.src, 'docs/d0_1'), { withFileTypes: true });
    for (const name of entries.filter((e) => e.isFile()).map((e) => e.name)) {
      const res = await get(`${f.snapshotPath}data/docs/d0_1/${encodeURIComponent(name)}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(await readFile(join(f.src, 'docs/d0_1', name))), name);
    }
    for (const form of ['NFC', 'NFD'] as const) {
      const res = await get(`${f.snapshotPath}data/${encodeURIComponent('Café NFD ñ.txt'.normalize(form))}`);
      assert.equal(res.status, 200, form);
      assert.equal(res.text, 'decomposed name\n');
    }
  });

  it('serves random byte ranges of a large file exactly as the source has them', async () => {
    const source = await readFile(join(f.src, 'media/large_0.bin'));
    const path = `${f.snapshotPath}data/media/large_0.bin`;
    for (let i = 0; i < 25; i++) {
      const start = randomInt(source.length);
      const end = Math.min(source.length - 1, start + randomInt(3 << 20));
      const res = await get(path, { Range: `bytes=${start}-${end}` });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${source.length}`);
      assert.ok(res.body.equals(source.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
    const suffix = await get(path, { Range: 'bytes=-1000' });
    assert.ok(suffix.body.equals(source.subarray(source.length - 1000)));
    const beyond = await get(path, { Range: `bytes=${source.length}-` });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${source.length}`);
    const whole = await get(path);
    assert.ok(whole.body.equals(source));
  });

  it('answers conditional requests from the ETag and the time', async () => {
    const path = `${f.snapshotPath}data/media/large_1.bin`;
    const head = await dav(f.gw, { method: 'HEAD', path, user: f.user });
    const etag = String(head.headers.etag);
    assert.equal(head.headers['content-length'], String(8 << 20));
    assert.equal((await get(path, { 'If-None-Match': etag })).status, 304);
    assert.equal((await get(path, { 'If-Modified-Since': String(head.headers['last-modified']) })).status, 304);
    assert.equal((await get(path, { 'If-Match': '"other"' })).status, 412);
    const stale = await get(path, { Range: 'bytes=0-9', 'If-Range': '"other"' });
    assert.equal(stale.status, 200, 'a stale If-Range gets the whole file');
    assert.equal((await get(path, { Range: 'bytes=0-9', 'If-Range': etag })).status, 206);
  });

  it('refuses every write into /snapshots/ with 403 "snapshots are read-only"', async () => {
    const file = `${f.snapshotPath}data/media/large_1.bin`;
    const put = await dav(f.gw, { method: 'PUT', path: `${f.snapshotPath}data/new.txt`, user: f.user, body: 'x' });
    await dav(f.gw, { method: 'PUT', path: '/files/note.txt', user: f.user, body: 'note' });
    const attempts = [
      put,
      await dav(f.gw, { method: 'PUT', path: file, user: f.user, body: 'x' }),
      await dav(f.gw, { method: 'DELETE', path: file, user: f.user }),
      await dav(f.gw, { method: 'DELETE', path: f.snapshotPath, user: f.user }),
      await dav(f.gw, { method: 'MKCOL', path: `${f.snapshotPath}data/newdir/`, user: f.user }),
      await dav(f.gw, { method: 'MOVE', path: file, user: f.user, headers: { Destination: '/files/moved.bin' } }),
      await dav(f.gw, {
        method: 'COPY',
        path: '/files/note.txt',
        user: f.user,
        headers: { Destination: `${f.snapshotPath}data/note.txt` },
      }),
      await dav(f.gw, {
        method: 'MOVE',
        path: '/files/note.txt',
        user: f.user,
        headers: { Destination: `${f.snapshotPath}data/note.txt` },
      }),
      await dav(f.gw, {
        method: 'PROPPATCH',
        path: file,
        user: f.user,
        body: '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>',
      }),
      await dav(f.gw, {
        method: 'LOCK',
        path: file,
        user: f.user,
        body: '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>',
      }),
    ];
    for (const res of attempts) {
      assert.equal(res.status, 403, res.text);
      assert.equal(res.text.trim(), READ_ONLY);
    }
    assert.equal((await get(`${f.snapshotPath}data/new.txt`)).status, 404, 'nothing was written');
    assert.equal((await get('/files/note.txt')).text, 'note', 'the MOVE left the source alone');
  });

  it('copies a folder out of a snapshot into /files/ on the server, byte for byte and counted in the quota', async () => {
    const before = await f.gw.policy.usage.get(f.user.name);
    const res = await dav(f.gw, {
      method: 'COPY',
      path: `${f.snapshotPath}data/docs/`,
      user: f.user,
      headers: { Destination: '/files/restored-docs/' },
    });
    assert.equal(res.status, 201, res.text);
    const diff = await run('diff', ['-r', join(f.src, 'docs'), join(f.gw.filesDir(f.user), 'restored-docs')]);
    assert.equal(diff.code, 0, diff.stdout);
    const files = await readdir(join(f.src, 'docs'), { recursive: true, withFileTypes: true });
    const bytes = (await Promise.all(files.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name))))).reduce(
      (n, b) => n + b.length,
      0,
    );
    assert.ok(bytes > 0);
    assert.equal(await f.gw.policy.usage.get(f.user.name), before + bytes);
  });

  it('refuses a COPY out that does not fit the quota with 507, leaving nothing behind', async () => {
    await f.gw.policy.contracts.set(f.user.name, { quotaBytes: (await f.gw.policy.usage.get(f.user.name)) + (4 << 20) });
    const before = await f.gw.policy.usage.get(f.user.name);
    const res = await dav(f.gw, {
      method: 'COPY',
      path: `${f.snapshotPath}data/media/`,
      user: f.user,
      headers: { Destination: '/files/media/' },
    });
    assert.equal(res.status, 507, res.text);
    assert.equal((await get('/files/media/')).status, 404);
    assert.equal(await f.gw.policy.usage.get(f.user.name), before);
    const over = await dav(f.gw, {
      method: 'COPY',
      path: `${f.snapshotPath}data/media/`,
      user: f.user,
      headers: { Destination: '/files/note.txt' },
    });
    assert.equal(over.status, 507, 'replacing a small file does not make room');
    assert.equal((await get('/files/note.txt')).text, 'note', 'the destination a refused COPY would replace is left in place');
    assert.equal(await f.gw.policy.usage.get(f.user.name), before);
    await f.gw.policy.contracts.set(f.user.name, { quotaBytes: 1024 ** 3 });
  });

  it('passes `rclone check` of the snapshot folder against the dataset', async () => {
    await writeFile(join(f.work, 'rclone.conf'), '');
    await writeFile(join(f.work, 'ca.pem'), f.gw.caPem);
    const flags = ['--webdav-url', `${f.gw.url}${f.snapshotPath.slice(1)}data/`, '--webdav-vendor', 'other'];
    const auth = ['--ca-cert', join(f.work, 'ca.pem'), '--client-cert', f.env.KURA_CERT!, '--client-key', f.env.KURA_KEY!];
    const res = await run('rclone', ['check', f.src, ':webdav:', '--download', '--exclude', 'many/**', ...flags, ...auth], {
      env: { ...process.env, RCLONE_CONFIG: join(f.work, 'rclone.conf') },
      timeoutMs: 120_000,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /0 differences found/);
  });
});

describe('/snapshots/ on the gateway (encrypted repository)', () => {
  let f: BrowseFixture;
  before(async () => {
    f = await browseFixture('sealed', { encrypted: true, many: false });
  });
  after(async () => {
    await f?.close();
  });

  it('lists hosts and times, and each snapshot folder holds one file explaining `kura mount`', async () => {
    const res = await dav(f.gw, { method: 'PROPFIND', path: f.snapshotPath, user: f.user, headers: { Depth: '1' } });
    assert.deepEqual(hrefsOf(res.text), [f.snapshotPath, `${f.snapshotPath}HOW-TO-BROWSE.txt`]);
    const text = await dav(f.gw, { method: 'GET', path: `${f.snapshotPath}HOW-TO-BROWSE.txt`, user: f.user });
    assert.equal(text.status, 200);
    assert.match(text.text, /kura mount/);
    assert.equal((await dav(f.gw, { method: 'GET', path: `${f.snapshotPath}data/`, user: f.user })).status, 404);
  });
});
