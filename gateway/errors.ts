/**
 * Typed errors with stable codes, shared by every gateway layer. They carry no HTTP status: the
 * protocol edge (gateway/dav/http-errors.ts) is the one place that maps a code to a status.
 */
export type KuraErrorCode =
  // identity
  | 'credentials-required'
  | 'certificate-not-trusted'
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'certificate-not-for-client-auth'
  | 'certificate-revoked'
  | 'certificate-unknown'
  | 'bad-credentials'
  | 'user-disabled'
  // contracts
  | 'contract-missing'
  | 'contract-not-yet-valid'
  | 'contract-expired'
  | 'contract-suspended'
  | 'contract-cancelled'
  | 'access-limit-reached'
  | 'snapshot-limit-reached'
  // requests and storage
  | 'bad-request'
  | 'bad-path'
  | 'bad-xml'
  | 'body-too-large'
  | 'not-found'
  | 'conflict'
  | 'exists'
  | 'not-a-collection'
  | 'forbidden'
  | 'propfind-finite-depth'
  | 'read-only'
  | 'locked'
  | 'precondition-failed'
  | 'range-not-satisfiable'
  | 'quota-exceeded'
  | 'method-not-allowed'
  | 'unsupported-media-type'
  | 'bad-gateway-destination'
  | 'upload-aborted';

export class KuraError extends Error {
  constructor(
    readonly code: KuraErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KuraError';
  }
}
