{% set R = r.type_name %}
{% macro authorized(action) %}{% if auth %}authorize({{ r.access_ts(action) }}), {% endif %}{% endmacro %}
import { {{ r.imports_drizzle | join(', ') }} } from 'drizzle-orm';
import { Router } from 'express';
{% if r.imports_user_type %}
import type { AuthUser } from '../auth/sessions.js';
{% endif %}
import type { Db } from '../db/client.js';
import { {{ r.imports_tables | join(', ') }} } from '../db/schema.js';
import { {{ r.imports_errors | join(', ') }} } from '../errors.js';
{% if r.imports_authorize %}
import { {{ r.imports_authorize | join(', ') }} } from '../middleware/authorize.js';
{% endif %}
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { {{ R }}Create, {{ R }}ListQuery, {{ R }}Update } from '../schemas.js';
import { {{ 'type Bind, ' if (r.filters or r.any_owner_action) else '' }}idParam{{ ', inline' if r.any_owner_action else '' }}, Inserts{{ ', iso' if r.has_datetime else '' }}, List, sorting } from './common.js';

type Row = typeof {{ r.var }}.$inferSelect;

{% if r.private_fields %}
// Private fields ({{ r.private_fields | join(', ') }}) are stored but never returned.
{% endif %}
const toJson = (row: Row) => ({
  id: row.id,
{% if r.owned %}
  owner_id: row.owner_id,
{% endif %}
{% for f in r.fields if not f.private %}
  {{ f.name }}: {{ f.to_json }},
{% endfor %}
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});
{% if r.sort %}

/** The columns ?sort= may name (also as -name for descending). */
const sortable = { {% for s in r.sort %}{{ s }}: {{ r.var }}.{{ s }}{{ ', ' if not loop.last else '' }}{% endfor %} };
{% endif %}
{% if r.any_owner_action %}

/** Rows this user may touch under `owner` access: their own{{ ', or all of them for the admin role' if admin_role else '' }}. */
const ownedBy = (user: AuthUser, bind: Bind = inline) =>
  isAdmin(user) ? undefined : eq({{ r.var }}.owner_id, bind('owner', user.id));
{% endif %}

export function {{ r.router }}(db: Db): Router {
  const router = Router();
  // Statements built once and prepared once per connection, not per request: reading one row, lists, inserts.
  const findById = db
    .select()
    .from({{ r.var }})
    .where(eq({{ r.var }}.id, sql.placeholder('id')))
    .prepare('{{ r.name }}_find_by_id');
  const list = new List(db, {{ r.var }}, '{{ r.name }}');
  const inserts = new Inserts(db, {{ r.var }}, '{{ r.name }}');
{% if r.access['read'] == 'owner' %}
  const findOwnById = db
    .select()
    .from({{ r.var }})
    .where(and(eq({{ r.var }}.id, sql.placeholder('id')), eq({{ r.var }}.owner_id, sql.placeholder('owner'))))
    .prepare('{{ r.name }}_find_own_by_id');
{% endif %}
{% if r.guards %}
{% set user_type = 'AuthUser | undefined' if r.guard_user_optional else 'AuthUser' %}

  /**
   * A reference may only name a row the user can read{% for g in r.guards %} ({{ g.field }}: {% if g.rule == 'owner' %}their own {{ g.target.name }}{{ ', or any for the admin role' if admin_role else '' }}{% else %}{{ g.target.name }}, for {{ g.rule | join(', ') }}{% endif %}){{ ';' if not loop.last else '' }}{% endfor %}.
   * Any other id, someone else's included, gets the same 409 as an id that does not exist.
   */
  async function checkReferences(body: { {% for g in r.guards %}{{ g.field }}?: string | null{{ '; ' if not loop.last else '' }}{% endfor %} }, user: {{ user_type }}): Promise<void> {
    const errors: FieldError[] = [];
{% for g in r.guards %}
{% set T = g.target.var %}
    if (body.{{ g.field }} != null) {
{% if g.rule == 'owner' %}
{% set cond = 'and(eq(' ~ T ~ '.id, body.' ~ g.field ~ '), isAdmin(user) ? undefined : eq(' ~ T ~ '.owner_id, user.id))' %}
{% set allowed = 'user' if r.guard_user_optional else '' %}
{% else %}
{% set cond = 'eq(' ~ T ~ '.id, body.' ~ g.field ~ ')' %}
{% set allowed = ('user && ' if r.guard_user_optional else '') ~ (g.rule | ts) ~ '.includes(user.role)' %}
{% endif %}
{% if allowed %}
      const [found] = {{ allowed }}
        ? await db
            .select({ id: {{ T }}.id })
            .from({{ T }})
            .where({{ cond }})
        : [];
{% else %}
      const [found] = await db
        .select({ id: {{ T }}.id })
        .from({{ T }})
        .where({{ cond }});
{% endif %}
      if (!found) errors.push({ path: 'body.{{ g.field }}', message: 'No such {{ g.label }}.' });
    }
{% endfor %}
    // 409 like a reference the database refuses: the body is well-formed, the row it names is not there.
    if (errors.length > 0) throw new HttpError(409, 'A referenced record does not exist.', errors);
  }
{% endif %}

  router.get('/', {{ authorized('list') }}async (req, res) => {
    const query = validate({{ R }}ListQuery, req.query, 'query');
{% if r.access['list'] == 'owner' %}
    const user = currentUser(req);
{% endif %}
    const sorted = sorting({{ 'query.sort, sortable' if r.sort else 'undefined, {}' }}, {{ r.var }}.created_at, {{ r.var }}.id);
{% if r.filters or r.access['list'] == 'owner' %}
    const conditions = (bind: Bind) =>
      and(
{% if r.access['list'] == 'owner' %}
        ownedBy(user, bind),
{% endif %}
{% for f in r.filters %}
        query.{{ f.name }} === undefined ? undefined : eq({{ r.var }}.{{ f.name }}, bind('filter_{{ f.name }}', query.{{ f.name }})),
{% endfor %}
      );
    res.json(await list.find(query, sorted, conditions, toJson));
{% else %}
    res.json(await list.find(query, sorted, () => undefined, toJson));
{% endif %}
  });

  router.get('/:id', {{ authorized('read') }}async (req, res) => {
    const id = idParam(req.params.id);
{% if r.access['read'] == 'owner' %}
    const user = currentUser(req);
    const [row] = await (isAdmin(user) ? findById.execute({ id }) : findOwnById.execute({ id, owner: user.id }));
{% else %}
    const [row] = await findById.execute({ id });
{% endif %}
    if (!row) throw notFound();
    res.json(toJson(row));
  });

  router.post('/', requireJson, {{ authorized('create') }}async (req, res) => {
    const body = validate({{ R }}Create, req.body, 'body');
{% if r.guards %}
    await checkReferences(body, {{ 'req.user' if r.guard_user_optional else 'currentUser(req)' }});
{% endif %}
{% if r.owned %}
    // The owner always comes from the token; the strict body schema has no owner_id to set.
    const row = await inserts.insert({ ...body, owner_id: currentUser(req).id });
{% else %}
    const row = await inserts.insert(body);
{% endif %}
    res.status(201).location(`/{{ r.name }}/${row.id}`).json(toJson(row));
  });

  router.patch('/:id', requireJson, {{ authorized('update') }}async (req, res) => {
    const id = idParam(req.params.id);
    const body = validate({{ R }}Update, req.body, 'body');
{% if r.guards %}
    await checkReferences(body, {{ 'req.user' if r.guard_user_optional else 'currentUser(req)' }});
{% endif %}
    const [row] = await db
      .update({{ r.var }})
      .set({ ...body, updated_at: new Date() })
{% if r.access['update'] == 'owner' %}
      .where(and(eq({{ r.var }}.id, id), ownedBy(currentUser(req))))
{% else %}
      .where(eq({{ r.var }}.id, id))
{% endif %}
      .returning();
    if (!row) throw notFound();
    res.json(toJson(row));
  });

  router.delete('/:id', {{ authorized('delete') }}async (req, res) => {
    const [row] = await db
      .delete({{ r.var }})
{% if r.access['delete'] == 'owner' %}
      .where(and(eq({{ r.var }}.id, idParam(req.params.id)), ownedBy(currentUser(req))))
{% else %}
      .where(eq({{ r.var }}.id, idParam(req.params.id)))
{% endif %}
      .returning({ id: {{ r.var }}.id });
    if (!row) throw notFound();
    res.status(204).end();
  });

  router.all('/', onlyMethods('GET, POST'));
  router.all('/:id', onlyMethods('GET, PATCH, DELETE'));
  return router;
}
