import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';

/**
 * Writes data to a sibling temp file (`<target>.<random>.tmp`) and renames it over target, so a reader
 * sees the old content or the new, never half of it. A write that fails (a full disk) removes its
 * temp file.
 */
export async function replaceFile(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
