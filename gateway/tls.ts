import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueServerCert } from './policy/ca.js';
import type { Policy } from './policy/policy.js';

/** What the HTTPS server needs: its own certificate and the CA client certificates must chain to. */
export interface TlsMaterial {
  serverCertPem: string;
  serverKeyPem: string;
  clientCaPem: string;
}

const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];

/**
 * Loads the server certificate from <data>/tls, issuing one from the Kura CA for localhost and
 * 127.0.0.1 (plus extra host names) when there is none yet.
 */
export async function ensureTls(policy: Policy, extraHosts: string[] = []): Promise<TlsMaterial & { created: boolean }> {
  const dir = policy.layout.tlsDir;
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  const ca = await policy.certs.loadCa();
  try {
    const [serverCertPem, serverKeyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { serverCertPem, serverKeyPem, clientCaPem: ca.certPem, created: false };
  } catch {
    const hosts = [...new Set([...DEFAULT_HOSTS, ...extraHosts])];
    const issued = issueServerCert(ca, hosts);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
    await writeFile(certFile, issued.certPem);
    return { serverCertPem: issued.certPem, serverKeyPem: issued.keyPem, clientCaPem: ca.certPem, created: true };
  }
}
