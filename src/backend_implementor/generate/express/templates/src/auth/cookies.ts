{% if uses_cookies %}
import { parse } from 'cookie';
import type { Request, Response } from 'express';
{% if cookie_sessions %}
import { HttpError } from '../errors.js';
{% endif %}

{% if cookie_sessions %}
/** The `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain: no subdomain can set or read it. */
export const SESSION_COOKIE = '__Host-session';
/** Without Secure (COOKIE_SECURE=false, plain-HTTP development) the prefix is not allowed. */
export const INSECURE_SESSION_COOKIE = 'session';

{% endif %}
const SECRET = /^[A-Za-z0-9_-]{43}$/; // 32 random bytes, base64url
{% if cookie_sessions %}
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
{% endif %}

/**
 * A cookie carrying a random secret: HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site
 * writes), `__Host-<name>` when Secure.
 */
export class SecretCookie {
  readonly name: string;

  constructor(
    name: string,
    private readonly secure: boolean,
  ) {
    this.name = secure ? `__Host-${name}` : name;
  }

  /** The secret the request carries, if it is shaped like one. */
  read(req: Request): string | undefined {
    const header = req.headers.cookie;
    if (header === undefined) return undefined;
    const value = parse(header)[this.name];
    return value !== undefined && SECRET.test(value) ? value : undefined;
  }

  set(res: Response, secret: string, expiresAt: Date): void {
    res.cookie(this.name, secret, { ...this.attributes(), expires: expiresAt });
  }

  clear(res: Response): void {
    res.clearCookie(this.name, this.attributes());
  }

  private attributes() {
    return { httpOnly: true, secure: this.secure, sameSite: 'lax' as const, path: '/' };
  }
}
{% if cookie_sessions %}

/**
 * Refuses a cookie-authenticated unsafe request that another site sent (CSRF). Browsers send Origin with every
 * POST, PUT, PATCH and DELETE; it must be this site (by Host) or one of CORS_ORIGINS. Without an Origin the
 * request did not come from a browser page, and `required` decides (true once a session cookie is in play).
 */
export function checkOrigin(req: Request, allowed: readonly string[], required: boolean): void {
  if (SAFE_METHODS.has(req.method)) return;
  const origin = req.get('origin');
  if (origin === undefined) {
    if (required) throw new HttpError(403, 'A request made with the session cookie must send an Origin header.');
    return;
  }
  if (allowed.includes(origin) || hostOf(origin) === req.get('host')) return;
  throw new HttpError(403, 'Requests from another site may not use this session.');
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined; // e.g. the opaque origin "null"
  }
}
{% endif %}
{% endif %}
