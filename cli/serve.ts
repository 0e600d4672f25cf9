import { resolve } from 'node:path';
import { createDemoUser, demoInstructions, existingDemo } from '../gateway/bootstrap.js';
import { KuraError } from '../gateway/errors.js';
import { Policy } from '../gateway/policy/policy.js';
import { OPERATOR_NAME } from '../gateway/policy/operators.js';
import { startGateway } from '../gateway/server.js';
import { ensureTls } from '../gateway/tls.js';

export interface ServeOptions {
  data: string;
  port: string;
  host: string;
}

/** `kura serve`: prepares an empty data folder (CA, server certificate, demo user) and starts. */
export async function serve(opts: ServeOptions): Promise<void> {
  // A full disk or a closed pipe behind the output must not stop the gateway: the lines are lost.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const port = parsePort(opts.port);
  const dataDir = resolve(opts.data);
  const policy = await Policy.open(dataDir);
  if (await policy.certs.initCa()) console.log(`Created a development CA in ${policy.layout.caDir}/`);
  const tls = await ensureTls(policy, opts.host === '0.0.0.0' || opts.host === '::' ? [] : [opts.host]);
  if (tls.created) console.log(`Created a server certificate for localhost and 127.0.0.1 in ${policy.layout.tlsDir}/`);
  if (await createDemoUser(policy)) console.log(`Created the demo user with a contract, a certificate and an app password`);
  const demo = await existingDemo(policy);
  const operatorPassword = await policy.operators.ensurePassword();
  const gateway = await startGateway({ policy, tls, host: opts.host, port }).catch(async (err: unknown) => {
    await policy.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new KuraError('bad-request', `port ${port} on ${opts.host} is already in use: choose another with --port`);
    if (code === 'EACCES') throw new KuraError('bad-request', `not allowed to listen on port ${port}: choose one above 1024 with --port`);
    throw err;
  });
  console.log(`Kura gateway listening on ${gateway.url} (data in ${dataDir})`);
  console.log(`Each user's private area is at ${gateway.url}files/`);
  console.log(`Web console: ${gateway.url}console/ (users), ${gateway.url}console/admin/ (operator)`);
  if (operatorPassword) {
    console.log(`Operator sign-in for the console (shown once; \`kura admin operator-password\` sets a new one):`);
    console.log(`  name: ${OPERATOR_NAME}  password: ${operatorPassword}`);
  }
  if (demo) console.log('\n' + demoInstructions(gateway.url, demo) + '\n');
  const stop = () => {
    console.log('Stopping the gateway…');
    void gateway
      .close()
      .then(() => policy.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new KuraError('bad-request', `--port must be a whole number from 0 to 65535, not "${text}"`);
  }
  return Number(text);
}
