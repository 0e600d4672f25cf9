import { Agent } from 'node:https';
import { Readable } from 'node:stream';
import { createClient, type FileStat, type Response, type WebDAVClient } from 'webdav';
import { installGatewayFetch, type GatewayResponse } from './gateway-fetch.js';

/** How the agent reaches its gateway: URL, client certificate and the CA that signed the gateway's. */
export interface GatewayTarget {
  url: string;
  certPem: string;
  keyPem: string;
  caPem?: string;
}

/** A failure talking to the gateway, sorted like restic's backends: retry or stop at once. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** What the backup and restore code needs from the gateway (STYLE.md: callers name the narrow interface). */
export interface Remote {
  getFile(path: string, range?: { start: number; end: number }): Promise<Buffer | null>;
  /**
   * Reads bytes [start, start + dest.length) of path into dest, copying them once (restore fetches
   * most of the repository this way). False when the file does not exist; throws RemoteError. Optional:
   * readRangeInto() falls back on getFile for a Remote without it.
   */
  readRange?(path: string, start: number, dest: Uint8Array): Promise<boolean>;
  putFile(path: string, bytes: Buffer): Promise<void>;
  list(path: string): Promise<string[]>;
  /** The files in a folder with their sizes (PROPFIND Depth 1); empty when the folder does not exist. */
  sizes(path: string): Promise<Map<string, number>>;
  /** The blob index page: entries added after generation `since` of `epoch` (GET /.kura/index?since=N&epoch=E). */
  getIndex(since: number, epoch?: string): Promise<Buffer>;
  /** DELETE (forget, prune; needs the delete right): false when there was nothing to delete. */
  remove(path: string): Promise<boolean>;
  /** MOVE a pack between packs/ and trash/ (prune; needs the delete right). */
  move(from: string, to: string): Promise<void>;
}

/**
 * The gateway over the `webdav` client with a client certificate. Network errors and 5xx other than
 * 507 are retried with exponential backoff; 401, 403, 404 (where absence is not an answer) and 507
 * stop at once with the gateway's own reason.
 */
export class GatewayRemote implements Remote {
  private readonly client: WebDAVClient;
  private readonly base: string;

  constructor(
    target: GatewayTarget,
    private readonly retry = { attempts: 6, baseMs: 250 },
  ) {
    installGatewayFetch();
    const httpsAgent = new Agent({ cert: target.certPem, key: target.keyPem, ca: target.caPem, keepAlive: true, maxSockets: 4 });
    this.base = target.url.replace(/\/+$/, '');
    this.client = createClient(this.base, { httpsAgent, maxBodyLength: Infinity, maxContentLength: Infinity });
  }

  /** The file's bytes (or a byte range of it), or null when it does not exist. */
  async getFile(path: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    const headers: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end}` } : {};
    return this.withRetry(`GET ${path}`, async () => {
      try {
        const data = (await this.client.getFileContents(path, { format: 'binary', headers })) as ArrayBuffer | Buffer;
        return Buffer.isBuffer(data) ? data : Buffer.from(data);
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw err;
      }
    });
  }

  /**
   * The ranged GET goes through the client's customRequest so that the body streams straight into
   * dest: getFileContents would gather it in pieces, join them and copy the join again.
   */
  async readRange(path: string, start: number, dest: Uint8Array): Promise<boolean> {
    const headers = { Range: `bytes=${start}-${start + dest.length - 1}` };
    return this.withRetry(`GET ${path}`, async () => {
      let response: Response;
      try {
        response = await this.client.customRequest(path, { method: 'GET', headers });
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      }
      if (response.status !== 206) {
        discardBody(response);
        throw new RemoteError(`GET ${path}: the gateway answered ${response.status} to a byte range request`, response.status, false);
      }
      await readBodyInto(response, dest, path);
      return true;
    });
  }

  /**
   * Large bodies (packs) go out as a stream of 1 MiB slices of the same buffer: the TLS layer then
   * encrypts slice by slice instead of holding an encrypted copy of the whole pack. Each attempt
   * streams from the start again. The length goes in the headers (the webdav client leaves it out
   * for a stream), so the gateway can refuse a pack over quota before its body travels.
   */
  async putFile(path: string, bytes: Buffer): Promise<void> {
    const body = () => (bytes.length > PUT_SLICE ? Readable.from(slices(bytes, PUT_SLICE), { objectMode: false }) : bytes);
    const headers = { 'Content-Length': String(bytes.length) };
    await this.withRetry(`PUT ${path}`, () => this.client.putFileContents(path, body(), { headers }));
  }

  /** The index page since a generation; with the epoch of the caller's copy, from 0 if it changed since. */
  async getIndex(since: number, epoch?: string): Promise<Buffer> {
    const query = `since=${since}${epoch ? `&epoch=${encodeURIComponent(epoch)}` : ''}`;
    return this.withRetry('GET /.kura/index', async () => {
      const response = await this.client.customRequest('/.kura/index', { method: 'GET', url: `${this.base}/.kura/index?${query}` });
      return Buffer.from(await response.arrayBuffer());
    });
  }

  /** DELETE; false when there was nothing to delete (a retried DELETE that had gone through). */
  async remove(path: string): Promise<boolean> {
    return this.withRetry(`DELETE ${path}`, async () => {
      try {
        await this.client.deleteFile(path);
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      }
    });
  }

  /** MOVE without overwriting (the gateway answers a repeat of a done move with 204). */
  async move(from: string, to: string): Promise<void> {
    await this.withRetry(`MOVE ${from}`, () => this.client.moveFile(from, to, { overwrite: false }));
  }

  /** Names in a folder (PROPFIND Depth 1), empty when the folder does not exist. */
  async list(path: string): Promise<string[]> {
    return (await this.stats(path)).map((i) => i.basename);
  }

  async sizes(path: string): Promise<Map<string, number>> {
    return new Map((await this.stats(path)).filter((i) => i.type === 'file').map((i) => [i.basename, i.size]));
  }

  private async stats(path: string): Promise<FileStat[]> {
    return this.withRetry(`PROPFIND ${path}`, async () => {
      try {
        return (await this.client.getDirectoryContents(path)) as FileStat[];
      } catch (err) {
        if (statusOf(err) === 404) return [];
        throw err;
      }
    });
  }

  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const failure = await classify(what, err);
        if (!failure.retryable || attempt >= this.retry.attempts) throw failure;
        await new Promise((r) => setTimeout(r, this.retry.baseMs * 2 ** (attempt - 1)));
      }
    }
  }
}

/** readRange where the remote has it, else getFile and a copy; the same contract. */
export async function readRangeInto(remote: Remote, path: string, start: number, dest: Uint8Array): Promise<boolean> {
  if (remote.readRange) return remote.readRange(path, start, dest);
  const bytes = await remote.getFile(path, { start, end: start + dest.length - 1 });
  if (!bytes) return false;
  if (bytes.length !== dest.length) throw new RemoteError(`GET ${path}: ${bytes.length} bytes where ${dest.length} were asked`, null, true);
  dest.set(bytes);
  return true;
}

/** The body as a Node stream: the webdav client returns what its transport (gateway-fetch.ts) gave. */
function bodyOf(response: Response): Readable {
  return (response as unknown as GatewayResponse).body;
}

function discardBody(response: Response): void {
  bodyOf(response).destroy();
}

/**
 * Copies a response body into dest as it arrives. A body cut short is a network failure (retried);
 * one longer than asked is not.
 */
async function readBodyInto(response: Response, dest: Uint8Array, path: string): Promise<void> {
  const body = bodyOf(response);
  let at = 0;
  await new Promise<void>((resolve, reject) => {
    body.on('data', (chunk: Buffer) => {
      if (at + chunk.length > dest.length) {
        body.destroy();
        reject(new RemoteError(`GET ${path}: the gateway sent more bytes than the range holds`, response.status, false));
        return;
      }
      dest.set(chunk, at);
      at += chunk.length;
    });
    body.once('error', reject);
    body.once('end', () => (at === dest.length ? resolve() : reject(new Error(`the body ended after ${at} of ${dest.length} bytes`))));
  });
}

const PUT_SLICE = 1 << 20;

function* slices(bytes: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

function statusOf(err: unknown): number | null {
  const status =
    (err as { status?: unknown; response?: { status?: unknown } }).status ?? (err as { response?: { status?: unknown } }).response?.status;
  return typeof status === 'number' ? status : null;
}

async function classify(what: string, err: unknown): Promise<RemoteError> {
  if (err instanceof RemoteError) return err;
  const status = statusOf(err);
  if (status === null) return new RemoteError(`${what}: cannot reach the gateway (${(err as Error).message})`, null, true);
  const response = (err as { response?: { text?: () => Promise<string> } }).response;
  const reason = ((await response?.text?.().catch(() => '')) ?? '').trim() || `HTTP ${status}`;
  const retryable = status >= 500 && status !== 507;
  return new RemoteError(`${what}: the gateway answered ${status}: ${reason}`, status, retryable);
}
