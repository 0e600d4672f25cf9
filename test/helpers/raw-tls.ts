import { connect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestGateway, TestUser } from './gateway.js';

/** One HTTP response as read off the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A hand-driven HTTP/1.1 connection over TLS, for what a well-behaved client never sends: bodies
 * that stop halfway, lengths that are lies, chunked uploads, clients that vanish.
 */
export interface RawConnection {
  socket: TLSSocket;
  /** Status codes of interim (1xx) responses seen so far, e.g. 100 for `100 Continue`. */
  interim: number[];
  /** Writes bytes; resolves once the socket has taken them (rejects when it is gone). */
  write(data: string | Buffer): Promise<void>;
  /** The next final (non-1xx) response; rejects when the server closes first or after timeoutMs. */
  nextResponse(timeoutMs?: number): Promise<RawResponse>;
  /** Resolves when the connection has closed (by either side). */
  closed: Promise<void>;
  destroy(): void;
}

/** Where to connect: a TestGateway or anything else with its port and CA. */
export type RawTarget = Pick<TestGateway, 'port' | 'caPem'>;

/** Opens a TLS connection to the gateway, presenting the user's client certificate. */
export async function rawConnect(gw: RawTarget, user: Pick<TestUser, 'certPem' | 'keyPem'>): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port: gw.port, ca: gw.caPem, cert: user.certPem, key: user.keyPem });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return wrap(socket);
}

function wrap(socket: TLSSocket): RawConnection {
  let buffer: Buffer = Buffer.alloc(0);
  let ended = false;
  const interim: number[] = [];
  const finals: RawResponse[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    buffer = drainResponses(buffer, interim, finals);
    wake();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => {
    ended = true;
    wake();
  });
  const nextResponse = (timeoutMs = 10_000) =>
    new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const next = finals.shift();
        if (next) resolve(next);
        else if (ended) reject(new Error('the server closed the connection without a response'));
        else return void waiters.push(check);
        clearTimeout(timer);
      };
      check();
    });
  const write = (data: string | Buffer) =>
    new Promise<void>((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
  return { socket, interim, write, nextResponse, closed, destroy: () => socket.destroy() };
}

/** Parses every complete response at the front of buffer; returns what is left. */
function drainResponses(buffer: Buffer, interim: number[], finals: RawResponse[]): Buffer {
  for (;;) {
    const headEnd = buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return buffer;
    const [statusLine = '', ...lines] = buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = status >= 200 && status !== 204 && status !== 304 ? Number(headers['content-length'] ?? 0) : 0;
    const end = headEnd + 4 + length;
    if (buffer.length < end) return buffer;
    const body = buffer.subarray(headEnd + 4, end).toString('utf8');
    if (status < 200) interim.push(status);
    else finals.push({ status, headers, body });
    buffer = buffer.subarray(end);
  }
}

/** The head of a request: request line, Host, the given headers, and the blank line. */
export function requestHead(
  gw: Pick<TestGateway, 'port'>,
  method: string,
  path: string,
  headers: Record<string, string | number> = {},
): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${gw.port}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** One chunk of a chunked body (an empty data gives the final zero-length chunk). */
export function chunk(data: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

/** Sends data as a chunked body in pieces of chunkSize, stopping quietly if the server hangs up. */
export async function sendChunked(conn: RawConnection, data: Buffer, chunkSize = 64 * 1024, finish = true): Promise<boolean> {
  try {
    for (let off = 0; off < data.length; off += chunkSize) await conn.write(chunk(data.subarray(off, off + chunkSize)));
    if (finish) await conn.write(chunk(''));
    return true;
  } catch {
    return false;
  }
}

/** One complete request with a Content-Length body on a fresh connection; rejects after timeoutMs. */
export async function rawRequest(
  gw: RawTarget,
  user: Pick<TestUser, 'certPem' | 'keyPem'>,
  head: { method: string; path: string; headers?: Record<string, string | number> },
  body: string | Buffer = '',
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const conn = await rawConnect(gw, user);
  try {
    const headers = { ...(head.headers ?? {}), 'Content-Length': Buffer.byteLength(body) };
    await conn.write(Buffer.concat([Buffer.from(requestHead(gw, head.method, head.path, headers)), Buffer.from(body)]));
    return await conn.nextResponse(timeoutMs);
  } finally {
    conn.destroy();
  }
}

/** Polls check every 20 ms until it holds or timeoutMs passes; returns whether it held. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return false;
}
