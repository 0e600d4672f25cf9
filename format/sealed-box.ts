import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';

/**
 * AES-256-GCM "sealed boxes": nonce(12) ‖ ciphertext ‖ tag(16), with a fresh random nonce each time.
 * One layout for blobs, wrapped keys and snapshot bodies, so there is one place to get it right.
 */

export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const BOX_OVERHEAD = NONCE_SIZE + TAG_SIZE;

/** Random bytes for nonces, drawn from the CSPRNG in bulk: one call per 4 KiB, not one per blob. */
const noncePool = Buffer.alloc(4096);
let nonceAt = noncePool.length;

function freshNonce(): Buffer {
  if (nonceAt + NONCE_SIZE > noncePool.length) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(nonceAt, nonceAt + NONCE_SIZE));
  nonceAt += NONCE_SIZE;
  return nonce;
}

/** Encrypts the concatenation of parts (passed separately to avoid copying a large payload twice). */
export function seal(key: Buffer, parts: readonly Uint8Array[], aad?: Uint8Array): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) cipher.setAAD(aad);
  const out: Buffer[] = [nonce];
  for (const part of parts) out.push(cipher.update(part));
  out.push(cipher.final(), cipher.getAuthTag());
  return Buffer.concat(out);
}

/** Piece size for sealInto: the cipher's outputs stay small and short-lived. */
const SEAL_PIECE = 64 * 1024;

/**
 * seal() written straight into dest at `at` (dest needs BOX_OVERHEAD + the parts' length bytes from
 * there); returns the bytes written. Saves the box's own allocation and copy on the blob path.
 */
export function sealInto(key: Buffer, parts: readonly Uint8Array[], dest: Buffer, at: number, aad?: Uint8Array): number {
  const start = at;
  const nonce = freshNonce();
  dest.set(nonce, at);
  at += NONCE_SIZE;
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) cipher.setAAD(aad);
  for (const part of parts) {
    for (let i = 0; i < part.length; i += SEAL_PIECE) {
      const out = cipher.update(part.subarray(i, Math.min(part.length, i + SEAL_PIECE)));
      dest.set(out, at);
      at += out.length;
    }
  }
  const tail = cipher.final();
  dest.set(tail, at);
  at += tail.length;
  dest.set(cipher.getAuthTag(), at);
  return at + TAG_SIZE - start;
}

/** The plaintext of a box, or null when it is too short or does not authenticate under key and aad. */
export function open(key: Buffer, box: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (box.length < BOX_OVERHEAD) return null;
  const nonce = box.subarray(0, NONCE_SIZE);
  const tag = box.subarray(box.length - TAG_SIZE);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAuthTag(tag);
  if (aad) decipher.setAAD(aad);
  try {
    const head = decipher.update(box.subarray(NONCE_SIZE, box.length - TAG_SIZE));
    const tail = decipher.final(); // throws when the tag does not match; GCM leaves no tail bytes
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return null;
  }
}
