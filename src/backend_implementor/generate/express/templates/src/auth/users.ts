{% if admin_role %}
import { eq } from 'drizzle-orm';
import { Router } from 'express';
import type { Db } from '../db/client.js';
import { users } from '../db/schema.js';
import { notFound } from '../errors.js';
import { ADMIN_ROLE, authorize } from '../middleware/authorize.js';
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { idParam, List, sorting } from '../services/common.js';
import { UserListQuery, UserUpdate } from '../schemas.js';
import { toPublicUser } from './service.js';

/** Account administration, for the admin role only. */
export function usersRouter(db: Db): Router {
  const router = Router();
  const adminOnly = authorize([ADMIN_ROLE]);
  const list = new List(db, users, 'users');

  router.get('/', adminOnly, async (req, res) => {
    const query = validate(UserListQuery, req.query, 'query');
    const sorted = sorting(undefined, {}, users.created_at, users.id);
    res.json(await list.find(query, sorted, () => undefined, toPublicUser));
  });

  router.patch('/:id', requireJson, adminOnly, async (req, res) => {
    const id = idParam(req.params.id);
    const body = validate(UserUpdate, req.body, 'body');
    const [row] = await db
      .update(users)
      .set({ role: body.role, updated_at: new Date() })
      .where(eq(users.id, id))
      .returning();
    if (!row) throw notFound();
    res.json(toPublicUser(row));
  });

  router.all('/', onlyMethods('GET'));
  router.all('/:id', onlyMethods('PATCH'));
  return router;
}
{% endif %}
