{% set R = r.type_name %}
{% set U = 'user: AuthUser | undefined, ' if auth else '' %}
{% macro permit(action) %}{{ 'const me = ' if r.user_needed[action] else '' }}permit({{ r.var }}Access.{{ action }}, user);{% endmacro %}
import { {{ r.service_drizzle | join(', ') }} } from 'drizzle-orm';
import type { z } from 'zod';
{% if auth %}
import type { AuthUser } from '../auth/sessions.js';
{% endif %}
import type { Db } from '../db/client.js';
import { {{ r.imports_tables | join(', ') }} } from '../db/schema.js';
{% if r.guards %}
import { type FieldError, HttpError } from '../errors.js';
{% endif %}
{% if auth %}
import { type Access, {{ 'isAdmin, ' if r.uses_is_admin else '' }}permit } from '../middleware/authorize.js';
{% endif %}
import type { {{ R }}Create, {{ R }}ListQuery, {{ R }}Update } from '../schemas.js';
import { {{ r.service_common | join(', ') }} } from './common.js';

type Row = typeof {{ r.var }}.$inferSelect;

{% if r.private_fields %}
// Private fields ({{ r.private_fields | join(', ') }}) are stored but never returned.
{% endif %}
export const toJson = (row: Row) => ({
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

export type {{ R }}Json = ReturnType<typeof toJson>;
{% if auth %}

/** Who may do what with {{ r.name }}, from the spec; REST and GraphQL both go through the methods below. */
export const {{ r.var }}Access = {
{% for action in ['list', 'read', 'create', 'update', 'delete'] %}
  {{ action }}: {{ r.access_ts(action) }},
{% endfor %}
} as const satisfies Record<string, Access>;
{% endif %}
{% if r.sort %}

/** The columns ?sort= may name (also as -name for descending). */
const sortable = { {% for s in r.sort %}{{ s }}: {{ r.var }}.{{ s }}{{ ', ' if not loop.last else '' }}{% endfor %} };
{% endif %}
{% if r.any_owner_action %}

/** Rows this user may touch under `owner` access: their own{{ ', or all of them for the admin role' if admin_role else '' }}. */
const ownedBy = (user: AuthUser, bind: Bind = inline) =>
  isAdmin(user) ? undefined : eq({{ r.var }}.owner_id, bind('owner', user.id));
{% endif %}

/** The rules of {{ r.name }}: access, ownership, references, and the statements that read and write them. */
export class {{ R }}Service {
  // Statements built once and prepared once per connection, not per request: reading one row, lists, inserts.
  private readonly findById;
{% if r.access['read'] == 'owner' %}
  private readonly findOwnById;
{% endif %}
  private readonly lists: List<typeof {{ r.var }}>;
  private readonly inserts: Inserts<typeof {{ r.var }}>;

  constructor(private readonly db: Db) {
    this.findById = db
      .select()
      .from({{ r.var }})
      .where(eq({{ r.var }}.id, sql.placeholder('id')))
      .prepare('{{ r.name }}_find_by_id');
{% if r.access['read'] == 'owner' %}
    this.findOwnById = db
      .select()
      .from({{ r.var }})
      .where(and(eq({{ r.var }}.id, sql.placeholder('id')), eq({{ r.var }}.owner_id, sql.placeholder('owner'))))
      .prepare('{{ r.name }}_find_own_by_id');
{% endif %}
    this.lists = new List(db, {{ r.var }}, '{{ r.name }}');
    this.inserts = new Inserts(db, {{ r.var }}, '{{ r.name }}');
  }

  /** One page of the rows the query's filters admit, in its sort order, with its `total`. */
  async list({{ U }}query: z.output<typeof {{ R }}ListQuery>) {
{% if auth %}
    {{ permit('list') }}
{% endif %}
    const sorted = sorting({{ 'query.sort, sortable' if r.sort else 'undefined, {}' }}, {{ r.var }}.created_at, {{ r.var }}.id);
{% if r.filters or r.access['list'] == 'owner' %}
    const conditions = (bind: Bind) =>
      and(
{% if r.access['list'] == 'owner' %}
        ownedBy(me, bind),
{% endif %}
{% for f in r.filters %}
        query.{{ f.name }} === undefined ? undefined : eq({{ r.var }}.{{ f.name }}, bind('filter_{{ f.name }}', query.{{ f.name }})),
{% endfor %}
      );
    return this.lists.find(query, sorted, conditions, toJson);
{% else %}
    return this.lists.find(query, sorted, () => undefined, toJson);
{% endif %}
  }

  /** The row, or null when there is none{{ ' the user may read (another user\'s reads as missing)' if r.access['read'] == 'owner' else '' }}. */
  async find({{ U }}id: string): Promise<{{ R }}Json | null> {
{% if auth %}
    {{ permit('read') }}
{% endif %}
{% if r.access['read'] == 'owner' %}
    const [row] = await (isAdmin(me) ? this.findById.execute({ id }) : this.findOwnById.execute({ id, owner: me.id }));
{% else %}
    const [row] = await this.findById.execute({ id });
{% endif %}
    return row ? toJson(row) : null;
  }
{% if graphql and r.referenced %}

  /** Many rows by id in one statement, in the order asked (null where find would give null): for DataLoader. */
  async findMany({{ U }}ids: readonly string[]): Promise<({{ R }}Json | null)[]> {
{% if auth %}
    {{ permit('read') }}
{% endif %}
    const rows = await this.db
      .select()
      .from({{ r.var }})
{% if r.access['read'] == 'owner' %}
      .where(and(inArray({{ r.var }}.id, [...ids]), ownedBy(me)));
{% else %}
      .where(inArray({{ r.var }}.id, [...ids]));
{% endif %}
    const byId = new Map(rows.map((row) => [row.id, toJson(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }
{% endif %}
{% for ref in r.ref_fields %}

  /**
   * For each {{ ref }} in `parents`, one page of the {{ r.name }} that refer to it (oldest first) and how many
   * there are: GraphQL's reverse side of the reference, two statements for any number of parents.
   */
  async pagesBy{{ ref | pascal }}({{ U }}parents: readonly string[], page: Page) {
{% if auth %}
    {{ permit('list') }}
{% endif %}
{% if r.access['list'] == 'owner' %}
    return childPages(this.db, {{ r.var }}, {{ r.var }}.{{ ref }}, parents, page, toJson, ownedBy(me));
{% else %}
    return childPages(this.db, {{ r.var }}, {{ r.var }}.{{ ref }}, parents, page, toJson);
{% endif %}
  }
{% endfor %}
{% if r.guards %}
{% set user_type = 'AuthUser | undefined' if r.guard_user_optional else 'AuthUser' %}

  /**
   * A reference may only name a row the user can read{% for g in r.guards %} ({{ g.field }}: {% if g.rule == 'owner' %}their own {{ g.target.name }}{{ ', or any for the admin role' if admin_role else '' }}{% else %}{{ g.target.name }}, for {{ g.rule | join(', ') }}{% endif %}){{ ';' if not loop.last else '' }}{% endfor %}.
   * Any other id, someone else's included, gets the same 409 as an id that does not exist.
   */
  private async checkReferences(body: { {% for g in r.guards %}{{ g.field }}?: string | null{{ '; ' if not loop.last else '' }}{% endfor %} }, user: {{ user_type }}): Promise<void> {
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
        ? await this.db
            .select({ id: {{ T }}.id })
            .from({{ T }})
            .where({{ cond }})
        : [];
{% else %}
      const [found] = await this.db
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

  async create({{ U }}body: z.output<typeof {{ R }}Create>): Promise<{{ R }}Json> {
{% if auth %}
    {{ permit('create') }}
{% endif %}
{% if r.guards %}
    await this.checkReferences(body, {{ 'user' if r.guard_user_optional else 'me' }});
{% endif %}
{% if r.owned %}
    // The owner is always the caller; the strict body schema has no owner_id to set.
    return toJson(await this.inserts.insert({ ...body, owner_id: me.id }));
{% else %}
    return toJson(await this.inserts.insert(body));
{% endif %}
  }

  /** The changed row, or null when there is no such row{{ ' the user owns' if r.access['update'] == 'owner' else '' }}. */
  async update({{ U }}id: string, body: z.output<typeof {{ R }}Update>): Promise<{{ R }}Json | null> {
{% if auth %}
    {{ permit('update') }}
{% endif %}
{% if r.guards %}
    await this.checkReferences(body, {{ 'user' if r.guard_user_optional else 'me' }});
{% endif %}
    const [row] = await this.db
      .update({{ r.var }})
      .set({ ...body, updated_at: new Date() })
{% if r.access['update'] == 'owner' %}
      .where(and(eq({{ r.var }}.id, id), ownedBy(me)))
{% else %}
      .where(eq({{ r.var }}.id, id))
{% endif %}
      .returning();
    return row ? toJson(row) : null;
  }

  /** Whether a row was deleted (false: no such row{{ ' the user owns' if r.access['delete'] == 'owner' else '' }}). */
  async remove({{ U }}id: string): Promise<boolean> {
{% if auth %}
    {{ permit('delete') }}
{% endif %}
    const [row] = await this.db
      .delete({{ r.var }})
{% if r.access['delete'] == 'owner' %}
      .where(and(eq({{ r.var }}.id, id), ownedBy(me)))
{% else %}
      .where(eq({{ r.var }}.id, id))
{% endif %}
      .returning({ id: {{ r.var }}.id });
    return row !== undefined;
  }
}
