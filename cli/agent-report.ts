import type { BackupResult } from '../agent/backup.js';
import { chooseMode, Progress, type SummaryField } from '../agent/progress.js';
import type { SnapshotInfo } from '../agent/repository.js';
import type { RestoreCounts } from '../agent/restore.js';

/**
 * What a person sees while a backup or restore runs (agent/progress.ts: files, bytes, rate, ETA) and
 * the summary after it, in plain words. --quiet prints nothing but errors; --json prints NDJSON
 * events on stdout, the last one being the summary.
 */
export class AgentReporter {
  readonly progress: Progress;

  constructor(flags: { quiet?: boolean; json?: boolean }, operation: 'backup' | 'restore') {
    const mode = chooseMode({ ...flags, isTTY: Boolean(process.stderr.isTTY) });
    this.progress = new Progress({ operation, mode, out: mode === 'json' ? process.stdout : process.stderr });
    this.progress.start();
  }

  note(text: string): void {
    this.progress.note(text);
  }

  backupSummary(r: BackupResult): void {
    const t = r.totals;
    this.progress.stop();
    const fields: SummaryField[] = [
      { key: 'snapshot', label: 'snapshot', value: r.snapshotId },
      { key: 'type', label: 'type', value: r.type },
      { key: 'parent', label: 'compared with', value: r.parent ?? 'none (every file read)', json: r.parent },
      { key: 'files', label: 'files', value: t.files },
      { key: 'newFiles', label: 'new files', value: t.newFiles },
      { key: 'changedFiles', label: 'changed files', value: t.changedFiles },
      { key: 'unchangedFiles', label: 'unchanged files', value: t.unchangedFiles },
      { key: 'dirs', label: 'folders', value: t.dirs },
      { key: 'bytes', label: 'size of the files', value: t.bytes, unit: 'bytes' },
      { key: 'bytesRead', label: 'bytes read', value: t.bytesRead, unit: 'bytes' },
      { key: 'bytesUploaded', label: 'bytes uploaded', value: t.bytesUploaded, unit: 'bytes' },
      { key: 'packs', label: 'packs uploaded', value: t.packs },
      { key: 'dedupRatio', label: 'dedup ratio (read / uploaded)', value: Number((t.bytesRead / Math.max(1, t.bytesUploaded)).toFixed(2)) },
      { key: 'durationMs', label: 'duration (ms)', value: t.durationMs },
    ];
    this.progress.summary(fields, `Backup done: snapshot ${r.snapshotId.slice(0, 12)} is on the gateway`);
  }

  /** The restore's summary; `partial` when only some paths of the snapshot were asked for. */
  restoreSummary(snapshot: SnapshotInfo, c: RestoreCounts, target: string, partial = false): void {
    this.progress.stop();
    const fields: SummaryField[] = [
      { key: 'snapshot', label: 'snapshot', value: snapshot.id },
      { key: 'target', label: 'restored into', value: target },
      { key: 'files', label: partial ? 'files in the paths asked for' : 'files in the snapshot', value: c.files },
      { key: 'restored', label: 'files restored', value: c.restored },
      { key: 'skipped', label: 'already there and verified', value: c.skipped },
      { key: 'failed', label: 'files NOT restored', value: c.failed.length },
      { key: 'bytes', label: 'bytes written', value: c.bytes, unit: 'bytes' },
      ...(c.baseline > 0 ? [{ key: 'baseline', label: 'baseline files left to the image', value: c.baseline }] : []),
    ];
    const title = c.failed.length > 0 ? `Restore finished with ${c.failed.length} damaged files` : 'Restore done';
    this.progress.summary(fields, title);
    for (const f of c.failed) process.stderr.write(`NOT restored: ${f.path}: ${f.reason}\n`);
    if (c.baseline > 0) {
      this.note(
        `${c.baseline} file(s) are unchanged since the marked baseline and were never uploaded: restore them from the baseline image (e.g. the factory install).`,
      );
    }
  }
}
