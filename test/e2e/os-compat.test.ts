import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { dav, startTestGateway, type DavRequest, type TestGateway, type TestUser } from '../helpers/gateway.js';
import { hrefsOf } from '../helpers/browse.js';

const MS = 'urn:schemas-microsoft-com:';

describe('what Windows Explorer, macOS Finder and GNOME Files expect from /files/', () => {
  let gw: TestGateway;
  let user: TestUser;
  const req = (r: Omit<DavRequest, 'user'>) => dav(gw, { ...r, user });

  before(async () => {
    gw = await startTestGateway();
    user = await gw.addUser('desktop', { quotaBytes: 10 << 20 });
  });
  after(async () => {
    await gw?.close();
  });

  it('announces DAV classes 1 and 2 and MS-Author-Via: DAV', async () => {
    const res = await req({ method: 'OPTIONS', path: '/files/' });
    assert.equal(res.headers['ms-author-via'], 'DAV');
    assert.equal(res.headers.dav, '1, 2');
  });

  it('accepts the Win32 properties Explorer sets after an upload, and gives them back', async () => {
    await req({ method: 'PUT', path: '/files/report.docx', body: 'doc' });
    const body =
      `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="${MS}"><D:set><D:prop>` +
      '<Z:Win32CreationTime>Thu, 26 Nov 2026 08:00:00 GMT</Z:Win32CreationTime>' +
      '<Z:Win32LastAccessTime>Thu, 26 Nov 2026 08:00:00 GMT</Z:Win32LastAccessTime>' +
      '<Z:Win32LastModifiedTime>Thu, 26 Nov 2026 08:00:00 GMT</Z:Win32LastModifiedTime>' +
      '<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>';
    const res = await req({ method: 'PROPPATCH', path: '/files/report.docx', body });
    assert.equal(res.status, 207);
    assert.equal((res.text.match(/HTTP\/1.1 200 OK/g) ?? []).length, 1, res.text);
    assert.doesNotMatch(res.text, /HTTP\/1.1 (4|5)\d\d/);
    const back = await req({
      method: 'PROPFIND',
      path: '/files/report.docx',
      headers: { Depth: '0' },
      body: `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><Z:Win32FileAttributes xmlns:Z="${MS}"/></D:prop></D:propfind>`,
    });
    assert.match(back.text, /00000020/);
    const head = await req({ method: 'HEAD', path: '/files/report.docx' });
    assert.equal(head.headers['last-modified'], 'Thu, 26 Nov 2026 08:00:00 GMT', "Win32LastModifiedTime sets the file's time");
  });

  it("keeps Finder's AppleDouble and .DS_Store files aside: written and read back, never listed, not counted", async () => {
    const usedBefore = await gw.policy.usage.get(user.name);
    const lockBody =
      '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
    const lock = await req({ method: 'LOCK', path: '/files/._report.docx', body: lockBody });
    assert.ok(lock.status === 200 || lock.status === 201, lock.text);
    const token = String(lock.headers['lock-token']);
    const fork = Buffer.from([0, 5, 22, 7, 0, 2, 0, 0, 255, 254]);
    const put = await req({ method: 'PUT', path: '/files/._report.docx', body: fork, headers: { If: `(${token})` } });
    assert.equal(put.status, 201, put.text);
    assert.equal((await req({ method: 'UNLOCK', path: '/files/._report.docx', headers: { 'Lock-Token': token } })).status, 204);
    assert.equal((await req({ method: 'PUT', path: '/files/.DS_Store', body: 'Bud1' })).status, 201);
    const got = await req({ method: 'GET', path: '/files/._report.docx' });
    assert.ok(got.body.equals(fork), 'Finder reads back what it wrote');
    assert.equal((await req({ method: 'PROPFIND', path: '/files/.DS_Store', headers: { Depth: '0' } })).status, 207);
    const listing = hrefsOf((await req({ method: 'PROPFIND', path: '/files/', headers: { Depth: '1' } })).text);
    assert.deepEqual(listing, ['/files/', '/files/report.docx']);
    assert.deepEqual((await readdir(gw.filesDir(user))).sort(), ['report.docx'], 'no clutter on disk');
    assert.equal(await gw.policy.usage.get(user.name), usedBefore, 'not counted against the quota');
    assert.equal((await req({ method: 'DELETE', path: '/files/._report.docx' })).status, 204);
    assert.equal((await req({ method: 'GET', path: '/files/._report.docx' })).status, 404);
  });

  it('shows the quota through RFC 4331 properties', async () => {
    const res = await req({
      method: 'PROPFIND',
      path: '/files/',
      headers: { Depth: '0' },
      body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>',
    });
    const used = await gw.policy.usage.get(user.name);
    assert.match(res.text, new RegExp(`<D:quota-used-bytes>${used}</D:quota-used-bytes>`));
    assert.match(res.text, new RegExp(`<D:quota-available-bytes>${(10 << 20) - used}</D:quota-available-bytes>`));
  });

  it('reaches the same file with a name in NFC or NFD', async () => {
    const nfd = encodeURIComponent('Résumé ñ.txt'.normalize('NFD'));
    const nfc = encodeURIComponent('Résumé ñ.txt'.normalize('NFC'));
    assert.equal((await req({ method: 'PUT', path: `/files/${nfd}`, body: 'one' })).status, 201);
    assert.equal((await req({ method: 'PUT', path: `/files/${nfc}`, body: 'two' })).status, 204, 'the NFC name replaces the NFD one');
    assert.equal((await req({ method: 'GET', path: `/files/${nfd}` })).text, 'two');
    const names = hrefsOf((await req({ method: 'PROPFIND', path: '/files/', headers: { Depth: '1' } })).text);
    assert.equal(names.filter((n) => n.normalize('NFC') === '/files/Résumé ñ.txt').length, 1);
  });

  it('never lets a name differing only in case overwrite another: 409 case-collision', async () => {
    assert.equal((await req({ method: 'PUT', path: '/files/Notes.txt', body: 'original' })).status, 201);
    for (const attempt of [
      req({ method: 'PUT', path: '/files/notes.txt', body: 'clobber' }),
      req({ method: 'MKCOL', path: '/files/NOTES.TXT/' }),
      req({ method: 'COPY', path: '/files/report.docx', headers: { Destination: '/files/notes.TXT' } }),
      req({ method: 'MOVE', path: '/files/report.docx', headers: { Destination: '/files/NoTeS.txt' } }),
    ]) {
      const res = await attempt;
      assert.equal(res.status, 409, res.text);
      assert.match(res.text, /^case-collision: "Notes.txt" is already in this folder/);
    }
    assert.equal((await req({ method: 'GET', path: '/files/Notes.txt' })).text, 'original');
    assert.equal((await req({ method: 'PUT', path: '/files/Notes.txt', body: 'update' })).status, 204, 'the same name is an update');
  });
});
