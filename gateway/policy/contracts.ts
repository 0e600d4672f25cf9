import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import { ContractRecord, contractStatuses, type ContractStatus } from './records.js';
import type { Users } from './users.js';

const contractKey = (name: string) => `contract:${name}`;

/** The fields `kura admin contract set` may change; omitted ones keep their value (or a default). */
export interface ContractChange {
  plan?: string;
  quotaBytes?: number;
  maxSnapshots?: number;
  validFrom?: string;
  validUntil?: string | null;
  status?: ContractStatus;
  sessionsPerDay?: number | null;
}

/** The form of a contract change as text (CLI flags or web form fields); an omitted or empty field is unchanged. */
export interface ContractFields {
  plan?: string;
  quota?: string;
  maxSnapshots?: string;
  from?: string;
  until?: string;
  status?: string;
  sessionsPerDay?: string;
}

/**
 * Turns text fields into a ContractChange, refusing what is not a whole number, a size, a date or a
 * status with bad-request. `label` names a field in the messages the way the caller's user knows it
 * (`--max-snapshots` on the command line, "Max snapshots" on the web). "none" clears until and
 * sessions per day.
 */
export function contractChangeFrom(o: ContractFields, label: (field: keyof ContractFields) => string): ContractChange {
  const given = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const int = (field: 'maxSnapshots' | 'sessionsPerDay') => {
    const v = given(o[field]);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new KuraError('bad-request', `${label(field)} must be a whole number`);
    return Number(v);
  };
  const status = given(o.status);
  if (status && !contractStatuses.includes(status as ContractStatus)) {
    throw new KuraError('bad-request', `${label('status')} must be one of ${contractStatuses.join(', ')}`);
  }
  const quota = given(o.quota);
  const from = given(o.from);
  const until = given(o.until);
  return {
    plan: given(o.plan),
    quotaBytes: quota === undefined ? undefined : parseSize(quota),
    maxSnapshots: int('maxSnapshots'),
    validFrom: from === undefined ? undefined : toIso(from),
    validUntil: until === undefined ? undefined : until === 'none' ? null : toIso(until),
    status: status as ContractStatus | undefined,
    sessionsPerDay: given(o.sessionsPerDay) === 'none' ? null : int('sessionsPerDay'),
  };
}

function toIso(text: string): string {
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new KuraError('bad-request', `not a date: ${text} (use e.g. 2026-01-31 or 2026-01-31T12:00:00Z)`);
  return new Date(t).toISOString();
}

/** Per-user contracts: plan, quota, snapshot limit, validity, status and access limit. */
export class Contracts {
  constructor(
    private readonly meta: MetaStore,
    private readonly users: Users,
  ) {}

  async find(userName: string): Promise<ContractRecord | undefined> {
    return this.meta.get(contractKey(userName), ContractRecord);
  }

  /** Creates or changes a user's contract after validating every field. */
  async set(userName: string, change: ContractChange): Promise<ContractRecord> {
    await this.users.get(userName);
    validateChange(change);
    return this.meta.update(contractKey(userName), ContractRecord, (current) => {
      const next: ContractRecord = {
        plan: change.plan ?? current?.plan ?? 'standard',
        quotaBytes: change.quotaBytes ?? current?.quotaBytes ?? 10 * 1024 ** 3,
        maxSnapshots: change.maxSnapshots ?? current?.maxSnapshots ?? 100,
        validFrom: change.validFrom ?? current?.validFrom ?? new Date().toISOString(),
        validUntil: change.validUntil !== undefined ? change.validUntil : (current?.validUntil ?? null),
        status: change.status ?? current?.status ?? 'active',
        sessionsPerDay: change.sessionsPerDay !== undefined ? change.sessionsPerDay : (current?.sessionsPerDay ?? null),
        updatedAt: new Date().toISOString(),
      };
      if (next.validUntil && Date.parse(next.validUntil) <= Date.parse(next.validFrom)) {
        throw new KuraError('bad-request', 'the contract must end after it starts (valid until later than valid from)');
      }
      return next;
    });
  }
}

function validateChange(change: ContractChange): void {
  for (const [field, value] of [
    ['validFrom', change.validFrom],
    ['validUntil', change.validUntil],
  ] as const) {
    if (value && Number.isNaN(Date.parse(value))) {
      throw new KuraError('bad-request', `${field} is not a date: ${value} (use e.g. 2026-01-31 or an ISO time)`);
    }
  }
  if (change.status && !contractStatuses.includes(change.status)) {
    throw new KuraError('bad-request', `status must be one of ${contractStatuses.join(', ')}`);
  }
  for (const [name, n] of [
    ['quota', change.quotaBytes],
    ['max-snapshots', change.maxSnapshots],
    ['sessions-per-day', change.sessionsPerDay],
  ] as const) {
    if (n !== undefined && n !== null && (!Number.isSafeInteger(n) || n < 0)) {
      throw new KuraError('bad-request', `${name} must be a whole number of 0 or more`);
    }
  }
}

/** Throws the contract refusal that applies at `now`, if any. */
export function checkContract(contract: ContractRecord | undefined, now: Date): ContractRecord {
  if (!contract) throw new KuraError('contract-missing', 'contract-missing: there is no contract for this user');
  if (now.getTime() < Date.parse(contract.validFrom)) {
    throw new KuraError('contract-not-yet-valid', `contract-not-yet-valid: the contract starts on ${contract.validFrom}`);
  }
  if (contract.validUntil && now.getTime() >= Date.parse(contract.validUntil)) {
    throw new KuraError('contract-expired', `contract-expired: the contract ended on ${contract.validUntil}`);
  }
  if (contract.status === 'suspended') throw new KuraError('contract-suspended', 'contract-suspended: the contract is suspended');
  if (contract.status === 'cancelled') throw new KuraError('contract-cancelled', 'contract-cancelled: the contract was cancelled');
  return contract;
}

/** Parses sizes like 10GiB, 500MB, 1.5T or a plain byte count. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$/i.exec(text);
  if (!m) throw new KuraError('bad-request', `not a size: ${text} (use e.g. 10GiB, 500MB or 1048576)`);
  const power = ' kmgtp'.indexOf((m[2] ?? '').toLowerCase() || ' ');
  const base = m[3] || !m[2] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
