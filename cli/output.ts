import { KuraError } from '../gateway/errors.js';

/** How a command reports: human-readable lines by default, one JSON document with --json. */
export interface OutputOptions {
  json?: boolean;
}

export function report(opts: OutputOptions, data: unknown, human: () => string): void {
  process.stdout.write(opts.json ? JSON.stringify(data, null, 2) + '\n' : human() + '\n');
}

/** Prints a failure in plain words (the KuraError message, without a stack) and sets the exit code. */
export function fail(err: unknown, opts: OutputOptions = {}): void {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof KuraError ? err.code : 'error';
  if (opts.json) process.stdout.write(JSON.stringify({ error: code, message }) + '\n');
  else process.stderr.write(`kura: ${message}\n`);
  process.exitCode = err instanceof KuraError ? 2 : 1;
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
