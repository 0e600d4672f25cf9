import { Agent } from 'node:https';
import { createClient, type FileStat, type WebDAVClient } from 'webdav';

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
  putFile(path: string, bytes: Buffer): Promise<void>;
  list(path: string): Promise<string[]>;
  /** The blob index page: entries added after generation `since` (GET /.kura/index?since=N). */
  getIndex(since: number): Promise<Buffer>;
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

  async putFile(path: string, bytes: Buffer): Promise<void> {
    await this.withRetry(`PUT ${path}`, () => this.client.putFileContents(path, bytes, { contentLength: bytes.length }));
  }

  async getIndex(since: number): Promise<Buffer> {
    return this.withRetry('GET /.kura/index', async () => {
      const response = await this.client.customRequest('/.kura/index', { method: 'GET', url: `${this.base}/.kura/index?since=${since}` });
      return Buffer.from(await response.arrayBuffer());
    });
  }

  /** Names in a folder (PROPFIND Depth 1), empty when the folder does not exist. */
  async list(path: string): Promise<string[]> {
    return this.withRetry(`PROPFIND ${path}`, async () => {
      try {
        const items = (await this.client.getDirectoryContents(path)) as FileStat[];
        return items.map((i) => i.basename);
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
