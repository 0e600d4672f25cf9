import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { replaceFile } from '../common/replace-file.js';
import { contentTypeOf } from './content-type.js';
import { BrowseError } from './errors.js';
import { headerOf } from './http.js';

/** The file a preview is made of: its name (for the type), size, and strong ETag (the cache key). */
export interface PreviewSubject {
  name: string;
  size: number;
  etag: string;
}

/** Originals larger than this are not previewed (422): a preview should not cost a large download. */
export const MAX_SOURCE_BYTES = 64 << 20;
/** Decoded pixels allowed (sharp's limitInputPixels): 50 MP, ~200 MB as RGBA. Larger images are 422. */
export const MAX_PIXELS = 50_000_000;
const SIZES = { min: 16, max: 1024 };
/** Formats sharp decodes that are worth previewing; SVG is left out (it is a document, not pixels). */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/tiff', 'image/avif', 'image/heic']);

/** Whether a preview can be asked for: the file's name says it is an image sharp decodes (see IMAGE_TYPES). */
export function isPreviewable(name: string): boolean {
  return IMAGE_TYPES.has(contentTypeOf(name));
}

/** Previews being made, by cache key, so that one is computed once however many ask at the same time. */
const making = new Map<string, Promise<Buffer>>();
/** Decodes at a time, across every user: memory stays bounded whatever the number of requests. */
let running = 0;
const waiting: (() => void)[] = [];

/**
 * `GET <image>?thumbnail=N`: a preview at most N pixels wide and high (16-1024), WebP when the client
 * accepts it, else JPEG; made once with sharp and kept in cacheDir under a hash of the original's
 * ETag, so it is never made again for the same bytes. Refuses (415) what is not an image it knows and
 * (422) an image it cannot decode: corrupt, larger than MAX_SOURCE_BYTES, or more than MAX_PIXELS
 * (a decompression bomb is stopped from its header, before its pixels are allocated).
 */
export class Thumbnailer {
  constructor(
    private readonly cacheDir: string,
    /** Cache-Control for previews: long for snapshots (the URL's bytes never change), revalidated for /files/. */
    private readonly immutable = true,
  ) {}

  async send(
    req: IncomingMessage,
    res: ServerResponse,
    subject: PreviewSubject,
    sizeParam: string,
    bytes: () => Promise<Iterable<Buffer> | AsyncIterable<Buffer>>,
  ): Promise<void> {
    const size = Number(sizeParam);
    if (!/^\d+$/.test(sizeParam) || size < SIZES.min || size > SIZES.max) {
      throw new BrowseError('bad-request', `bad-request: thumbnail takes a size from ${SIZES.min} to ${SIZES.max} pixels`);
    }
    if (!isPreviewable(subject.name)) {
      throw new BrowseError(
        'unsupported-media-type',
        'unsupported-media-type: previews are made of JPEG, PNG, GIF, WebP, TIFF, AVIF and HEIC images',
      );
    }
    const webp = /image\/webp/.test(headerOf(req, 'accept') ?? '');
    const key = createHash('sha256')
      .update(`${subject.etag}\0${size}\0${webp ? 'webp' : 'jpeg'}`)
      .digest('hex');
    const etag = `"th-${key.slice(0, 32)}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Vary', 'Accept');
    res.setHeader('Cache-Control', this.immutable ? 'private, max-age=31536000, immutable' : 'private, no-cache');
    const ifNone = headerOf(req, 'if-none-match');
    if (ifNone && ifNone.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const preview = await this.cached(key, webp, subject, size, bytes);
    res.statusCode = 200;
    res.setHeader('Content-Type', webp ? 'image/webp' : 'image/jpeg');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Length', preview.length);
    res.end(req.method === 'HEAD' ? undefined : preview);
  }

  private async cached(
    key: string,
    webp: boolean,
    subject: PreviewSubject,
    size: number,
    bytes: () => Promise<Iterable<Buffer> | AsyncIterable<Buffer>>,
  ) {
    const file = join(this.cacheDir, key.slice(0, 2), key);
    const hit = await readFile(file).catch(() => null);
    if (hit) return hit;
    let pending = making.get(key);
    if (!pending) {
      pending = (async () => {
        if (subject.size > MAX_SOURCE_BYTES)
          throw new BrowseError('unprocessable-image', `unprocessable-image: images over ${MAX_SOURCE_BYTES >> 20} MiB are not previewed`);
        const preview = await oneAtATime(async () => render(await gather(await bytes(), subject.size), size, webp));
        await store(file, preview);
        return preview;
      })().finally(() => making.delete(key));
      making.set(key, pending);
    }
    return pending;
  }
}

async function gather(chunks: Iterable<Buffer> | AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of chunks) {
    if (at + chunk.length > size)
      throw new BrowseError('unprocessable-image', 'unprocessable-image: the file is larger than its listing says');
    chunk.copy(out, at);
    at += chunk.length;
  }
  return out.subarray(0, at);
}

async function render(input: Buffer, size: number, webp: boolean): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  sharp.cache(false);
  sharp.concurrency(1);
  try {
    const image = sharp(input, { limitInputPixels: MAX_PIXELS, failOn: 'error', animated: false })
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: true });
    return await (webp ? image.webp({ quality: 75 }) : image.jpeg({ quality: 80, mozjpeg: true })).toBuffer();
  } catch (err) {
    const message = (err as Error).message;
    if (/unsupported image format/i.test(message)) {
      throw new BrowseError('unsupported-media-type', 'unsupported-media-type: the file is not an image sharp can read');
    }
    throw new BrowseError(
      'unprocessable-image',
      `unprocessable-image: ${/pixel limit/i.test(message) ? `the image has more than ${MAX_PIXELS} pixels` : 'the image is damaged'}`,
    );
  }
}

async function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  // A finishing decode hands its slot straight to the next in line, so none can slip in between.
  if (running >= 1) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

async function store(file: string, bytes: Buffer): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    await replaceFile(file, bytes);
  } catch {
    // A preview that cannot be kept is made again next time; it is not a reason to fail this one.
  }
}
