/**
 * What went wrong with a piece of the backup format. The code is stable (callers branch on it and the
 * gateway maps it to a refusal); the message is for a person.
 */
export type FormatErrorCode =
  /** A pack's header, trailer or layout is wrong. */
  | 'bad-pack'
  /** A blob is malformed, too large, or does not hash to its id. */
  | 'bad-blob'
  /** AES-GCM authentication failed: wrong key or passphrase, or the ciphertext was altered. */
  | 'wrong-key'
  /** A key file, wrapped key, config, snapshot or index record is malformed. */
  | 'bad-record'
  /** A tree blob is malformed or breaks a tree rule. */
  | 'bad-tree';

export class FormatError extends Error {
  constructor(
    readonly code: FormatErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FormatError';
  }
}

/** True when err is a FormatError, with the given code if one is named. */
export function isFormatError(err: unknown, code?: FormatErrorCode): err is FormatError {
  return err instanceof FormatError && (code === undefined || err.code === code);
}
