import type { Request, Response } from 'express';
import type { Policy } from '../gateway/policy/policy.js';
import type { ConsoleSession } from '../gateway/policy/console-sessions.js';
import type { UserRecord } from '../gateway/policy/records.js';
import type { Html } from './html.js';

/** A request on the operator's pages, after the operator session was checked. */
export interface OperatorCtx {
  req: Request;
  res: Response;
  policy: Policy;
  session: ConsoleSession;
}

/** A request on a user's pages: the user comes from the session or the certificate, never from the URL. */
export interface UserCtx {
  req: Request;
  res: Response;
  policy: Policy;
  user: UserRecord;
  via: 'certificate' | 'app-password';
  /** The app-password session; null when the browser presented the user's certificate. */
  session: ConsoleSession | null;
}

/** What a page handler returns: its title and body (the layout is added around it), and a status. */
export interface Shown {
  title: string;
  body: Html;
  status?: number;
}

/** The query string of a request (express's own query parser is off for the whole gateway). */
export function queryOf(req: Request): URLSearchParams {
  return new URL(req.originalUrl, 'https://console.invalid').searchParams;
}
