import type { Response } from 'express';
import { ZipArchive } from 'archiver';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Content-Disposition: attachment with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987), so
 * a file is always saved, never shown in the console's origin.
 */
export function attachmentHeader(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Headers every download carries: attachment, no sniffing, and a sandbox should it be opened anyway. */
export function setDownloadHeaders(res: Response, name: string, type: string): void {
  res.setHeader('Content-Disposition', attachmentHeader(name));
  res.setHeader('Content-Type', type);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "sandbox; default-src 'none'");
}

export function sendAttachment(res: Response, name: string, type: string, body: Buffer): void {
  setDownloadHeaders(res, name, type);
  res.setHeader('Content-Length', String(body.length));
  res.status(200).end(body);
}

/** A folder a zip is made of: /files/ or a snapshot. Paths are relative to the folder being zipped. */
export interface ZipSource {
  /** The members of the folder at rel (symlinks never listed). */
  list(rel: string[]): Promise<{ name: string; type: 'file' | 'collection'; mtime: Date }[]>;
  /** The bytes of the file at rel; throws before a byte when the file cannot be read. */
  open(rel: string[]): Promise<Readable>;
}

/**
 * A folder as a zip, streamed: files are added one at a time (one open file, memory flat whatever
 * the folder's size). A client that goes away stops the walk; a file that cannot be read ends the
 * download (the zip is cut short, so it is never taken for complete).
 */
export async function sendZip(res: Response, name: string, source: ZipSource): Promise<void> {
  setDownloadHeaders(res, `${name}.zip`, 'application/zip');
  res.status(200);
  const zip = new ZipArchive({ zlib: { level: 6 } });
  const done = pipeline(zip, res);
  const appendOne = (body: string | Readable, data: { name: string; date: Date }) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        zip.off('entry', onEntry);
        reject(err);
      };
      const onEntry = () => {
        zip.off('error', onError);
        resolve();
      };
      zip.once('entry', onEntry);
      zip.once('error', onError);
      zip.append(body, data);
    });
  const add = async (rel: string[]): Promise<void> => {
    for (const e of await source.list(rel)) {
      if (res.destroyed) return;
      const inZip = [...rel, e.name].join('/');
      if (e.type === 'collection') {
        await appendOne('', { name: `${inZip}/`, date: e.mtime });
        await add([...rel, e.name]);
      } else {
        await appendOne(await source.open([...rel, e.name]), { name: inZip, date: e.mtime });
      }
    }
  };
  try {
    await add([]);
    await zip.finalize();
  } catch (err) {
    zip.destroy(err as Error);
  }
  await done.catch(() => undefined);
}

/** Bytes read piece by piece (a snapshot's blobs) as a stream for the zip or a response. */
export function streamOf(chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Readable {
  return Readable.from(chunks, { objectMode: false });
}
