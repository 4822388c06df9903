{% if auth %}
import type { RequestHandler } from 'express';
import type { AuthService } from '../auth/service.js';
import type { AuthUser } from '../auth/sessions.js';
{% if bearer_sessions %}
import { VerifiedTokens } from '../auth/tokens.js';
import { unauthorized } from '../errors.js';
{% else %}
import { checkOrigin, type SecretCookie } from '../auth/cookies.js';
{% endif %}

declare global {
  namespace Express {
    interface Request {
      user?: AuthUser;
    }
  }
}
{% if bearer_sessions %}

/**
 * Attaches the bearer token's user to req.user while the token's session is on. No header means anonymous
 * (authorize decides); a header that is present but invalid, or whose session ended, is always 401.
 */
export function authenticate(auth: AuthService): RequestHandler {
  const tokens = new VerifiedTokens(auth.jwtKey);
  return (req, _res, next) => {
    const header = req.get('authorization');
    // Anonymous requests and kept tokens of a session read lately go on at once; the rest wait for a check.
    if (header === undefined) return next();
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
    const token = match?.[1];
    if (!token) throw unauthorized();
    const kept = tokens.kept(token);
    const alive = kept && auth.sessions.alive(kept);
    if (kept && alive === true) {
      req.user = kept;
      return next();
    }
    return (async () => {
      const user = kept ?? (await tokens.verify(token));
      if (!user || !(await (kept ? alive : auth.sessions.alive(user)))) throw unauthorized();
      req.user = user;
      next();
    })();
  };
}
{% else %}

/**
 * Attaches the session cookie's user to req.user while its session is on; a cookie whose session ended is
 * cleared and the request goes on anonymous (authorize decides). An unsafe request made with a live session
 * must come from this site or CORS_ORIGINS (checkOrigin).
 */
export function authenticate(auth: AuthService, cookie: SecretCookie, origins: readonly string[]): RequestHandler {
  return (req, res, next) => {
    const secret = cookie.read(req);
    if (secret === undefined) return next();
    const found = auth.sessions.fromCookie(secret);
    const attach = (user: AuthUser | undefined) => {
      if (!user) {
        cookie.clear(res);
        return next();
      }
      checkOrigin(req, origins, true);
      req.user = user;
      next();
    };
    if (found instanceof Promise) return found.then(attach);
    attach(found);
  };
}
{% endif %}
{% endif %}
