import { randomUUID } from 'node:crypto';
import { KuraError } from '../errors.js';

export type LockScope = 'exclusive' | 'shared';

export interface Lock {
  token: string;
  /** Owner (user id) whose area the lock lives in; locks never cross areas. */
  area: string;
  /** The locked resource as a path key ('/files/a/b'). */
  root: string;
  depth: '0' | 'infinity';
  scope: LockScope;
  /** The client's DAV:owner element, serialised, or '' when it sent none. */
  ownerXml: string;
  timeoutSeconds: number;
  expiresAt: number;
}

const MAX_TIMEOUT = 7 * 24 * 3600;

/**
 * Write locks (RFC 4918 §6-7), kept in this process's memory: a restart releases every lock, which
 * clients see as an expired lock and retake. Expired locks are dropped whenever they are looked at.
 */
export class LockManager {
  private readonly locks = new Map<string, Lock>();

  /** Locks whose scope includes path: on it, or depth-infinity on an ancestor. */
  covering(area: string, path: string): Lock[] {
    return this.live(area).filter((l) => l.root === path || (l.depth === 'infinity' && isBelow(path, l.root)));
  }

  /** Locks on path or anywhere below it. */
  within(area: string, path: string): Lock[] {
    return this.live(area).filter((l) => l.root === path || isBelow(l.root, path));
  }

  /** Creates a lock; throws locked when it conflicts with an existing one. */
  create(spec: Omit<Lock, 'token' | 'expiresAt'>): Lock {
    const others = [...this.covering(spec.area, spec.root)];
    if (spec.depth === 'infinity') others.push(...this.within(spec.area, spec.root));
    const conflict = others.some((l) => l.scope === 'exclusive' || spec.scope === 'exclusive');
    if (conflict) throw new KuraError('locked', 'locked: the resource is already locked');
    const timeoutSeconds = Math.min(spec.timeoutSeconds, MAX_TIMEOUT);
    const lock: Lock = { ...spec, timeoutSeconds, token: `opaquelocktoken:${randomUUID()}`, expiresAt: Date.now() + timeoutSeconds * 1000 };
    this.locks.set(lock.token, lock);
    return lock;
  }

  refresh(lock: Lock, timeoutSeconds: number): Lock {
    lock.timeoutSeconds = Math.min(timeoutSeconds, MAX_TIMEOUT);
    lock.expiresAt = Date.now() + lock.timeoutSeconds * 1000;
    return lock;
  }

  remove(token: string): void {
    this.locks.delete(token);
  }

  /** Drops the locks on path and below (the resource is gone or moved away). */
  removeWithin(area: string, path: string): void {
    for (const l of this.within(area, path)) this.locks.delete(l.token);
  }

  private live(area: string): Lock[] {
    const now = Date.now();
    const out: Lock[] = [];
    for (const l of this.locks.values()) {
      if (l.expiresAt <= now) this.locks.delete(l.token);
      else if (l.area === area) out.push(l);
    }
    return out;
  }
}

function isBelow(path: string, ancestor: string): boolean {
  return path.startsWith(ancestor === '/' ? '/' : `${ancestor}/`) && path !== ancestor;
}

/** Parses a Timeout header ("Second-600, Infinite"); the default is one hour. */
export function parseTimeout(header: string | undefined): number {
  for (const part of (header ?? '').split(',')) {
    const t = part.trim();
    if (/^infinite$/i.test(t)) return MAX_TIMEOUT;
    const m = /^second-(\d+)$/i.exec(t);
    if (m) return Math.max(1, Math.min(Number(m[1]), MAX_TIMEOUT));
  }
  return 3600;
}
