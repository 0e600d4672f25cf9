import { areaLayout } from '../storage/data-dir.js';
import { FileArea } from '../storage/file-area.js';
import type { Policy } from './policy.js';

export interface UsageLine {
  user: string;
  usedBytes: number;
  quotaBytes: number | null;
  /** With a recount: what the disk holds, and the counter's value before it was corrected. */
  measuredBytes?: number;
  counterBefore?: number;
  drift?: number;
}

/** Usage against quota for every user; with recount, measures the disk and corrects the counter. */
export async function usageReport(policy: Policy, recount: boolean): Promise<UsageLine[]> {
  const lines: UsageLine[] = [];
  for (const user of await policy.users.list()) {
    const contract = await policy.contracts.find(user.name);
    const line: UsageLine = { user: user.name, usedBytes: await policy.usage.get(user.name), quotaBytes: contract?.quotaBytes ?? null };
    if (recount) {
      const dirs = areaLayout(policy.layout, user.id);
      const measured = (await new FileArea(dirs.files, dirs.tmp).sizeOf([])) + (await new FileArea(dirs.kura, dirs.tmp).sizeOf([]));
      const before = await policy.usage.reset(user.name, measured);
      Object.assign(line, { usedBytes: measured, measuredBytes: measured, counterBefore: before, drift: measured - before });
    }
    lines.push(line);
  }
  return lines;
}
