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
  return async (req, _res, next) => {
    const header = req.get('authorization');
    if (header === undefined) return next();
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
    if (!match?.[1]) throw unauthorized();
    const user = await tokens.verify(match[1]);
    if (!user) throw unauthorized();
    req.user = user;
    next();
  };
}
{% endif %}
