{% if admin_role %}
import { asc, eq } from 'drizzle-orm';
import { Router } from 'express';
import type { Db } from '../db/client.js';
import { users } from '../db/schema.js';
import { notFound } from '../errors.js';
import { ADMIN_ROLE, authorize } from '../middleware/authorize.js';
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { idParam } from '../resources/common.js';
import { UserListQuery, UserUpdate } from '../schemas.js';
import { toPublicUser } from './service.js';

/** Account administration, for the admin role only. */
export function usersRouter(db: Db): Router {
  const router = Router();
  const adminOnly = authorize([ADMIN_ROLE]);

  router.get('/', adminOnly, async (req, res) => {
    const query = validate(UserListQuery, req.query, 'query');
    const [rows, total] = await Promise.all([
      db.select().from(users).orderBy(asc(users.created_at), asc(users.id)).limit(query.limit).offset(query.offset),
      db.$count(users),
    ]);
    res.json({ items: rows.map(toPublicUser), total, limit: query.limit, offset: query.offset });
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
