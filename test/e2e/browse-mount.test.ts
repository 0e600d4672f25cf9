import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { request } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgent } from '../helpers/agent.js';
import { browseFixture, hrefsOf, type BrowseFixture } from '../helpers/browse.js';
import { run, type Watched } from '../helpers/processes.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** One plain-HTTP request to the mount (it listens on 127.0.0.1 only). */
function http(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, text: all.toString('utf8') });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Lines of litmus's output for tests that failed, e.g. "3. mkcol.... FAIL (...)". */
function failedTests(output: string): string[] {
  return output.split('\n').filter((l) => /\bFAIL\b/.test(l));
}

describe('kura mount: the snapshots decrypted on this PC, read-only over WebDAV on 127.0.0.1', () => {
  let f: BrowseFixture;
  let mount: Watched;
  let url: string;
  let snapshot: string;

  before(async () => {
    f = await browseFixture('mounter', { encrypted: true, many: false });
    mount = startAgent(f.env, ['mount']);
    url = (await mount.waitFor(/http:\/\/127\.0\.0\.1:\d+\/[\w-]+\//))[0];
    snapshot = `${url}${f.snapshotPath.slice('/snapshots/'.length)}`;
  });
  after(async () => {
    await mount?.stop();
    await f?.close();
  });

  it('prints the address and how to connect from Windows, macOS, GNOME Files and davfs2', () => {
    const out = mount.output();
    for (const os of ['Windows', 'macOS', 'GNOME', 'davfs2']) assert.match(out, new RegExp(os));
    assert.match(out, /dav:\/\/127\.0\.0\.1:\d+\//);
  });

  it('shows the same tree as the gateway would for a plaintext repository, decrypted', async () => {
    const hosts = await http(url, 'PROPFIND', { Depth: '1' });
    assert.equal(hosts.status, 207);
    const base = new URL(url).pathname;
    assert.deepEqual(hrefsOf(hosts.text), [base, `${base}${f.env.KURA_HOST}/`]);
    const inside = await http(`${snapshot}data/`, 'PROPFIND', { Depth: '1' });
    assert.deepEqual(
      hrefsOf(inside.text)
        .map((h) => h.slice(base.length))
        .sort(),
      [
        ...['', 'Café NFD ñ.txt'.normalize('NFD'), 'copies/', 'docs/', 'many/', 'media/', 'pics/'].map(
          (n) => `${f.snapshotPath.slice('/snapshots/'.length)}data/${n}`,
        ),
      ].sort(),
    );
  });

  it('serves random byte ranges of a large file as the source has them', async () => {
    const source = await readFile(join(f.src, 'media/large_1.bin'));
    for (let i = 0; i < 15; i++) {
      const start = randomInt(source.length);
      const end = Math.min(source.length - 1, start + randomInt(3 << 20));
      const res = await http(`${snapshot}data/media/large_1.bin`, 'GET', { Range: `bytes=${start}-${end}` });
      assert.equal(res.status, 206);
      assert.ok(res.body.equals(source.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
  });

  it('refuses writes with 403 "snapshots are read-only", unknown paths and foreign Host headers', async () => {
    for (const method of ['PUT', 'DELETE', 'MKCOL', 'PROPPATCH', 'LOCK', 'MOVE', 'COPY']) {
      const body = ['PUT', 'PROPPATCH', 'LOCK'].includes(method) ? 'x' : undefined;
      const res = await http(`${snapshot}data/media/large_1.bin`, method, { Destination: `${snapshot}data/x` }, body);
      assert.equal(res.status, 403, `${method}: ${res.text}`);
      assert.equal(res.text.trim(), 'read-only: snapshots are read-only');
    }
    const origin = new URL(url).origin;
    assert.equal((await http(`${origin}/`, 'PROPFIND', { Depth: '1' })).status, 404, 'without the token');
    assert.equal((await http(`${url}pc1%2F..%2F..`, 'PROPFIND', { Depth: '0' })).status, 400, 'an encoded separator');
    assert.equal((await http(url, 'PROPFIND', { Depth: 'infinity' })).status, 403, 'Depth: infinity');
    assert.equal((await http(url, 'PROPFIND', { Depth: '1' }, '<!DOCTYPE x [<!ENTITY a "b">]><x/>')).status, 400, 'a DOCTYPE');
    const options = await http(`${origin}/`, 'OPTIONS');
    assert.equal(options.status, 200, "Windows' first question, at the server's root");
    assert.equal(options.headers.dav, '1');
    assert.equal(options.headers['ms-author-via'], 'DAV');
    assert.equal((await http(url, 'PROPFIND', { Depth: '0', Host: 'evil.example' })).status, 400, 'a foreign Host (DNS rebinding)');
  });

  it('passes `rclone check` of the snapshot folder against the dataset', async () => {
    await writeFile(join(f.work, 'rclone.conf'), '');
    const res = await run(
      'rclone',
      ['check', f.src, ':webdav:', '--download', '--webdav-url', `${snapshot}data/`, '--webdav-vendor', 'other'],
      {
        env: { ...process.env, RCLONE_CONFIG: join(f.work, 'rclone.conf') },
        timeoutMs: 120_000,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /0 differences found/);
  });

  /**
   * litmus cannot test a read-only server beyond its start: each suite's `begin` creates a scratch
   * collection (MKCOL) for its tests, and a 403 there ends the run. What runs is listed: `init`
   * (OPTIONS) passes and `begin` fails on the read-only refusal, nothing else fails.
   */
  it('runs litmus basic and props: init passes, begin is refused as read-only (MKCOL 403), nothing else fails', async () => {
    for (const suite of ['basic', 'props']) {
      const res = await run('litmus', [`${snapshot}data/`], { cwd: f.work, env: { ...process.env, TESTS: suite }, timeoutMs: 120_000 });
      const output = res.stdout + res.stderr;
      console.log(
        `litmus ${suite} against kura mount: ${output
          .split('\n')
          .filter((l) => /summary|FAIL/.test(l))
          .join(' | ')}`,
      );
      assert.match(output, /init\.+ pass/);
      const failed = failedTests(output);
      assert.equal(failed.length, 1, output);
      assert.match(failed[0]!, /begin\.+ FAIL \(Could not create new collection .* 403 Forbidden/);
    }
  });
});
