#!/usr/bin/env node
import { Command } from 'commander';
import { addAdminCommands } from './admin.js';
import { addAgentCommands } from './agent-commands.js';
import { addAgentDaemonCommands } from './agent-daemon.js';
import { addCheckCommand } from './check-commands.js';
import { addRetentionCommands } from './retention-commands.js';
import { addMountCommand } from './mount-command.js';
import { fail } from './output.js';

const program = new Command();
program.name('kura').description('Kura: a WebDAV backup gateway and its backup agent').version('0.1.0');
program
  .command('serve')
  .description('start the gateway (creates a development CA and a demo user on an empty data folder)')
  .option('--data <dir>', 'data folder', './kura-data')
  .option('--port <n>', 'port', '8443')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .action(async (opts: { data: string; port: string; host: string }) => {
    const { serve } = await import('./serve.js');
    await serve(opts).catch((e: unknown) => fail(e));
  });
addAdminCommands(program);
addAgentCommands(program, async (fn, json) => {
  try {
    await fn();
  } catch (err) {
    fail(err, { json });
  }
});
addAgentDaemonCommands(program, async (fn, json) => {
  try {
    await fn();
  } catch (err) {
    fail(err, { json });
  }
});
addMountCommand(program, async (fn, json) => {
  try {
    await fn();
  } catch (err) {
    fail(err, { json });
  }
});
addCheckCommand(program, (fn, json) => fn().catch((err: unknown) => fail(err, { json })));
addRetentionCommands(program, (fn, json) => fn().catch((err: unknown) => fail(err, { json })));
await program.parseAsync(process.argv);
