import { z } from 'zod';

/** The records gateway/policy keeps in the metadata store, validated whenever they are read back. */

export const userNamePattern = /^[a-z][a-z0-9._-]{1,31}$/;

export const UserRecord = z.object({
  name: z.string().regex(userNamePattern),
  id: z.string(),
  disabled: z.boolean(),
  createdAt: z.string(),
});
export type UserRecord = z.infer<typeof UserRecord>;

export const CertRecord = z.object({
  fingerprint256: z.string(),
  serial: z.string(),
  user: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  issuedAt: z.string(),
  revokedAt: z.string().nullable(),
  /**
   * The delete right: forget snapshots and prune packs in /.kura/. Certificates without it are
   * append-only (ransomware on the PC cannot destroy its backups). Absent in older records: false.
   */
  mayDelete: z.boolean().optional(),
});
export type CertRecord = z.infer<typeof CertRecord>;

export const AppPasswordRecord = z.object({
  id: z.string(),
  label: z.string(),
  salt: z.string(),
  hash: z.string(),
  createdAt: z.string(),
});
export type AppPasswordRecord = z.infer<typeof AppPasswordRecord>;

export const contractStatuses = ['active', 'suspended', 'cancelled'] as const;
export type ContractStatus = (typeof contractStatuses)[number];

export const ContractRecord = z.object({
  plan: z.string().min(1),
  quotaBytes: z.number().int().nonnegative(),
  maxSnapshots: z.number().int().nonnegative(),
  validFrom: z.string(),
  validUntil: z.string().nullable(),
  status: z.enum(contractStatuses),
  sessionsPerDay: z.number().int().nonnegative().nullable(),
  updatedAt: z.string(),
});
export type ContractRecord = z.infer<typeof ContractRecord>;

export const StringList = z.array(z.string());
export const Counter = z.number().int();
