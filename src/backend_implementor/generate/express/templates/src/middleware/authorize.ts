{% if auth %}
import type { Request, RequestHandler } from 'express';
import type { AuthUser } from '../auth/sessions.js';
import { forbidden, unauthorized } from '../errors.js';

/** An action's access rule from the spec: `owner` is enforced per row by the router (see ownedBy there). */
export type Access = 'public' | 'authenticated' | 'owner' | readonly string[];

{% if admin_role %}
/** May list users, change roles, and act on every owned row. */
export const ADMIN_ROLE = {{ admin_role | ts }};

export const isAdmin = (user: AuthUser): boolean => user.role === ADMIN_ROLE;
{% else %}
// The spec names no admin_role, so nobody bypasses ownership.
export const isAdmin = (_user: AuthUser): boolean => false;
{% endif %}

export function authorize(access: Access): RequestHandler {
  return (req, _res, next) => {
    if (access === 'public') return next();
    if (!req.user) throw unauthorized();
    if (typeof access !== 'string' && !access.includes(req.user.role)) throw forbidden();
    next();
  };
}

/** The authenticated user; only call behind authorize() with a non-public rule. */
export function currentUser(req: Request): AuthUser {
  if (!req.user) throw unauthorized();
  return req.user;
}
{% endif %}
