import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { dav, startTestGateway, type TestGateway, type TestUser } from '../helpers/gateway.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/**
 * The gateway's whole data folder on an 8 MiB tmpfs: room for its CA, certificates and databases, not
 * for a 12 MiB upload. Mounting needs root, which CI has (.ci/run runs as root); where the mount is
 * refused, the test says so and skips.
 */
describe('a full disk under the gateway', () => {
  let mountPoint: string;
  let refused: string | null = null;
  let gw: TestGateway | undefined;
  let user: TestUser;

  before(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), 'kura-full-'));
    refused = await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint]).then(
      () => null,
      (err: Error) => err.message,
    );
    if (refused) return;
    gw = await startTestGateway({ dataDir: mountPoint });
    user = await gw.addUser('fullness');
  });

  after(async () => {
    await gw?.close();
    if (!refused) await run('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });

  it('answers 507 with a reason a person can read, stores nothing, counts nothing and keeps serving', async (t) => {
    if (!gw) return t.skip(`cannot mount a small tmpfs here, which needs root (${refused})`);
    const res = await dav(gw, { user, method: 'PUT', path: '/files/big.bin', body: randomBytes(12 * MiB) });
    assert.equal(res.status, 507, res.text);
    assert.match(res.text, /^insufficient-storage: the gateway's disk is full; its operator must free space/);
    assert.deepEqual(await readdir(gw.filesDir(user)), [], 'no file appeared in the area');
    assert.deepEqual(await readdir(areaLayout(gw.policy.layout, user.id).tmp), [], 'no temp file is left');
    assert.equal(await gw.policy.usage.get(user.name), 0, 'the quota counter did not move');
    const small = await dav(gw, { user, method: 'PUT', path: '/files/small.txt', body: 'still works' });
    assert.equal(small.status, 201, 'a write that fits is stored once the big one failed');
  });

  it('answers 507 to a COPY the disk cannot hold and leaves no half copy behind', async (t) => {
    if (!gw) return t.skip(`cannot mount a small tmpfs here, which needs root (${refused})`);
    const body = randomBytes(3 * MiB);
    assert.equal((await dav(gw, { user, method: 'PUT', path: '/files/three.bin', body })).status, 201);
    const copy = (to: string) =>
      dav(gw!, { user, method: 'COPY', path: '/files/three.bin', headers: { Destination: `${gw!.url}files/${to}` } });
    assert.equal((await copy('first.bin')).status, 201, 'the first copy fits');
    const used = await gw.policy.usage.get(user.name);
    const res = await copy('second.bin');
    assert.equal(res.status, 507, res.text);
    assert.match(res.text, /^insufficient-storage/);
    assert.deepEqual((await readdir(gw.filesDir(user))).sort(), ['first.bin', 'small.txt', 'three.bin']);
    assert.deepEqual(await readdir(areaLayout(gw.policy.layout, user.id).tmp), [], 'no temp file is left');
    assert.equal(await gw.policy.usage.get(user.name), used, 'the quota counter did not move');
  });
});
