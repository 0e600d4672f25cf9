import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { openRepo, withConnection, type CommonFlags } from './agent-commands.js';

/** `kura mount`: the snapshots as a read-only WebDAV server on 127.0.0.1, decrypted on this PC. */
export function addMountCommand(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  withConnection(
    program.command('mount').description('browse your snapshots (decrypted on this PC) as a read-only WebDAV folder on 127.0.0.1'),
  )
    .option('--port <n>', 'port on 127.0.0.1 (default: a free one)', '0')
    .action((flags: CommonFlags & { port: string }) => run(() => mount(flags), flags.json));
}

async function mount(flags: CommonFlags & { port: string }): Promise<void> {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, not ${flags.port}`);
  const { repo } = await openRepo(flags, () => ({ index: true, snapshotsOf: '' }));
  const { startMount } = await import('../agent/mount.js');
  const { Thumbnailer } = await import('../browse/thumbnails.js');
  // Previews are of decrypted images: kept in a private temp folder removed at the end, never in the state folder.
  const previewDir = await mkdtemp(join(tmpdir(), 'kura-previews-'));
  const previews = new Thumbnailer(previewDir);
  const running = await startMount(repo, { port, previews });
  if (flags.json) process.stdout.write(JSON.stringify({ event: 'mounted', url: running.url, port: running.port }) + '\n');
  else if (!flags.quiet) process.stdout.write(howToConnect(running.url));
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop).off('SIGTERM', stop);
      void running
        .close()
        .then(() => rm(previewDir, { recursive: true, force: true }))
        .then(resolve);
    };
    process.on('SIGINT', stop).on('SIGTERM', stop);
  });
}

/** What the user reads once the server runs: the address, and how each OS's file manager opens it. */
export function howToConnect(url: string): string {
  const dav = url.replace(/^http:/, 'dav:');
  return [
    `Your snapshots, read-only and decrypted on this PC, are at:`,
    ``,
    `    ${url}`,
    ``,
    `Open it with:`,
    `  Windows   Explorer > This PC > Map network drive > Folder: ${url}`,
    `            (or: net use K: ${url})`,
    `  macOS     Finder > Go > Connect to Server (Cmd-K) > ${url}`,
    `  GNOME     Files > Other Locations > Connect to Server > ${dav}`,
    `  davfs2    sudo mount -t davfs -o ro ${url} /mnt/kura   (empty user name and password)`,
    `  rclone    rclone lsf :webdav: --webdav-url ${url}`,
    ``,
    `Only programs on this PC can reach it, and only with this address. Ctrl-C stops it.`,
    ``,
  ].join('\n');
}
