/** Why a request to the snapshot view failed: a stable code and the HTTP status it maps to. */
export type BrowseErrorCode =
  | 'not-found'
  | 'read-only'
  | 'propfind-finite-depth'
  | 'bad-request'
  | 'bad-xml'
  | 'body-too-large'
  | 'method-not-allowed'
  | 'precondition-failed'
  | 'range-not-satisfiable'
  | 'unsupported-media-type'
  | 'unprocessable-image'
  | 'snapshot-damaged';

const STATUS: Record<BrowseErrorCode, number> = {
  'not-found': 404,
  'read-only': 403,
  'propfind-finite-depth': 403,
  'bad-request': 400,
  'bad-xml': 400,
  'body-too-large': 413,
  'method-not-allowed': 405,
  'precondition-failed': 412,
  'range-not-satisfiable': 416,
  'unsupported-media-type': 415,
  'unprocessable-image': 422,
  'snapshot-damaged': 500,
};

/** The one reason every write into /snapshots/ is refused with. */
export const READ_ONLY_REASON = 'read-only: snapshots are read-only';

export class BrowseError extends Error {
  readonly status: number;

  constructor(
    readonly code: BrowseErrorCode,
    message: string,
    /** For range-not-satisfiable: the file's size, sent as Content-Range: bytes *\/size. */
    readonly size?: number,
  ) {
    super(message);
    this.name = 'BrowseError';
    this.status = STATUS[code];
  }
}

export function readOnly(): BrowseError {
  return new BrowseError('read-only', READ_ONLY_REASON);
}
