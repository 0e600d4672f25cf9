import type { Response } from 'express';
import { BrowseError } from '../../browse/errors.js';
import { KuraError, type KuraErrorCode } from '../errors.js';
import { sendXml } from '../../browse/multistatus.js';

const STATUS: Record<KuraErrorCode, number> = {
  'credentials-required': 401,
  'bad-credentials': 401,
  'certificate-not-trusted': 403,
  'certificate-expired': 403,
  'certificate-not-yet-valid': 403,
  'certificate-not-for-client-auth': 403,
  'certificate-revoked': 403,
  'certificate-unknown': 403,
  'user-disabled': 403,
  'contract-missing': 403,
  'contract-not-yet-valid': 403,
  'contract-expired': 403,
  'contract-suspended': 403,
  'contract-cancelled': 403,
  'access-limit-reached': 403,
  'snapshot-limit-reached': 403,
  forbidden: 403,
  'read-only': 403,
  'propfind-finite-depth': 403,
  'bad-request': 400,
  'bad-path': 400,
  'bad-xml': 400,
  'upload-aborted': 400,
  'body-too-large': 413,
  'not-found': 404,
  conflict: 409,
  'not-a-collection': 409,
  exists: 405,
  'method-not-allowed': 405,
  'unsupported-media-type': 415,
  locked: 423,
  'precondition-failed': 412,
  'range-not-satisfiable': 416,
  'quota-exceeded': 507,
  'bad-gateway-destination': 502,
};

/**
 * The HTTP status for an error: its code's status for a KuraError or a BrowseError (the snapshot view),
 * 507 when the gateway's own disk (or the file system quota of its data) is full, 500 for anything else.
 */
export function statusOf(err: unknown): number {
  if (err instanceof BrowseError) return err.status;
  if (err instanceof KuraError) return STATUS[err.code];
  return isStorageFull(err) ? 507 : 500;
}

/**
 * ENOSPC or EDQUOT from the file system: RFC 4918's 507 (Insufficient Storage), which an agent takes as
 * final instead of retrying. The writes that failed leave no temp file behind (FileArea, DeadProps).
 */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

const STORAGE_FULL = "insufficient-storage: the gateway's disk is full; its operator must free space before this can be stored";

/**
 * Sends the error as a response a person can read: the status, and a plain-text body starting with
 * the stable code. 401 carries a Basic challenge (never Digest); finite-depth has RFC 4918's XML.
 */
export function sendError(res: Response, err: unknown, requestId: string): void {
  const status = statusOf(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="Kura", charset="UTF-8"');
  const size = err instanceof BrowseError ? err.size : (err as KuraError & { size?: number }).size;
  if (size !== undefined && (err as { code?: string }).code === 'range-not-satisfiable') res.setHeader('Content-Range', `bytes */${size}`);
  if ((err instanceof KuraError || err instanceof BrowseError) && err.code === 'propfind-finite-depth') {
    sendXml(res, status, '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n');
    return;
  }
  const reason =
    err instanceof KuraError || err instanceof BrowseError
      ? err.message
      : status === 507
        ? STORAGE_FULL
        : `internal-error: something went wrong on the server (request ${requestId})`;
  const body = reason + '\n';
  res.status(status);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
