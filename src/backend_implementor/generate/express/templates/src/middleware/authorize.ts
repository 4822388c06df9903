{% if auth %}
import type { Request, RequestHandler } from 'express';
import type { AuthUser } from '../auth/sessions.js';
import { forbidden, unauthorized } from '../errors.js';

/** An action's access rule from the spec: `owner` is enforced per row by the resource's service (see ownedBy there). */
export type Access = 'public' | 'authenticated' | 'owner' | readonly string[];

{% if admin_role %}
/** May list users, change roles, and act on every owned row. */
export const ADMIN_ROLE = {{ admin_role | ts }};

export const isAdmin = (user: AuthUser): boolean => user.role === ADMIN_ROLE;
{% else %}
// The spec names no admin_role, so nobody bypasses ownership.
export const isAdmin = (_user: AuthUser): boolean => false;
{% endif %}

/**
 * Checks an access rule for a user (undefined: anonymous), and returns the user when the rule needs one. The
 * services call it on every action, REST and GraphQL alike; `owner` admits any user, whose rows the service
 * then scopes.
 */
export function permit(access: Exclude<Access, 'public'>, user: AuthUser | undefined): AuthUser;
export function permit(access: Access, user: AuthUser | undefined): AuthUser | undefined;
export function permit(access: Access, user: AuthUser | undefined): AuthUser | undefined {
  if (access === 'public') return user;
  if (!user) throw unauthorized();
  if (typeof access !== 'string' && !access.includes(user.role)) throw forbidden();
  return user;
}

/** The same check as a route's first step, so a request it refuses is never validated or read (401 before 400). */
export function authorize(access: Access): RequestHandler {
  return (req, _res, next) => {
    permit(access, req.user);
    next();
  };
}

/** The authenticated user; only call behind authorize() with a non-public rule. */
export function currentUser(req: Request): AuthUser {
  if (!req.user) throw unauthorized();
  return req.user;
}
{% endif %}
