import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { replaceFile } from '../common/replace-file.js';

/**
 * Local state files of the agent (caches in KURA_STATE_DIR): JSON, then a line with the SHA-256 of
 * the JSON. A file whose hash does not match (damaged, cut short, foreign) reads as absent, so a
 * cache can cost time but never change a backup's result.
 */
export async function readSealed(file: string): Promise<unknown> {
  const bytes = await readFile(file).catch(() => null);
  const cut = bytes ? bytes.lastIndexOf(SEAL) : -1;
  if (!bytes || cut < 0) return null;
  const body = bytes.subarray(0, cut);
  if (bytes.toString('utf8', cut + SEAL.length).trim() !== sha256(body)) return null;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

/** Writes value sealed, atomically (temporary file, then rename). */
export async function writeSealed(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const body = Buffer.from(JSON.stringify(value));
  await replaceFile(file, Buffer.concat([body, SEAL, Buffer.from(sha256(body) + '\n')]));
}

const SEAL = Buffer.from('\n#sha256 ');

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
