{% if auth %}
import type { RequestHandler } from 'express';
import { type AuthUser, type SigningKey, VerifiedTokens } from '../auth/tokens.js';
import { unauthorized } from '../errors.js';

declare global {
  namespace Express {
    interface Request {
      user?: AuthUser;
    }
  }
}

/**
 * Attaches the bearer token's user to req.user. No header means anonymous (authorize decides);
 * a header that is present but invalid is always 401, even on public routes.
 */
export function authenticate(secret: Promise<SigningKey>): RequestHandler {
  const tokens = new VerifiedTokens(secret);
  return (req, _res, next) => {
    const header = req.get('authorization');
    // Anonymous requests and kept tokens go on at once; only a token not seen before waits for its check.
    if (header === undefined) return next();
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
    if (!match?.[1]) throw unauthorized();
    const kept = tokens.kept(match[1]);
    if (kept) {
      req.user = kept;
      return next();
    }
    return tokens.verify(match[1]).then((user) => {
      if (!user) throw unauthorized();
      req.user = user;
      next();
    });
  };
}
{% endif %}
