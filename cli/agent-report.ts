import type { BackupResult } from '../agent/backup.js';
import type { SnapshotInfo } from '../agent/repository.js';
import type { RestoreCounts } from '../agent/restore.js';
import { formatSize } from '../gateway/policy/contracts.js';

/**
 * What a person sees while a backup or restore runs, and after: a progress line (files, bytes, rate)
 * redrawn on a terminal or printed every few seconds otherwise, and a summary in plain words.
 * --quiet prints nothing but errors; --json prints one JSON event per line.
 */
export class AgentReporter {
  private files = 0;
  private bytes = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly flags: { quiet?: boolean; json?: boolean },
    private readonly verb: 'backup' | 'restore',
  ) {}

  file(files: number, _bytes: number): void {
    this.files = files;
    this.tick();
  }

  uploaded(bytes: number): void {
    this.bytes += bytes;
    this.tick();
  }

  note(text: string): void {
    if (this.flags.json) this.emit({ event: 'note', message: text });
    else if (!this.flags.quiet) process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${text}\n`);
  }

  backupSummary(r: BackupResult): void {
    const t = r.totals;
    const dedup = t.bytesRead > 0 ? (t.bytesRead / Math.max(1, t.bytesUploaded)).toFixed(1) : '∞';
    if (this.flags.json) return this.emit({ event: 'summary', snapshot: r.snapshotId, parent: r.parent, ...t });
    if (this.flags.quiet) return;
    this.clearLine();
    process.stdout.write(
      [
        `Backup done: snapshot ${r.snapshotId.slice(0, 12)}${r.parent ? ` (parent ${r.parent.slice(0, 12)})` : ''}`,
        `  files     ${t.files} (${t.newFiles} new, ${t.changedFiles} changed, ${t.unchangedFiles} unchanged), ${t.dirs} folders`,
        `  read      ${formatSize(t.bytesRead)} of ${formatSize(t.bytes)}`,
        `  uploaded  ${formatSize(t.bytesUploaded)} in ${t.packs} packs (dedup ratio ${dedup}:1)`,
        `  duration  ${(t.durationMs / 1000).toFixed(1)} s`,
      ].join('\n') + '\n',
    );
  }

  restoreSummary(snapshot: SnapshotInfo, c: RestoreCounts, target: string): void {
    const seconds = (Date.now() - this.started) / 1000;
    if (this.flags.json) return this.emit({ event: 'summary', snapshot: snapshot.id, seconds, ...c });
    this.clearLine();
    if (!this.flags.quiet) {
      process.stdout.write(
        `Restored snapshot ${snapshot.id.slice(0, 12)} (${snapshot.time}) into ${target}: ${c.restored} files restored ` +
          `(${formatSize(c.bytes)}), ${c.skipped} already there and verified, in ${seconds.toFixed(1)} s\n`,
      );
    }
    for (const f of c.failed) process.stderr.write(`NOT restored: ${f.path}: ${f.reason}\n`);
  }

  private tick(): void {
    const now = Date.now();
    if (this.flags.quiet || now - this.lastDraw < (this.tty ? 250 : 5000)) return;
    this.lastDraw = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = `${formatSize(this.bytes / seconds)}/s`;
    const moved = this.verb === 'backup' ? 'uploaded' : 'written';
    if (this.flags.json) return this.emit({ event: 'progress', files: this.files, bytes: this.bytes, seconds });
    const line = `${this.verb}: ${this.files} files, ${formatSize(this.bytes)} ${moved}, ${rate}`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  private clearLine(): void {
    if (this.tty && !this.flags.quiet && !this.flags.json) process.stderr.write('\r\x1b[K');
  }

  private emit(event: Record<string, unknown>): void {
    process.stdout.write(JSON.stringify(event) + '\n');
  }
}
