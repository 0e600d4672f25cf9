import { resolve } from 'node:path';
import { createDemoUser, demoInstructions } from '../gateway/bootstrap.js';
import { Policy } from '../gateway/policy/policy.js';
import { startGateway } from '../gateway/server.js';
import { ensureTls } from '../gateway/tls.js';

export interface ServeOptions {
  data: string;
  port: string;
  host: string;
}

/** `kura serve`: prepares an empty data folder (CA, server certificate, demo user) and starts. */
export async function serve(opts: ServeOptions): Promise<void> {
  const dataDir = resolve(opts.data);
  const policy = await Policy.open(dataDir);
  if (await policy.certs.initCa()) console.log(`Created a development CA in ${policy.layout.caDir}/`);
  const tls = await ensureTls(policy, opts.host === '0.0.0.0' || opts.host === '::' ? [] : [opts.host]);
  if (tls.created) console.log(`Created a server certificate for localhost and 127.0.0.1 in ${policy.layout.tlsDir}/`);
  const demo = await createDemoUser(policy);
  const gateway = await startGateway({ policy, tls, host: opts.host, port: Number(opts.port) });
  console.log(`Kura gateway listening on ${gateway.url} (data in ${dataDir})`);
  console.log(`Each user's private area is at ${gateway.url}files/`);
  if (demo) console.log('\n' + demoInstructions(gateway.url, demo) + '\n');
  const stop = () => {
    console.log('Stopping the gateway…');
    void gateway.close().then(() => policy.close()).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
