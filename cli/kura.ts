#!/usr/bin/env node
import { Command } from 'commander';
import { addAdminCommands } from './admin.js';
import { fail } from './output.js';
import { serve } from './serve.js';

const program = new Command();
program.name('kura').description('Kura: a WebDAV backup gateway').version('0.1.0');
program
  .command('serve')
  .description('start the gateway (creates a development CA and a demo user on an empty data folder)')
  .option('--data <dir>', 'data folder', './kura-data')
  .option('--port <n>', 'port', '8443')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .action((opts: { data: string; port: string; host: string }) => serve(opts).catch((e: unknown) => fail(e)));
addAdminCommands(program);
await program.parseAsync(process.argv);
