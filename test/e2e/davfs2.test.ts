import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { browseFixture, type BrowseFixture } from '../helpers/browse.js';
import { dav } from '../helpers/gateway.js';
import { run } from '../helpers/processes.js';

/**
 * davfs2 mounts the gateway (app password over Basic, the Kura CA trusted). On this project's
 * machines (kernel 6.18), davfs2 1.6's FUSE readdir fails with EINVAL for every server (rclone's
 * too), while lookups, reads and writes by path work: so folders are compared file by file by name,
 * the names taken from the source.
 */
describe('davfs2 mounting the gateway', () => {
  let f: BrowseFixture;
  let mnt: string;
  let mounted = false;

  before(async () => {
    f = await browseFixture('davfs', { many: false });
    // mount.davfs reads its files after dropping to its own user: the temp folder must be traversable.
    await chmod(f.work, 0o711);
    mnt = join(f.work, 'mnt');
    await mkdir(mnt);
    const secrets = join(f.work, 'davfs2.secrets');
    await writeFile(secrets, `${f.gw.url} ${f.user.name} ${f.user.password}\n`, { mode: 0o600 });
    await writeFile(join(f.work, 'ca.pem'), f.gw.caPem);
    const conf = join(f.work, 'davfs2.conf');
    await writeFile(conf, `secrets ${secrets}\ntrust_ca_cert ${join(f.work, 'ca.pem')}\nuse_locks 0\ndelay_upload 0\n`);
    const res = await run('mount', ['-t', 'davfs', '-o', `conf=${conf}`, f.gw.url, mnt], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, `mount.davfs: ${res.stderr}${res.stdout}`);
    mounted = true;
  });
  after(async () => {
    if (mounted) await run('umount', [mnt], { timeoutMs: 60_000 });
    // mount.davfs keeps its cache in /var/cache/davfs2/<server>+<mount point>+<user>: not left behind.
    if (mnt) await rm(`/var/cache/davfs2/127.0.0.1+${mnt.slice(1).replace(/\//g, '-')}+root`, { recursive: true, force: true });
    await f?.close();
  });

  it('reads a folder of a snapshot identical to the source, file by file', async () => {
    const folder = 'docs/d0_2';
    const snapshot = join(mnt, ...f.snapshotPath.split('/').filter(Boolean), 'data');
    assert.ok((await stat(join(snapshot, folder))).isDirectory());
    const files = (await readdir(join(f.src, folder), { withFileTypes: true })).filter((e) => e.isFile());
    assert.ok(files.length > 5);
    for (const { name } of files) {
      const [want, got] = await Promise.all([readFile(join(f.src, folder, name)), readFile(join(snapshot, folder, name))]);
      assert.ok(want.equals(got), `${folder}/${name}`);
    }
    const large = await readFile(join(snapshot, 'media/large_0.bin'));
    assert.ok(large.equals(await readFile(join(f.src, 'media/large_0.bin'))), 'an 8 MiB file of many blobs');
  });

  it('refuses to create anything in /snapshots/', async () => {
    const inside = join(mnt, ...f.snapshotPath.split('/').filter(Boolean), 'data');
    await assert.rejects(mkdir(join(inside, 'new-folder')), /EACCES|EPERM|EIO|EROFS|EINVAL/);
    const listed = await dav(f.gw, {
      method: 'PROPFIND',
      path: `${f.snapshotPath}data/new-folder/`,
      user: f.user,
      headers: { Depth: '0' },
    });
    assert.equal(listed.status, 404);
  });

  it('writes into /files/', async () => {
    await mkdir(join(mnt, 'files', 'from-davfs'));
    await writeFile(join(mnt, 'files', 'from-davfs', 'note.txt'), 'written through davfs2\n');
    const sync = await run('sync', [], { timeoutMs: 60_000 });
    assert.equal(sync.code, 0);
    let text = '';
    for (let i = 0; i < 50 && text === ''; i++) {
      text = await readFile(join(f.gw.filesDir(f.user), 'from-davfs', 'note.txt'), 'utf8').catch(() => '');
      if (text === '') await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(text, 'written through davfs2\n');
  });
});
