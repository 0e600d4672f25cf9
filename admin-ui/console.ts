import express, { type NextFunction, type Request, type Response } from 'express';
import type { Policy } from '../gateway/policy/policy.js';
import { SnapshotViews } from '../gateway/dav/snapshots.js';
import { KuraError } from '../gateway/errors.js';
import { consoleStatus, reasonOf } from './errors.js';
import { html } from './html.js';
import { sendPage } from './pages.js';
import { securityHeaders } from './security.js';
import { CONSOLE_CSS } from './style.js';
import { addOperatorRoutes } from './operator-pages.js';
import { addUserRoutes } from './user-pages.js';
import { addSignInRoutes } from './sign-in.js';

/**
 * The web console, mounted by the gateway at /console: the user's pages at /console/ (signed in with
 * the client certificate or an app password), the operator's at /console/admin/ (the operator
 * password; a user credential never opens them). Pages are rendered on the server and need no script.
 */
export function consoleRouter(policy: Policy, views: SnapshotViews = new SnapshotViews(policy.layout)): express.Router {
  const router = express.Router({ strict: true });
  router.use(securityHeaders);
  router.get('/static/console.css', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('text/css').send(CONSOLE_CSS);
  });
  router.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }));
  addSignInRoutes(router, policy);
  addOperatorRoutes(router, policy);
  addUserRoutes(router, policy, views);
  router.use((req: Request, res: Response) => {
    sendPage(
      res,
      {
        title: 'Page not found',
        status: 404,
        body: html`<p>There is no page at <code>${req.originalUrl.slice(0, 200)}</code>.</p>
          <p><a href="/console/">Go to your overview</a></p>`,
      },
      [],
    );
  });
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, text } = describeFailure(err);
    if (!res.headersSent) sendPage(res, { title: 'Something went wrong', status, body: html`<p>${text}</p>` }, []);
    else res.destroy();
  });
  return router;
}

/** A failure no page caught: a form body the parser refused (too large, too many fields, malformed), or a bug. */
function describeFailure(err: unknown): { status: number; text: string } {
  if (err instanceof KuraError) return { status: consoleStatus(err), text: reasonOf(err) };
  const parser = err as { status?: number; type?: string; expose?: boolean };
  if (parser.expose && typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500) {
    const text =
      parser.type === 'entity.too.large' || parser.type === 'parameters.too.many'
        ? 'The form was larger than this console accepts; nothing was changed.'
        : 'The form could not be read; nothing was changed.';
    return { status: parser.status, text };
  }
  return { status: 500, text: reasonOf(err) };
}
