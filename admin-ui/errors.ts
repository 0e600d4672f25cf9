import { BrowseError } from '../browse/errors.js';
import { KuraError } from '../gateway/errors.js';
import { statusOf } from '../gateway/dav/http-errors.js';

/** A refusal as a person reads it on a page: the reason without its stable code prefix. */
export function reasonOf(err: unknown): string {
  if (!(err instanceof KuraError) && !(err instanceof BrowseError))
    return 'Something went wrong on the server; the gateway log has the details.';
  const text = err.message.startsWith(`${err.code}: `) ? err.message.slice(err.code.length + 2) : err.message;
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?)]$/.test(text) ? '' : '.');
}

/** The status of a refusal: the same mapping as the DAV front (one place), 500 for anything unexpected. */
export function consoleStatus(err: unknown): number {
  return statusOf(err);
}
