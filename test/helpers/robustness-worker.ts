import { parentPort } from 'node:worker_threads';
import { startTestGateway } from './gateway.js';

/**
 * A test gateway in a worker thread (see isolated-gateway.ts): it posts what a client needs to
 * reach it, and closes when asked.
 */
const gw = await startTestGateway();
const user = await gw.addUser('isolated');
parentPort?.postMessage({ port: gw.port, caPem: gw.caPem, dataDir: gw.dataDir, certPem: user.certPem, keyPem: user.keyPem });
parentPort?.once('message', () => {
  void gw.close().then(() => parentPort?.postMessage('closed'));
});
