// Bundles the `kura` command and its worker threads into dist/bin/ after `tsc` has built dist/.
// Why: Node 20 has no module compile cache, and loading the few hundred files of the dependencies
// (webdav, zod, commander, express…) cost every `kura` run about 0.3 s of a 3 s incremental backup.
// The bundle keeps lazy parts (serve, admin) in their own chunks, and leaves the native add-ons
// (zstd-napi, sqlite3) as ordinary imports from node_modules. Workers sit beside the entry, so
// `new URL('./file-worker.js', import.meta.url)` finds them from any chunk.
import { build } from 'esbuild';
import { readdir, rm } from 'node:fs/promises';

// Every worker thread's entry (agent/*-worker.ts) becomes an entry of its own.
const workers = (await readdir('dist/agent')).filter((f) => f.endsWith('-worker.js')).map((f) => `dist/agent/${f}`);

await rm('dist/bin', { recursive: true, force: true });
const common = {
  outdir: 'dist/bin',
  entryNames: '[name]',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['zstd-napi', 'sqlite3', '@keyv/sqlite', 'sharp'],
  // Bundled CommonJS packages call require(); in an ES module it has to be made.
  banner: { js: "import { createRequire as __kuraRequire } from 'node:module'; const require = __kuraRequire(import.meta.url);" },
  logLevel: 'warning',
};
await build({ ...common, entryPoints: ['dist/cli/kura.js'], splitting: true });
// Each worker on its own, without chunks shared with the command: a worker then loads only the code
// it runs (no zod, no webdav client), which halves its start-up on a busy machine.
await build({ ...common, entryPoints: workers, splitting: false });
