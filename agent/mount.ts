import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveView, type PreviewMaker, type ViewServer } from '../browse/dav.js';
import { BrowseError } from '../browse/errors.js';
import { sendBrowseError } from '../browse/http.js';
import { SnapshotView } from '../browse/view.js';
import { RemoteSnapshotSource } from './mount-source.js';
import type { Repository } from './repository.js';

export interface MountOptions {
  /** 0 for a free port. */
  port: number;
  previews?: PreviewMaker;
  /** Called after each request (for a log line). */
  onRequest?: (method: string, path: string, status: number) => void;
}

export interface RunningMount {
  /** http://127.0.0.1:<port>/<token>/: the snapshots' root (one folder per host). */
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * `kura mount`: the user's snapshots as a read-only WebDAV server on 127.0.0.1, decrypted on this PC
 * (the key stays in this process; only ciphertext crosses the network). Plain HTTP, on the loopback
 * address only. Two guards against other programs on the same PC: every path starts with a random
 * token (another local user, or a web page, cannot guess the URL), and a Host header that is not a
 * loopback name is refused (a web page cannot reach the server by DNS rebinding).
 */
export async function startMount(repo: Repository, opts: MountOptions): Promise<RunningMount> {
  const token = randomBytes(12).toString('base64url');
  const server: ViewServer = { view: new SnapshotView(new RemoteSnapshotSource(repo)), base: [token], previews: opts.previews };
  const http = createServer((req, res) => {
    void handle(server, token, req, res)
      .catch((err: unknown) => sendBrowseError(res, err))
      .finally(() => opts.onRequest?.(req.method ?? '', req.url ?? '', res.statusCode));
  });
  http.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${token}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

async function handle(server: ViewServer, token: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  if (!LOOPBACK_HOSTS.includes(host))
    throw new BrowseError('bad-request', 'bad-request: this server answers only to 127.0.0.1 and localhost');
  const segs = pathSegments(req.url ?? '/');
  // Windows' WebDAV client asks OPTIONS of the server's root before it maps a folder below it: it reveals nothing.
  if (segs[0] !== token && req.method !== 'OPTIONS') throw new BrowseError('not-found', 'not-found: open the address `kura mount` printed');
  await serveView(server, req, res, segs.slice(1));
}

/** The URL path as decoded segments, NFC; refuses `.`, `..`, encoded separators and invalid UTF-8 like the gateway. */
function pathSegments(url: string): string[] {
  const raw = (url.split('?')[0] ?? '').split('/').filter((s) => s !== '');
  return raw.map((s) => {
    let name: string;
    try {
      if (/%(2f|5c|00)/i.test(s)) throw new Error('encoded separator');
      name = decodeURIComponent(s).normalize('NFC');
    } catch {
      throw new BrowseError('bad-request', 'bad-request: the path is not valid percent-encoded UTF-8');
    }
    if (name === '.' || name === '..' || /[\u0000-\u001f\\]/.test(name))
      throw new BrowseError('bad-request', 'bad-request: bad path segment');
    return name;
  });
}
