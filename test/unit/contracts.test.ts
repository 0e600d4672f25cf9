import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkContract, parseSize } from '../../gateway/policy/contracts.js';
import type { ContractRecord } from '../../gateway/policy/records.js';
import { KuraError } from '../../gateway/errors.js';

const base: ContractRecord = {
  plan: 'home',
  quotaBytes: 1,
  maxSnapshots: 1,
  validFrom: '2026-01-01T00:00:00.000Z',
  validUntil: '2027-01-01T00:00:00.000Z',
  status: 'active',
  sessionsPerDay: null,
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const refusedWith = (c: ContractRecord | undefined, at: string, code: string) =>
  assert.throws(
    () => checkContract(c, new Date(at)),
    (e: unknown) => e instanceof KuraError && e.code === code && e.message.startsWith(code),
  );

describe('contract checks', () => {
  it('admits an active contract inside its validity', () => {
    assert.equal(checkContract(base, new Date('2026-06-01')), base);
  });
  it('refuses with a readable reason for each broken condition', () => {
    refusedWith(undefined, '2026-06-01', 'contract-missing');
    refusedWith(base, '2025-12-31', 'contract-not-yet-valid');
    refusedWith(base, '2027-01-01', 'contract-expired');
    refusedWith({ ...base, status: 'suspended' }, '2026-06-01', 'contract-suspended');
    refusedWith({ ...base, status: 'cancelled' }, '2026-06-01', 'contract-cancelled');
  });
  it('parses sizes in binary and decimal units', () => {
    assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
    assert.equal(parseSize('500MB'), 500 * 1000 ** 2);
    assert.equal(parseSize('1048576'), 1048576);
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('1.5K'), 1500);
    assert.throws(() => parseSize('lots'));
  });
});
