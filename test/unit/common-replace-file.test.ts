import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readSealed, writeSealed } from '../../agent/sealed-file.js';
import { replaceFile } from '../../common/replace-file.js';

const run = promisify(execFile);

/**
 * replaceFile, which every part uses to replace a file whole (the agent's index and tree caches and
 * its state, the gateway's dead properties and OS files, previews), on a 1 MiB tmpfs that a 2 MiB
 * write fills. Mounting needs root, which CI has (.ci/run runs as root); where the mount is refused,
 * the tests say so and skip.
 */
describe('replacing a file on a full disk', () => {
  let dir: string;
  let refused: string | null = null;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-replace-'));
    refused = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).then(
      () => null,
      (err: Error) => err.message,
    );
  });
  after(async () => {
    if (!refused) await run('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces the content whole and leaves no temp file', async () => {
    const file = join(dir, 'state.json');
    await writeFile(file, 'old');
    await replaceFile(file, 'new');
    assert.equal(await readFile(file, 'utf8'), 'new');
    assert.deepEqual(await readdir(dir), ['state.json']);
    await rm(file);
  });

  it('fails with ENOSPC, keeps the old content and removes its temp file', async (t) => {
    if (refused) return t.skip(`cannot mount a small tmpfs here, which needs root (${refused})`);
    const file = join(dir, 'state.json');
    await writeFile(file, 'old');
    await assert.rejects(replaceFile(file, randomBytes(2 << 20)), { code: 'ENOSPC' });
    assert.equal(await readFile(file, 'utf8'), 'old');
    assert.deepEqual(await readdir(dir), ['state.json']);
    await rm(file);
  });

  it("the agent's sealed cache file: a write that does not fit leaves the last good copy readable", async (t) => {
    if (refused) return t.skip(`cannot mount a small tmpfs here, which needs root (${refused})`);
    const file = join(dir, 'index-cache.json');
    await writeSealed(file, { generation: 1, entries: ['a'] });
    await assert.rejects(writeSealed(file, { generation: 2, entries: [randomBytes(1 << 20).toString('hex')] }), { code: 'ENOSPC' });
    assert.deepEqual(await readSealed(file), { generation: 1, entries: ['a'] });
    assert.deepEqual(await readdir(dir), ['index-cache.json']);
  });
});
