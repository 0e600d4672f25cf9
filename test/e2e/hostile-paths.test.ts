import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { dav, startTestGateway, type DavResponse, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { isMetaFile, snapshotTree, treeChanges, type TreeSnapshot } from '../helpers/hostile.js';

const SECRET = 'top secret, outside every area\n';
const depth0 = { Depth: '0' };
const depth1 = { Depth: '1' };
const LOCK_BODY = '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
const PROPPATCH_BODY =
  '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop><Z:p>v</Z:p></D:prop></D:set></D:propertyupdate>';

const TRAVERSALS = [
  '/files/../x',
  '/files/%2e%2e/x',
  '/files/%2E%2E%2Fetc',
  '/files/a%2fb',
  '/files/a%5cb',
  '/files/%c0%ae%c0%ae/x',
  '/files/%ZZ',
  '/files/x%00y',
  '/files/..%2f..%2fx',
  '/files/%2e%2e%5c%2e%2e%5cx',
  '/files/a\\..\\..\\x',
  '/../x',
  '/files/sub/../../x',
];

function assertRefusedPath(res: DavResponse, label: string): void {
  assert.ok(res.status === 400 || res.status === 404, `${label}: expected 400 or 404, got ${res.status}: ${res.text}`);
  assert.doesNotMatch(res.text, /top secret|pwned/);
}

describe("hostile paths: nothing outside the caller's area is read or written", () => {
  let gw: TestGateway;
  let alice: TestUser;
  let alice2: TestUser;
  let outside: string;
  /** Everything that is not alice's files folder: the rest of the data folder and the outside folder. */
  let elsewhere: () => Promise<TreeSnapshot>;

  before(async () => {
    gw = await startTestGateway();
    alice = await gw.addUser('alice');
    alice2 = await gw.addUser('alice2');
    assert.equal((await dav(gw, { method: 'PUT', path: '/files/real.txt', user: alice, body: 'alice real' })).status, 201);
    assert.equal((await dav(gw, { method: 'MKCOL', path: '/files/sub/', user: alice })).status, 201);
    assert.equal((await dav(gw, { method: 'PUT', path: '/files/x', user: alice2, body: 'alice2 x' })).status, 201);
    outside = await mkdtemp(join(tmpdir(), 'kura-outside-'));
    await writeFile(join(outside, 'secret.txt'), SECRET);
    await mkdir(join(outside, 'x'));
    const aliceFiles = gw.filesDir(alice);
    elsewhere = async () => {
      const data = await snapshotTree(gw.dataDir, (abs) => isMetaFile(abs) || abs === aliceFiles);
      const out = await snapshotTree(outside);
      return new Map([...[...data].map(([k, v]) => [`data/${k}`, v] as const), ...[...out].map(([k, v]) => [`outside/${k}`, v] as const)]);
    };
  });

  after(async () => {
    await gw.close();
    await rm(outside, { recursive: true, force: true });
  });

  for (const path of TRAVERSALS) {
    it(`refuses PUT and GET of ${path} with 400 or 404 and touches nothing`, async () => {
      const data = await snapshotTree(gw.dataDir, isMetaFile);
      const usage = await gw.policy.usage.get('alice');
      assertRefusedPath(await dav(gw, { method: 'PUT', path, user: alice, body: 'pwned' }), `PUT ${path}`);
      assertRefusedPath(await dav(gw, { method: 'GET', path, user: alice }), `GET ${path}`);
      assertRefusedPath(await dav(gw, { method: 'PROPFIND', path, user: alice, headers: depth0 }), `PROPFIND ${path}`);
      assertRefusedPath(await dav(gw, { method: 'DELETE', path, user: alice }), `DELETE ${path}`);
      assert.deepEqual(treeChanges(data, await snapshotTree(gw.dataDir, isMetaFile)), []);
      assert.equal(await gw.policy.usage.get('alice'), usage);
      assert.ok(!existsSync(join(dirname(gw.dataDir), 'x')));
      assert.ok(!existsSync(join(gw.dataDir, 'x')));
    });
  }

  it('keeps serving after a malformed escape (%ZZ): the next request still works', async () => {
    const bad = await dav(gw, { method: 'GET', path: '/files/%ZZ', user: alice });
    assert.equal(bad.status, 400);
    const bare = await dav(gw, { method: 'GET', path: '/%', user: alice });
    assert.equal(bare.status, 400);
    const next = await dav(gw, { method: 'GET', path: '/files/real.txt', user: alice });
    assert.equal(next.status, 200);
    assert.equal(next.text, 'alice real');
  });

  describe('COPY and MOVE with a hostile Destination', () => {
    const destinations = (port: number, other: TestUser): Array<[string, number]> => [
      [`https://127.0.0.1:${port}/files/../alice2/x`, 400],
      [`https://127.0.0.1:${port}/files/%2e%2e/alice2/x`, 400],
      [`https://127.0.0.1:${port}/files/%2e%2e%2f%2e%2e%2f${other.id}%2ffiles%2fx`, 400],
      [`https://127.0.0.1:${port}/../../${other.id}/files/x`, 400],
      [`/files/%2E%2E/%2E%2E/${other.id}/files/x`, 400],
      ['https://evil.example/files/x', 502],
      [`https://127.0.0.1.evil.example:${port}/files/x`, 502],
      [`https://127.0.0.1:${port}/alice2/files/x`, 403],
      [`https://127.0.0.1:${port}/${other.id}/files/x`, 403],
      [`/areas/${other.id}/files/x`, 403],
      [`https://127.0.0.1:${port}/files/alice2/x`, 409],
      [`https://127.0.0.1:${port}/files/${other.id}/files/x`, 409],
    ];

    for (const method of ['COPY', 'MOVE']) {
      it(`${method} to another user's area or another host is refused and changes no folder on disk`, async () => {
        const otherFiles = await snapshotTree(gw.filesDir(alice2));
        const aliceBefore = await snapshotTree(gw.filesDir(alice));
        const rest = await elsewhere();
        for (const [destination, status] of destinations(gw.port, alice2)) {
          const res = await dav(gw, {
            method,
            path: '/files/real.txt',
            user: alice,
            headers: { Destination: destination, Overwrite: 'T' },
          });
          assert.equal(res.status, status, `${method} → ${destination}: ${res.text}`);
        }
        assert.deepEqual(treeChanges(otherFiles, await snapshotTree(gw.filesDir(alice2))), [], "alice2's folder is unchanged");
        assert.deepEqual(treeChanges(aliceBefore, await snapshotTree(gw.filesDir(alice))), [], "alice's own files are unchanged");
        assert.deepEqual(treeChanges(rest, await elsewhere()), [], "nothing changed outside alice's files folder");
        const x = await dav(gw, { method: 'GET', path: '/files/x', user: alice2 });
        assert.equal(x.text, 'alice2 x');
      });
    }
  });

  describe('symlinks planted inside the area', () => {
    let files: string;

    before(async () => {
      files = gw.filesDir(alice);
      await symlink(outside, join(files, 'linkdir'));
      await symlink(join(outside, 'secret.txt'), join(files, 'linkfile'));
      await symlink(outside, join(files, 'sub', 'deeplink'));
    });

    it('never serves bytes through a symlink: GET and HEAD answer 404', async () => {
      for (const path of [
        '/files/linkfile',
        '/files/linkdir/secret.txt',
        '/files/linkdir/',
        '/files/linkdir',
        '/files/sub/deeplink/secret.txt',
      ]) {
        for (const method of ['GET', 'HEAD']) {
          const res = await dav(gw, { method, path, user: alice });
          assert.equal(res.status, 404, `${method} ${path}`);
          assert.doesNotMatch(res.text, /top secret|secret\.txt/);
        }
      }
    });

    it('answers PROPFIND through a symlink with 404 and leaves it out of a Depth 1 listing', async () => {
      for (const path of ['/files/linkfile', '/files/linkdir/', '/files/linkdir/secret.txt', '/files/sub/deeplink/']) {
        assert.equal((await dav(gw, { method: 'PROPFIND', path, user: alice, headers: depth0 })).status, 404, path);
      }
      for (const path of ['/files/', '/files/sub/']) {
        const list = await dav(gw, { method: 'PROPFIND', path, user: alice, headers: depth1 });
        assert.equal(list.status, 207);
        assert.doesNotMatch(list.text, /linkdir|linkfile|deeplink|secret/);
      }
      const root = await dav(gw, { method: 'PROPFIND', path: '/files/', user: alice, headers: depth1 });
      assert.match(root.text, /real\.txt/);
    });

    it('never writes through a symlinked folder: PUT, MKCOL, COPY, MOVE, LOCK and DELETE into it change nothing outside', async () => {
      const before = await elsewhere();
      const attempts: Array<[string, string, Record<string, string>, string | undefined]> = [
        ['PUT', '/files/linkdir/new.txt', {}, 'pwned'],
        ['PUT', '/files/linkdir/secret.txt', {}, 'pwned'],
        ['PUT', '/files/sub/deeplink/new.txt', {}, 'pwned'],
        ['MKCOL', '/files/linkdir/newdir/', {}, undefined],
        ['COPY', '/files/real.txt', { Destination: '/files/linkdir/copied.txt' }, undefined],
        ['MOVE', '/files/real.txt', { Destination: '/files/linkdir/moved.txt' }, undefined],
        ['COPY', '/files/linkdir/secret.txt', { Destination: '/files/stolen.txt' }, undefined],
        ['MOVE', '/files/linkdir/secret.txt', { Destination: '/files/stolen.txt' }, undefined],
        ['LOCK', '/files/linkdir/locked.txt', { 'Content-Type': 'application/xml' }, LOCK_BODY],
        ['DELETE', '/files/linkdir/secret.txt', {}, undefined],
        ['DELETE', '/files/linkdir', {}, undefined],
        ['DELETE', '/files/linkfile', {}, undefined],
        ['PROPPATCH', '/files/linkfile', { 'Content-Type': 'application/xml' }, PROPPATCH_BODY],
      ];
      for (const [method, path, headers, body] of attempts) {
        const res = await dav(gw, { method, path, user: alice, headers, body });
        assert.ok([403, 404, 409].includes(res.status), `${method} ${path}: expected 403, 404 or 409, got ${res.status}: ${res.text}`);
      }
      assert.deepEqual(treeChanges(before, await elsewhere()), []);
      assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), SECRET);
      assert.ok(existsSync(join(files, 'real.txt')), 'the failed MOVE kept its source');
      assert.ok(!existsSync(join(files, 'stolen.txt')));
    });

    it("answers requests that collide with a planted symlink's name with a 4xx, never a 500, and leaves the outside alone", async () => {
      await symlink(outside, join(files, 'collide'));
      assert.equal((await dav(gw, { method: 'MKCOL', path: '/files/holder/', user: alice })).status, 201);
      assert.equal((await dav(gw, { method: 'MKCOL', path: '/files/movable/', user: alice })).status, 201);
      await symlink(outside, join(files, 'holder', 'inner'));
      const before = await elsewhere();
      const attempts: Array<[string, string, Record<string, string>]> = [
        ['MKCOL', '/files/collide/', {}],
        ['COPY', '/files/movable/', { Destination: '/files/collide/' }],
        ['MOVE', '/files/movable/', { Destination: '/files/collide/' }],
        ['DELETE', '/files/holder/', {}],
      ];
      const failures: string[] = [];
      for (const [method, path, headers] of attempts) {
        const res = await dav(gw, { method, path, user: alice, headers });
        if (res.status >= 500) failures.push(`${method} ${path} ${JSON.stringify(headers)} → ${res.status}`);
      }
      assert.deepEqual(treeChanges(before, await elsewhere()), []);
      assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), SECRET);
      assert.deepEqual(failures, []);
    });

    it('never writes through a symlinked file: a PUT on its name does not change the file it points to', async () => {
      const before = await elsewhere();
      const usage = await gw.policy.usage.get('alice');
      const res = await dav(gw, { method: 'PUT', path: '/files/linkfile', user: alice, body: 'pwned' });
      assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), SECRET);
      assert.deepEqual(treeChanges(before, await elsewhere()), []);
      if (res.status === 201) {
        // The link is invisible, so the PUT creates a new file in its place; the link itself is gone.
        const st = await lstat(join(files, 'linkfile'));
        assert.ok(st.isFile() && !st.isSymbolicLink());
        assert.equal(await readFile(join(files, 'linkfile'), 'utf8'), 'pwned');
        assert.equal(await gw.policy.usage.get('alice'), usage + 'pwned'.length);
      } else {
        assert.ok([403, 404, 409].includes(res.status), `unexpected ${res.status}: ${res.text}`);
        assert.equal(await gw.policy.usage.get('alice'), usage);
      }
    });
  });
});
