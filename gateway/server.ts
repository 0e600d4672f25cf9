import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { DEFAULT_CIPHERS as tlsDefaultCiphers } from 'node:tls';
import { davHandler } from './dav/router.js';
import { ALLOWED_METHODS } from './dav/handlers/read.js';
import { LockManager } from './dav/locks.js';
import type { Policy } from './policy/policy.js';
import type { TlsMaterial } from './tls.js';
import { consoleRouter } from '../admin-ui/console.js';
import { SnapshotViews } from './dav/snapshots.js';
import { GatewayMetrics, metricsEndpoint } from '../admin-ui/metrics.js';
import { sampleUsage } from './policy/overview.js';

const plainResponse = (status: string, extra: string, text: string) =>
  `HTTP/1.1 ${status}\r\nConnection: close\r\n${extra}Content-Type: text/plain; charset=utf-8\r\n` +
  `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
const BAD_REQUEST = plainResponse('400 Bad Request', '', 'bad-request: the request is not valid HTTP\n');
const UNKNOWN_METHOD = plainResponse('405 Method Not Allowed', `Allow: ${ALLOWED_METHODS}\r\n`, 'method-not-allowed: unknown method\n');

export interface GatewayOptions {
  policy: Policy;
  tls: TlsMaterial;
  host: string;
  port: number;
  logger?: Logger;
}

export interface RunningGateway {
  server: Server;
  url: string;
  port: number;
  close: () => Promise<void>;
}

/**
 * The express application: request log and metrics, health check, the web console under /console/
 * and the operator's /metrics, then the DAV front for everything else. The DAV root only ever holds
 * files/, snapshots/ and .kura/, so the console's paths take nothing from it.
 */
export function createApp(policy: Policy, logger: Logger): express.Express {
  const app = express();
  const metrics = new GatewayMetrics(policy);
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);
  app.use(requestLog(logger));
  app.use(metrics.count());
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', metricsEndpoint(policy, metrics));
  app.get('/console', (req, res, next) => (req.originalUrl === '/console' ? res.redirect(301, '/console/') : next()));
  const views = new SnapshotViews(policy.layout);
  app.use('/console', consoleRouter(policy, views));
  app.use(
    davHandler({
      layout: policy.layout,
      admit: (req, res) => policy.admit(req, res),
      usedBytes: (name) => policy.usage.get(name),
      locks: new LockManager(),
      views,
    }),
  );
  return app;
}

function requestLog(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (req: Request, res: Response) => {
      const id = randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customProps: (_req: Request, res: Response) => ({ user: (res.locals?.user as string | undefined) ?? null }),
    customLogLevel: (_req: Request, res: Response, err?: Error) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url }),
      res: (res: { statusCode: number; headers: Record<string, unknown> }) => ({
        status: res.statusCode,
        bytes: Number(res.headers['content-length'] ?? 0),
      }),
    },
  } as unknown as Parameters<typeof pinoHttp>[0]);
}

/** Standard output for the log; a write that fails (full disk, closed pipe) loses the line, not the gateway. */
function logDestination() {
  const dest = pino.destination({ dest: 1, sync: true });
  dest.on('error', () => undefined);
  return dest;
}

/**
 * Starts the gateway over HTTPS only. Client certificates are requested but not required at the
 * TLS layer (so app-password clients can connect); identity checks `socket.authorized` per request.
 */
export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const logger = opts.logger ?? pino({ level: process.env.KURA_LOG_LEVEL ?? 'info' }, logDestination());
  const app = createApp(opts.policy, logger);
  const server = createServer(
    {
      key: opts.tls.serverKeyPem,
      cert: opts.tls.serverCertPem,
      ca: [opts.tls.clientCaPem],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      // AES-128-GCM first: as safe for this use and measurably faster than AES-256 on bulk transfers.
      ciphers: ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', tlsDefaultCiphers].join(':'),
      honorCipherOrder: true,
    },
    app,
  );
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 30_000;
  server.setTimeout(10 * 60_000);
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    socket.end(err.code === 'HPE_INVALID_METHOD' ? UNKNOWN_METHOD : BAD_REQUEST);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const sampler = startUsageSampler(opts.policy, logger);
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    server,
    port,
    url: `https://${shownHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sampler);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Records every user's usage once at start and then every hour: the daily points of the usage charts. */
function startUsageSampler(policy: Policy, logger: Logger): NodeJS.Timeout {
  const sample = () => void sampleUsage(policy).catch((err: unknown) => logger.warn({ err }, 'could not record the usage samples'));
  sample();
  const timer = setInterval(sample, 3_600_000);
  timer.unref();
  return timer;
}
