import type { Request, Response, Router } from 'express';
import type { Policy } from '../gateway/policy/policy.js';
import { OPERATOR_NAME } from '../gateway/policy/operators.js';
import { KuraError } from '../gateway/errors.js';
import { operatorSession, sendPage, refuseCsrf } from './pages.js';
import { reasonOf } from './errors.js';
import { html, type Html } from './html.js';
import { COOKIE, formField, loginToken, loginTokenMatches, readCookies, sameToken, setCookie } from './security.js';

const SESSION_SECONDS = 12 * 3600;

/** The sign-in and sign-out forms of both areas. */
export function addSignInRoutes(router: Router, policy: Policy): void {
  router.get('/signin', (req, res) => showUserSignIn(req, res, null));
  router.post('/signin', (req, res, next) => void userSignIn(policy, req, res).catch(next));
  router.post('/signout', (req, res, next) => void signOut(policy, req, res, COOKIE.user, '/console/signin').catch(next));
  router.get(
    '/admin/signin',
    (req, res, next) =>
      void operatorSession(policy, req)
        .then((op) => (op ? res.redirect(303, '/console/admin/') : showOperatorSignIn(req, res, null)))
        .catch(next),
  );
  router.post('/admin/signin', (req, res, next) => void operatorSignIn(policy, req, res).catch(next));
  router.post('/admin/signout', (req, res, next) => void signOut(policy, req, res, COOKIE.operator, '/console/admin/signin').catch(next));
}

function signInForm(req: Request, res: Response, action: string, nameField: Html, passwordLabel: string, hint: Html): Html {
  return html`<form method="post" action="${action}" class="stack">
      <input type="hidden" name="_csrf" value="${loginToken(req, res)}" />
      ${nameField}
      <label for="password">${passwordLabel}</label
      ><input id="password" name="password" type="password" autocomplete="current-password" required />
      <div class="actions"><button>Sign in</button></div>
    </form>
    <p class="muted small">${hint}</p>`;
}

function showUserSignIn(req: Request, res: Response, error: string | null, status = 200): void {
  const form = signInForm(
    req,
    res,
    '/console/signin',
    html`<label for="name">User name</label
      ><input id="name" name="name" type="text" autocomplete="username" required value="${formField(req, 'name') ?? ''}" />`,
    'App password',
    html`With your client certificate installed in the browser, you are signed in without this form: open
      <a href="/console/">the console</a> and choose the certificate. Operators sign in on
      <a href="/console/admin/signin">the operator's page</a>.`,
  );
  sendPage(res, { title: 'Sign in to your backups', status, body: html`<section class="card signin">${form}</section>` }, [], {
    flash: error ? { kind: 'error', text: error } : null,
  });
}

function showOperatorSignIn(req: Request, res: Response, error: string | null, status = 200): void {
  const form = signInForm(
    req,
    res,
    '/console/admin/signin',
    html`<label for="name">Operator</label
      ><input id="name" name="name" type="text" autocomplete="username" required value="${OPERATOR_NAME}" />`,
    'Operator password',
    html`The operator password was printed when the gateway first started. <code>kura admin operator-password</code> sets a new one.`,
  );
  sendPage(res, { title: 'Operator sign-in', status, body: html`<section class="card signin">${form}</section>` }, [], {
    flash: error ? { kind: 'error', text: error } : null,
  });
}

async function userSignIn(policy: Policy, req: Request, res: Response): Promise<void> {
  if (!loginTokenMatches(req)) return refuseCsrf(res, []);
  try {
    const principal = await policy.identity.signInUser(req, res);
    const { token } = await policy.consoleSessions.start('user', principal.user.name);
    setCookie(res, COOKIE.user, token, SESSION_SECONDS);
    res.redirect(303, '/console/');
  } catch (err) {
    if (!(err instanceof KuraError)) throw err;
    const text = err.code === 'bad-credentials' ? 'The user name or app password is wrong.' : reasonOf(err);
    showUserSignIn(req, res, text, err.code === 'bad-credentials' ? 401 : 403);
  }
}

async function operatorSignIn(policy: Policy, req: Request, res: Response): Promise<void> {
  if (!loginTokenMatches(req)) return refuseCsrf(res, []);
  try {
    await policy.identity.signInOperator(req, res);
  } catch (err) {
    if (!(err instanceof KuraError)) throw err;
    return showOperatorSignIn(req, res, 'The operator password is wrong.', 401);
  }
  const { token } = await policy.consoleSessions.start('operator', null);
  setCookie(res, COOKIE.operator, token, SESSION_SECONDS);
  res.redirect(303, '/console/admin/');
}

/** Ends the session of the cookie when the form carries that session's CSRF token. */
async function signOut(policy: Policy, req: Request, res: Response, cookie: string, to: string): Promise<void> {
  const token = readCookies(req).get(cookie);
  const session = token ? await policy.consoleSessions.find(token) : undefined;
  if (token && session) {
    if (!sameToken(formField(req, '_csrf'), session.csrf)) return refuseCsrf(res, []);
    await policy.consoleSessions.end(token);
  }
  setCookie(res, cookie, null);
  res.redirect(303, to);
}
