import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import { dav } from '../helpers/gateway.js';
import { browseFixture, pngBomb, testImage, type BrowseFixture } from '../helpers/browse.js';

async function sizeOf(image: Buffer): Promise<{ format?: string; width?: number; height?: number }> {
  const { default: sharp } = await import('sharp');
  return sharp(image).metadata();
}

describe('image previews: GET <image>?thumbnail=N', () => {
  let f: BrowseFixture;
  let photo: string;
  const get = (path: string, headers: Record<string, string> = {}) => dav(f.gw, { method: 'GET', path, user: f.user, headers });
  const put = (path: string, body: Buffer) => dav(f.gw, { method: 'PUT', path, user: f.user, body });
  const cached = async () =>
    (await readdir(join(areaLayout(f.gw.policy.layout, f.user.id).meta, 'thumbnails'), { recursive: true, withFileTypes: true })).filter(
      (e) => e.isFile(),
    ).length;

  before(async () => {
    f = await browseFixture('previews', { many: false });
    photo = `${f.snapshotPath}data/pics/photo.png`;
  });
  after(async () => {
    await f?.close();
  });

  it('makes a JPEG preview of an image in a snapshot, once, with long-lived cache headers', async () => {
    const res = await get(`${photo}?thumbnail=256`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    assert.deepEqual(await sizeOf(res.body).then((m) => [m.format, m.width, m.height]), ['jpeg', 256, 171]);
    assert.equal(res.headers['cache-control'], 'private, max-age=31536000, immutable');
    assert.equal(res.headers.vary, 'Accept');
    assert.equal(await cached(), 1);
    const again = await get(`${photo}?thumbnail=256`);
    assert.ok(again.body.equals(res.body));
    assert.equal(await cached(), 1, 'computed once');
    assert.equal((await get(`${photo}?thumbnail=256`, { 'If-None-Match': String(res.headers.etag) })).status, 304);
  });

  it('answers WebP to a client that accepts it', async () => {
    const res = await get(`${photo}?thumbnail=128`, { Accept: 'image/webp,*/*' });
    assert.equal(res.headers['content-type'], 'image/webp');
    assert.deepEqual(await sizeOf(res.body).then((m) => [m.format, m.width]), ['webp', 128]);
  });

  it('previews an image in /files/, revalidated since the file may change', async () => {
    assert.equal((await put('/files/small.png', await testImage(300, 600))).status, 201);
    const res = await get('/files/small.png?thumbnail=200');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await sizeOf(res.body).then((m) => [m.width, m.height]), [100, 200]);
    assert.equal(res.headers['cache-control'], 'private, no-cache');
    await put('/files/small.png', await testImage(600, 300));
    const changed = await get('/files/small.png?thumbnail=200');
    assert.deepEqual(await sizeOf(changed.body).then((m) => [m.width, m.height]), [200, 100], 'a new version gets a new preview');
    assert.notEqual(changed.headers.etag, res.headers.etag);
  });

  it('refuses a decompression bomb with 422 from its header, without a memory spike', async () => {
    await put('/files/bomb.png', pngBomb(100_000));
    const before = process.memoryUsage().rss;
    const res = await get('/files/bomb.png?thumbnail=256');
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.equal(res.status, 422);
    assert.match(res.text, /^unprocessable-image: the image has more than 50000000 pixels/);
    assert.ok(grown < 100, `RSS grew by ${grown.toFixed(0)} MiB`);
  });

  it('refuses corrupt images (422), non-images (415) and odd sizes (400), and keeps serving', async () => {
    const real = await (
      await import('sharp')
    )
      .default(await testImage(400, 400))
      .jpeg()
      .toBuffer();
    await put('/files/truncated.jpg', real.subarray(0, real.length >> 1));
    await put('/files/noise.png', randomBytes(5000));
    assert.equal((await get('/files/truncated.jpg?thumbnail=64')).status, 422);
    const noise = await get('/files/noise.png?thumbnail=64');
    assert.equal(noise.status, 415);
    assert.match(noise.text, /^unsupported-media-type:/);
    assert.equal((await get(`${f.snapshotPath}data/docs/d0_0/?thumbnail=64`)).status, 200, 'a folder ignores the parameter');
    const text = await get(`${f.snapshotPath}data/${encodeURIComponent('Café NFD ñ.txt')}?thumbnail=64`);
    assert.equal(text.status, 415);
    assert.equal((await get(`${photo}?thumbnail=99999`)).status, 400);
    assert.equal((await get(`${photo}?thumbnail=abc`)).status, 400);
    assert.equal((await get(`${photo}?thumbnail=64`)).status, 200);
  });
});
