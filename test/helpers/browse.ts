import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { agentFixture, backup, type AgentEnv } from './agent.js';
import { dav, type TestGateway, type TestUser } from './gateway.js';

/** A gateway with a plaintext user whose tiny dataset (plus a 10,000-entry folder) is backed up once. */
export interface BrowseFixture {
  gw: TestGateway;
  work: string;
  user: TestUser;
  env: AgentEnv;
  /** The backed-up folder; it is `data` inside the snapshot. */
  src: string;
  /** The snapshot's folder URL path, e.g. /snapshots/pc1/20261126T073300Z/ */
  snapshotPath: string;
  close(): Promise<void>;
}

export const MANY_ENTRIES = 10_000;

export async function browseFixture(userName: string, opts: { encrypted?: boolean; many?: boolean } = {}): Promise<BrowseFixture> {
  const fixture = await agentFixture(userName, {}, { plaintext: !opts.encrypted });
  const { gw, user, env, src } = fixture;
  await mkdir(join(src, 'many'));
  for (let i = 0; i < (opts.many === false ? 0 : MANY_ENTRIES); i++)
    await writeFile(join(src, 'many', `f${String(i).padStart(5, '0')}.txt`), '');
  await writeFile(join(src, 'Café NFD ñ.txt'.normalize('NFD')), 'decomposed name\n');
  await mkdir(join(src, 'pics'));
  await writeFile(join(src, 'pics', 'photo.png'), await testImage(1200, 800));
  await backup(env, [src]);
  const listing = await dav(gw, { method: 'PROPFIND', path: `/snapshots/${env.KURA_HOST}/`, user, headers: { Depth: '1' } });
  const times = [...listing.text.matchAll(/<D:href>\/snapshots\/[^/]+\/([^/<]+)\/<\/D:href>/g)].map((m) => m[1]!);
  if (times.length !== 1) throw new Error(`expected one snapshot folder, got ${times.join(', ')}:\n${listing.text}`);
  return { ...fixture, snapshotPath: `/snapshots/${env.KURA_HOST}/${times[0]}/` };
}

/** A PNG of width × height with a gradient (made with sharp). */
export async function testImage(width: number, height: number): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) & 0xff;
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * A decompression bomb: a valid PNG header declaring side × side grey pixels, with one tiny IDAT.
 * Decoding it would need side² bytes; a safe reader refuses it from the header.
 */
export function pngBomb(side: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

/** The hrefs of a multistatus body, decoded. */
export function hrefsOf(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => decodeURIComponent(m[1]!));
}
