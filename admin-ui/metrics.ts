import type { NextFunction, Request, Response } from 'express';
import type { Socket } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { hostStatuses } from '../gateway/policy/overview.js';
import type { Policy } from '../gateway/policy/policy.js';
import { operatorSession } from './pages.js';

/**
 * Prometheus metrics: request counts and bytes are counted as requests finish; usage, quotas, last
 * successful backups and snapshot counts are read from policy when Prometheus scrapes. Bytes are
 * counted on the connection (TLS included), as the difference since the connection's last request.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'kura_http_requests_total',
    help: 'Requests by method and status',
    labelNames: ['method', 'status'],
    registers: [this.registry],
  });
  private readonly bytesIn = new Counter({
    name: 'kura_http_received_bytes_total',
    help: 'Bytes received (on the wire)',
    registers: [this.registry],
  });
  private readonly bytesOut = new Counter({
    name: 'kura_http_sent_bytes_total',
    help: 'Bytes sent (on the wire)',
    registers: [this.registry],
  });
  private readonly seen = new WeakMap<Socket, { read: number; written: number }>();
  /** The hosts' statuses of the scrape in progress, shared by the two gauges that read them. */
  private statuses: ReturnType<typeof hostStatuses> | null = null;

  constructor(policy: Policy) {
    const registers = [this.registry];
    // prom-client collects every metric of a scrape at once: the first gauge to ask starts the read,
    // the other gets the same answer, and the next scrape reads afresh.
    const statuses = () => (this.statuses ??= hostStatuses(policy).finally(() => setImmediate(() => (this.statuses = null))));
    new Gauge({
      name: 'kura_user_used_bytes',
      help: "Bytes stored in each user's area",
      labelNames: ['user'],
      registers,
      async collect(this: Gauge<'user'>) {
        this.reset();
        for (const u of await policy.users.list()) this.set({ user: u.name }, await policy.usage.get(u.name));
      },
    });
    new Gauge({
      name: 'kura_user_quota_bytes',
      help: "Each user's quota (users with a contract)",
      labelNames: ['user'],
      registers,
      async collect(this: Gauge<'user'>) {
        this.reset();
        for (const u of await policy.users.list()) {
          const c = await policy.contracts.find(u.name);
          if (c) this.set({ user: u.name }, c.quotaBytes);
        }
      },
    });
    new Gauge({
      name: 'kura_host_last_success_timestamp_seconds',
      help: 'Last successful backup per host (Unix time)',
      labelNames: ['user', 'host'],
      registers,
      async collect(this: Gauge<'user' | 'host'>) {
        this.reset();
        for (const h of await statuses()) if (h.lastSuccess) this.set({ user: h.user, host: h.host }, Date.parse(h.lastSuccess) / 1000);
      },
    });
    new Gauge({
      name: 'kura_snapshots',
      help: 'Snapshots stored per user and host',
      labelNames: ['user', 'host'],
      registers,
      async collect(this: Gauge<'user' | 'host'>) {
        this.reset();
        // The same per-host counts the dashboard uses (hosts known only from the log have none).
        for (const h of await statuses()) if (h.snapshots > 0) this.set({ user: h.user, host: h.host }, h.snapshots);
      },
    });
  }

  /** Counts every request of the gateway (DAV and console) when it finishes. */
  count() {
    return (req: Request, res: Response, next: NextFunction): void => {
      // Taken now: once a connection is torn down, req.socket is null by the time 'close' fires.
      const socket = req.socket as Socket | null;
      res.once('close', () => {
        this.requests.inc({ method: req.method, status: String(res.statusCode) });
        if (socket) this.countBytes(socket);
      });
      next();
    };
  }

  private countBytes(s: Socket): void {
    const before = this.seen.get(s) ?? { read: 0, written: 0 };
    const now = { read: s.bytesRead ?? before.read, written: s.bytesWritten ?? before.written };
    this.bytesIn.inc(Math.max(0, now.read - before.read));
    this.bytesOut.inc(Math.max(0, now.written - before.written));
    this.seen.set(s, now);
  }
}

/**
 * GET /metrics for the operator only: an operator console session, or HTTP Basic with the operator's
 * name and password (what a Prometheus scrape config can send). Users' credentials never open it.
 */
export function metricsEndpoint(policy: Policy, metrics: GatewayMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    void (async () => {
      if (!(await isOperator(policy, req))) {
        res.setHeader('WWW-Authenticate', 'Basic realm="Kura operator", charset="UTF-8"');
        res.status(401).type('text/plain').send('operator-only: the metrics are for the operator (operator password or console session)\n');
        return;
      }
      res.setHeader('Cache-Control', 'no-store');
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    })().catch(next);
  };
}

async function isOperator(policy: Policy, req: Request): Promise<boolean> {
  if (await operatorSession(policy, req)) return true;
  const m = /^basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon > 0 && policy.operators.verify(text.slice(0, colon), text.slice(colon + 1));
}
