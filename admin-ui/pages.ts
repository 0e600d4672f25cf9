import type { Request, RequestHandler, Response } from 'express';
import type { TLSSocket } from 'node:tls';
import type { Policy } from '../gateway/policy/policy.js';
import type { ConsoleSession } from '../gateway/policy/console-sessions.js';
import { KuraError } from '../gateway/errors.js';
import type { OperatorCtx, Shown, UserCtx } from './context.js';
import { consoleStatus, reasonOf } from './errors.js';
import { html, page } from './html.js';
import { COOKIE, readCookies, sameToken, setCookie, setFlash, takeFlash, formField } from './security.js';

/** The page and form wrappers of both areas: who is signed in, the layout around a page, refusals. */

export const OPERATOR_NAV = [
  ['/console/admin/', 'Dashboard'],
  ['/console/admin/users', 'Users'],
  ['/console/admin/certificates', 'Certificates'],
  ['/console/admin/usage', 'Usage'],
  ['/console/admin/log', 'Backup log'],
] as const;
export const USER_NAV = [
  ['/console/', 'Overview'],
  ['/console/log', 'Backup log'],
  ['/console/snapshots', 'Hosts & snapshots'],
  ['/console/files/', 'Files'],
  ['/console/mount', 'Mount'],
] as const;

/** Sends a whole page around `shown`, with the navigation of its area. */
const AREA_HOMES = ['/console/', '/console/admin/'];

export function sendPage(
  res: Response,
  shown: Shown,
  nav: readonly (readonly [string, string])[],
  extra: { who?: string; signOut?: { action: string; csrf: string }; flash?: { kind: 'ok' | 'error'; text: string } | null } = {},
): void {
  const current = res.req.originalUrl.split('?')[0] ?? '';
  const items = nav.map(([href, label]) => ({
    href,
    label,
    // A section is current on its own pages too (a user's page under Users, a folder under Files);
    // the two overviews only on themselves.
    current: href === current || (!AREA_HOMES.includes(href) && current.startsWith(href)),
  }));
  res
    .status(shown.status ?? 200)
    .type('html')
    .send(page({ title: shown.title, nav: items, body: shown.body, ...extra }));
}

/** The operator's session, or null. */
export async function operatorSession(policy: Policy, req: Request): Promise<{ token: string; session: ConsoleSession } | null> {
  const token = readCookies(req).get(COOKIE.operator);
  if (!token) return null;
  const session = await policy.consoleSessions.find(token);
  return session?.kind === 'operator' ? { token, session } : null;
}

/** The signed-in user: an app-password session first, else the browser's client certificate. Null when neither. */
export async function userOf(policy: Policy, req: Request, res: Response): Promise<Omit<UserCtx, 'req' | 'res' | 'policy'> | null> {
  const token = readCookies(req).get(COOKIE.user);
  const session = token ? await policy.consoleSessions.find(token) : undefined;
  if (session?.kind === 'user' && session.user) {
    const user = await policy.users.get(session.user);
    if (user.disabled) {
      // The session ends with the account: enabling the user again needs a new sign-in.
      await policy.consoleSessions.end(token as string);
      setCookie(res, COOKIE.user, null);
      throw new KuraError('user-disabled', `user-disabled: user ${user.name} is disabled`);
    }
    return { user, via: 'app-password', session };
  }
  const socket = req.socket as TLSSocket;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
  if (peer && Object.keys(peer).length > 0) {
    const principal = await policy.identity.authenticate(req, res);
    return { user: principal.user, via: 'certificate', session: null };
  }
  return null;
}

type OperatorPage = (ctx: OperatorCtx) => Promise<Shown>;
/** What a form did: redirect with a message (the usual post/redirect/get), or show a report page (a check's result). */
type OperatorAction = (ctx: OperatorCtx) => Promise<{ redirect: string; flash?: string } | { show: Shown }>;

/** A GET page of the operator's area: sign-in required, the page rendered with the operator's navigation. */
export function operatorPage(policy: Policy, render: OperatorPage): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const op = await operatorSession(policy, req);
      if (!op) return refuseOperator(policy, req, res);
      const flash = takeFlash(req, res);
      const ctx: OperatorCtx = { req, res, policy, session: op.session };
      await showOperator(ctx, render, flash);
    })().catch(next);
  };
}

async function showOperator(ctx: OperatorCtx, render: OperatorPage, flash: { kind: 'ok' | 'error'; text: string } | null): Promise<void> {
  let shown: Shown;
  try {
    shown = await render(ctx);
  } catch (err) {
    shown = {
      title: 'Not available',
      status: consoleStatus(err),
      body: html`<p>${reasonOf(err)}</p>
        <p><a href="/console/admin/">Back to the dashboard</a></p>`,
    };
  }
  if (ctx.res.headersSent) return;
  sendPage(ctx.res, shown, OPERATOR_NAV, {
    who: 'operator',
    signOut: { action: '/console/admin/signout', csrf: ctx.session.csrf },
    flash,
  });
}

/**
 * A form POST of the operator's area: session and CSRF token checked first; on success a redirect
 * with a message (post/redirect/get); on a refusal the page `onError` again, with the reason and the
 * refusal's status, so nothing is lost and nothing half-done is left.
 */
export function operatorAction(policy: Policy, act: OperatorAction, onError: OperatorPage): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const op = await operatorSession(policy, req);
      if (!op) return refuseOperator(policy, req, res);
      if (!sameToken(formField(req, '_csrf'), op.session.csrf)) return refuseCsrf(res, OPERATOR_NAV);
      const ctx: OperatorCtx = { req, res, policy, session: op.session };
      try {
        const done = await act(ctx);
        if (res.headersSent) return;
        if ('show' in done) return await showOperator(ctx, async () => done.show, null);
        if (done.flash) setFlash(res, 'ok', done.flash);
        res.redirect(303, done.redirect);
      } catch (err) {
        if (!(err instanceof KuraError)) throw err;
        const status = consoleStatus(err);
        await showOperator(ctx, async (c) => ({ ...(await onError(c)), status }), { kind: 'error', text: reasonOf(err) });
      }
    })().catch(next);
  };
}

/** Not signed in as the operator: a user gets 403 (this is not their page), anyone else the sign-in form. */
async function refuseOperator(policy: Policy, req: Request, res: Response): Promise<void> {
  const signedInUser = await userOf(policy, req, res).catch(() => null);
  if (signedInUser) {
    sendPage(
      res,
      {
        title: 'Not your page',
        status: 403,
        body: html`<p>
            This page belongs to the operator's console. You are signed in as <strong>${signedInUser.user.name}</strong>, and a user never
            sees another user's data or the operator's pages.
          </p>
          <p>
            <a href="/console/">Go to your overview</a> · operators sign in on <a href="/console/admin/signin">the operator's page</a>
          </p>`,
      },
      USER_NAV,
    );
    return;
  }
  if (req.method === 'GET') res.redirect(303, `/console/admin/signin`);
  else
    sendPage(
      res,
      {
        title: 'Signed out',
        status: 401,
        body: html`<p>
            This form needs the operator to be signed in, and no operator session came with it (it ended, or the form was sent from another
            site). Nothing was changed.
          </p>
          <p><a href="/console/admin/signin">Sign in</a></p>`,
      },
      [],
    );
}

export function refuseCsrf(res: Response, nav: readonly (readonly [string, string])[]): void {
  sendPage(
    res,
    {
      title: 'Form refused',
      status: 403,
      body: html`<p>
        This form was not sent from a page of this console (its security token is missing or wrong), so nothing was changed. Reload the page
        and try again.
      </p>`,
    },
    nav,
  );
}

type UserPage = (ctx: UserCtx) => Promise<Shown>;

/**
 * A page of the user's area: the user is who signed in (session or certificate); without either the
 * sign-in form. A handler may answer itself (a download) instead of returning a page.
 */
export function userPage(policy: Policy, render: UserPage): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      let who: Awaited<ReturnType<typeof userOf>>;
      try {
        who = await userOf(policy, req, res);
      } catch (err) {
        return sendPage(
          res,
          {
            title: 'Access refused',
            status: consoleStatus(err),
            body: html`<p>${reasonOf(err)}</p>
              <p>Nothing of your account is shown. If this is unexpected, ask your operator. <a href="/console/signin">Sign in</a></p>`,
          },
          [],
        );
      }
      if (!who) return res.redirect(303, '/console/signin');
      const ctx: UserCtx = { req, res, policy, ...who };
      let shown: Shown;
      try {
        shown = await render(ctx);
      } catch (err) {
        if (res.headersSent) return void res.destroy();
        shown = { title: 'Not available', status: consoleStatus(err), body: html`<p>${reasonOf(err)}</p>` };
      }
      if (res.headersSent) return;
      sendPage(res, shown, USER_NAV, {
        who: `${who.user.name}${who.via === 'certificate' ? ' (certificate)' : ''}`,
        signOut: who.session ? { action: '/console/signout', csrf: who.session.csrf } : undefined,
        flash: takeFlash(req, res),
      });
    })().catch(next);
  };
}
