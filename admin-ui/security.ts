import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/**
 * The console's response headers: a strict Content-Security-Policy (own stylesheet and images only,
 * no scripts at all, forms post only to this origin, never framed), no MIME sniffing, no referrer,
 * and no caching of pages that show private data.
 */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** Cookie names: `__Host-` makes the browser insist on Secure, Path=/ and no Domain. */
export const COOKIE = {
  operator: '__Host-kura-operator',
  user: '__Host-kura-user',
  login: '__Host-kura-login',
  flash: '__Host-kura-flash',
} as const;

export function readCookies(req: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    try {
      out.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // a cookie that is not ours or is malformed is ignored
    }
  }
  return out;
}

/** Sets (or with value null clears) a Secure, HttpOnly, SameSite=Strict cookie for the whole origin. */
export function setCookie(res: Response, name: string, value: string | null, maxAgeSeconds?: number): void {
  const parts = [`${name}=${value === null ? '' : encodeURIComponent(value)}`, 'Path=/', 'Secure', 'HttpOnly', 'SameSite=Strict'];
  if (value === null) parts.push('Max-Age=0');
  else if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
  const prev = res.getHeader('Set-Cookie');
  const list = Array.isArray(prev) ? prev : typeof prev === 'string' ? [prev] : [];
  res.setHeader('Set-Cookie', [...list, parts.join('; ')]);
}

/** Constant-time comparison of two tokens; false when either is missing. */
export function sameToken(a: unknown, b: string | undefined): boolean {
  if (typeof a !== 'string' || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The sign-in forms have no session yet, so they use a double-submit token: a random value in a
 * SameSite=Strict cookie and in the form; both must match on POST. Returns the token to put in the form.
 */
export function loginToken(req: Request, res: Response): string {
  const known = readCookies(req).get(COOKIE.login);
  if (known && /^[A-Za-z0-9_-]{32}$/.test(known)) return known;
  const token = randomBytes(24).toString('base64url');
  setCookie(res, COOKIE.login, token, 3600);
  return token;
}

export function loginTokenMatches(req: Request): boolean {
  return sameToken(formField(req, '_csrf'), readCookies(req).get(COOKIE.login));
}

/** A field of a urlencoded form body, as a string (undefined when absent or not a single string). */
export function formField(req: Request, name: string): string | undefined {
  const body = req.body as Record<string, unknown> | undefined;
  const v = body && typeof body === 'object' ? body[name] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** A one-line message shown on the next page (after a redirect), kept in a short-lived cookie. */
export function setFlash(res: Response, kind: 'ok' | 'error', text: string): void {
  setCookie(res, COOKIE.flash, `${kind}:${text.slice(0, 600)}`, 60);
}

export function takeFlash(req: Request, res: Response): { kind: 'ok' | 'error'; text: string } | null {
  const v = readCookies(req).get(COOKIE.flash);
  if (!v) return null;
  setCookie(res, COOKIE.flash, null);
  const kind = v.startsWith('ok:') ? 'ok' : v.startsWith('error:') ? 'error' : null;
  return kind ? { kind, text: v.slice(kind.length + 1) } : null;
}
