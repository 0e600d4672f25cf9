import { createHash } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { TestGateway, TestUser } from './gateway.js';

/** Helpers for the identity, contract and hostile-path e2e tests. */

/** What a folder tree holds: relative path → type, size and a hash of the bytes (or the link target). */
export type TreeSnapshot = Map<string, string>;

/** Records every entry under root without following symlinks; a missing root is an empty tree. */
export async function snapshotTree(root: string, skip: (abs: string) => boolean = () => false): Promise<TreeSnapshot> {
  const out: TreeSnapshot = new Map();
  await walk(root, root, skip, out);
  return out;
}

async function walk(root: string, dir: string, skip: (abs: string) => boolean, out: TreeSnapshot): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const abs = join(dir, name);
    if (skip(abs)) continue;
    const st = await lstat(abs);
    const rel = relative(root, abs);
    if (st.isSymbolicLink()) out.set(rel, `link->${await readlink(abs)}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      await walk(root, abs, skip, out);
    } else
      out.set(
        rel,
        `file:${st.size}:${createHash('sha256')
          .update(await readFile(abs))
          .digest('hex')}`,
      );
  }
}

/** The paths whose entries differ between two snapshots (added, removed or changed), sorted. */
export function treeChanges(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const changed = new Set<string>();
  for (const [path, v] of before) if (after.get(path) !== v) changed.add(path);
  for (const path of after.keys()) if (!before.has(path)) changed.add(path);
  return [...changed].sort();
}

/** Skips the metadata database (its counters change with every session) when snapshotting a data folder. */
export function isMetaFile(abs: string): boolean {
  return /meta\.sqlite/.test(abs);
}

/** Basic credentials for a user name and password, as an Authorization header value. */
export function basicAuth(name: string, password: string): string {
  return 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64');
}

export interface KeptResponse {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  /** The client-side local port of the TLS connection that carried the request. */
  localPort: number;
}

/** A keep-alive agent with one socket, so every request it sends rides the same TLS connection. */
export function keepAliveAgent(gw: TestGateway, user: TestUser): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1, ca: gw.caPem, cert: user.certPem, key: user.keyPem });
}

/** One request through a (keep-alive) agent. */
export function requestVia(
  agent: Agent,
  gw: TestGateway,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<KeptResponse> {
  return new Promise((resolve, reject) => {
    const r = httpsRequest({ host: '127.0.0.1', port: gw.port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      const localPort = res.socket.localPort ?? 0;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers, localPort }),
      );
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}
