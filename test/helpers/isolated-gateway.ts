import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

/**
 * A test gateway running in a worker thread, for requests that might block the gateway's event loop:
 * the test keeps its own event loop, so a stuck gateway shows up as a timeout instead of freezing
 * the test runner. Only what a raw client needs is exposed (see raw-tls.ts).
 */
export interface IsolatedGateway {
  port: number;
  caPem: string;
  user: { certPem: string; keyPem: string };
  /** Asks the gateway to close; terminates the worker when it does not answer within a second. */
  close(): Promise<void>;
}

interface Ready {
  port: number;
  caPem: string;
  dataDir: string;
  certPem: string;
  keyPem: string;
}

export async function startIsolatedGateway(): Promise<IsolatedGateway> {
  const worker = new Worker(new URL('./robustness-worker.js', import.meta.url));
  const [ready] = (await once(worker, 'message')) as [Ready];
  return {
    port: ready.port,
    caPem: ready.caPem,
    user: { certPem: ready.certPem, keyPem: ready.keyPem },
    async close() {
      worker.postMessage('close');
      const closed = await Promise.race([once(worker, 'message').then(() => true), sleep(1000).then(() => false)]);
      await worker.terminate();
      if (!closed) await rm(ready.dataDir, { recursive: true, force: true });
    },
  };
}
