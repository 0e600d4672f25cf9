import { STATUS_CODES } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Agent, getGlobalDispatcher, request, type Dispatcher } from 'undici';
import { getPatcher } from 'webdav';

/**
 * The `webdav` client's transport: undici's request in place of node-fetch, installed through the
 * client's own patch point (webdav's `getPatcher()`, key "fetch"). Every request is still built,
 * authenticated and checked by the webdav client; only the bytes travel differently.
 *
 * Why: node-fetch (under the webdav client in Node) passes every 16 KiB of a response through a
 * PassThrough and a socket listener of its own. Receiving the benchmark's 890 MB of packs by ranged
 * GETs of 8 MiB, 6 at a time, cost the receiving thread 2.8 to 3.2 s of user CPU through the webdav
 * client on node-fetch, against 1.5 to 1.8 s on this transport (3 alternated rounds): the restore is
 * CPU-bound on two cores, and that thread also feeds the decode workers. The price is start-up:
 * undici's module costs every `kura` command some tens of milliseconds more to load.
 *
 * The connection settings stay on the https.Agent given to createClient (certificate, key, CA,
 * sockets per gateway): each such agent gets one undici Agent made from its options.
 */
export function installGatewayFetch(): void {
  if (installed) return;
  installed = true;
  getPatcher().patch('fetch', (url: unknown, init: unknown) => gatewayFetch(String(url), (init ?? {}) as FetchInit));
}

let installed = false;
const dispatchers = new WeakMap<HttpsAgent, Dispatcher>();

/** What the webdav client passes to fetch (its getFetchOptions). */
interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | ArrayBuffer | Readable;
  signal?: AbortSignal;
  agent?: (url: URL) => HttpsAgent | undefined;
}

/**
 * The parts of a fetch Response the webdav client and agent/remote.ts read. The body is undici's
 * Node stream, as node-fetch's was, so a ranged GET copies straight into its destination.
 */
export interface GatewayResponse {
  status: number;
  statusText: string;
  ok: boolean;
  url: string;
  headers: Headers;
  body: Readable;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  json(): Promise<unknown>;
}

async function gatewayFetch(url: string, init: FetchInit = {}): Promise<GatewayResponse> {
  const target = new URL(url);
  const body = init.body instanceof ArrayBuffer ? Buffer.from(init.body) : init.body;
  const res = await request(target, {
    method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: init.headers,
    body: body ?? null,
    signal: init.signal,
    dispatcher: dispatcherFor(init.agent?.(target)),
  });
  const status = res.statusCode;
  return {
    status,
    statusText: STATUS_CODES[status] ?? '',
    ok: status >= 200 && status < 300,
    url,
    headers: headersOf(res.headers),
    body: res.body,
    text: () => res.body.text(),
    arrayBuffer: () => res.body.arrayBuffer(),
    json: () => res.body.json(),
  };
}

/** One undici Agent per https.Agent, with its TLS settings and socket limit; the default without one. */
function dispatcherFor(agent: HttpsAgent | undefined): Dispatcher {
  if (!agent) return getGlobalDispatcher();
  let dispatcher = dispatchers.get(agent);
  if (!dispatcher) {
    const { cert, key, ca, rejectUnauthorized, servername } = (agent as HttpsAgent & { options: ConnectionOptions }).options;
    const connections = Number.isFinite(agent.maxSockets) ? agent.maxSockets : null;
    dispatcher = new Agent({ connect: { cert, key, ca, rejectUnauthorized, servername }, connections });
    dispatchers.set(agent, dispatcher);
  }
  return dispatcher;
}

function headersOf(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
  }
  return headers;
}
