{% set plan = samples[r.name] %}
{% set path = '/' ~ r.name %}
{% macro who(action) %}{% if auth %}.set(t.as(actors.{{ action }})){% endif %}{% endmacro %}
{% if r.fields | selectattr('nullable') | selectattr('writable') | list %}
import { sql } from 'drizzle-orm';
{% endif %}
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setup, type TestContext } from './helpers.js';
import { samples } from './samples.js';

const plan = samples.{{ r.name }};
{% if auth %}
const actors = plan.actors;
{% endif %}
let t: TestContext;

beforeAll(async () => {
  t = await setup();
});

afterAll(async () => {
  await t?.close();
});

/** Every id of the list in order, two rows a page, following next_cursor to the last page. */
async function walk(query: Record<string, string> = {}): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: request.Response = await request(t.app)
      .get('{{ path }}')
      .query({ ...query, limit: 2, ...(cursor === null ? {} : { cursor }) }){{ who('list') }}
      .expect(200);
    ids.push(...page.body.items.map((item: { id: string }) => item.id));
    cursor = page.body.next_cursor;
  } while (cursor !== null);
  return ids;
}

describe('{{ path }}', () => {
  it('creates a row (201 + Location) that reads back with every public field', async () => {
    const body = await t.body('{{ r.name }}');
    const created = await request(t.app).post('{{ path }}'){{ who('create') }}.send(body).expect(201);
    expect(created.headers.location).toBe(`{{ path }}/${created.body.id}`);
    for (const [field, value] of Object.entries(body)) {
      if (plan.private.includes(field)) expect(created.body).not.toHaveProperty(field);
      else expect(created.body[field]).toEqual(value);
    }
{% if r.owned %}
    expect(created.body.owner_id).toBe(t.users[actors.create!]!.id);
{% endif %}
    const read = await request(t.app).get(`{{ path }}/${created.body.id}`){{ who('read') }}.expect(200);
    expect(read.body).toEqual(created.body);
  });

{% set nullables = r.fields | selectattr('nullable') | selectattr('writable') | map(attribute='name') | list %}
{% if nullables %}
  it('stores an explicit null as SQL NULL, not as a JSON or text "null"', async () => {
    const body = { ...(await t.body('{{ r.name }}')), {% for f in nullables %}{{ f }}: null{{ ', ' if not loop.last else '' }}{% endfor %} };
    const created = await request(t.app).post('{{ path }}'){{ who('create') }}.send(body).expect(201);
    const stored = (await t.database.db.execute(
      sql`select {% for f in nullables %}"{{ f }}" is null as "{{ f }}"{{ ', ' if not loop.last else '' }}{% endfor %} from "{{ r.name }}" where id = ${created.body.id}`,
    )) as unknown as { rows: Record<string, boolean>[] };
    expect(stored.rows[0]).toEqual({ {% for f in nullables %}{{ f }}: true{{ ', ' if not loop.last else '' }}{% endfor %} });
  });

{% endif %}
  it('lists a page as {items, total, count, limit, offset}', async () => {
    await t.create('{{ r.name }}');
    await t.create('{{ r.name }}');
    const page = await request(t.app).get('{{ path }}?limit=1&offset=1'){{ who('list') }}.expect(200);
    expect(page.body.items).toHaveLength(1);
    expect(page.body.total).toBeGreaterThanOrEqual(2);
    expect(page.body).toMatchObject({ limit: 1, offset: 1, count: 'exact' });
  });

  it('counts by ?count= (exact, a small table counted exactly by estimate, none)', async () => {
    await t.create('{{ r.name }}');
    const exact = await request(t.app).get('{{ path }}?count=exact'){{ who('list') }}.expect(200);
    const estimate = await request(t.app).get('{{ path }}'){{ who('list') }}.expect(200);
    expect(estimate.body).toMatchObject({ total: exact.body.total, count: 'exact' });
    const none = await request(t.app).get('{{ path }}?count=none'){{ who('list') }}.expect(200);
    expect(none.body).toMatchObject({ total: null, count: 'none' });
    expect(none.body.items.length).toBeGreaterThan(0);
  });

  it('pages by cursor through every row once, in list order; a cursor of its own only (400 otherwise)', async () => {
    for (let i = 0; i < 3; i++) await t.create('{{ r.name }}');
    const all = await request(t.app).get('{{ path }}?limit=100'){{ who('list') }}.expect(200);
    expect(await walk()).toEqual(all.body.items.map((item: { id: string }) => item.id));
    const first = await request(t.app).get('{{ path }}?limit=1'){{ who('list') }}.expect(200);
    const cursor = first.body.next_cursor as string;
    for (const query of [{ cursor: 'bm90LWEtY3Vyc29y' }, { cursor, offset: '1' }{{ ", { cursor, sort: '-" ~ r.sort[0] ~ "' }" if r.sort else '' }}]) {
      const res = await request(t.app).get('{{ path }}').query(query){{ who('list') }}.expect(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
  });

  it('rejects bad list parameters (400)', async () => {
    for (const query of ['limit=101', 'limit=0', 'offset=-1', 'count=all', 'bogus=1', 'sort=password_hash']) {
      const res = await request(t.app).get(`{{ path }}?${query}`){{ who('list') }}.expect(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
  });

  it('rejects unknown body keys, so role, id and owner_id cannot be mass-assigned (400)', async () => {
    const body = await t.body('{{ r.name }}');
    for (const key of ['role', 'id', 'owner_id', 'created_at']) {
      const res = await request(t.app)
        .post('{{ path }}')
{% if auth %}
        .set(t.as(actors.create))
{% endif %}
        .send({ ...body, [key]: key === 'role' ? 'admin' : '00000000-0000-4000-8000-000000000000' })
        .expect(400);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ path: `body.${key}` }));
    }
  });
{% if plan.invalid %}

  it('rejects a value of the wrong type with a per-field error (400)', async () => {
    const body = { ...(await t.body('{{ r.name }}')), {{ plan.invalid[0] }}: {{ plan.invalid[1] | ts }} };
    const res = await request(t.app).post('{{ path }}'){{ who('create') }}.send(body).expect(400);
    expect(res.body).toMatchObject({ status: 400, title: 'Bad Request' });
    expect(res.body.errors[0].path).toBe('body.{{ plan.invalid[0] }}');
  });
{% endif %}
{% if plan.required %}

  it('rejects a body missing a required field (400)', async () => {
    const { {{ plan.required[0] }}: _omitted, ...body } = await t.body('{{ r.name }}');
    const res = await request(t.app).post('{{ path }}'){{ who('create') }}.send(body).expect(400);
    expect(res.body.errors[0].path).toBe('body.{{ plan.required[0] }}');
  });
{% endif %}

  it('answers 404 for unknown and malformed ids', async () => {
    for (const id of ['6b0a3b5e-7f2d-4c8e-9a1b-2c3d4e5f6a7b', 'not-a-uuid', "1' OR '1'='1"]) {
      await request(t.app).get(`{{ path }}/${encodeURIComponent(id)}`){{ who('read') }}.expect(404);
    }
  });
{% if plan.patch_field %}

  it('updates a field (200) and rejects unknown keys (400)', async () => {
    const row = await t.create('{{ r.name }}');
    const patched = await request(t.app)
      .patch(`{{ path }}/${row.id}`)
{% if auth %}
      .set(t.as(actors.update))
{% endif %}
      .send({ {{ plan.patch_field }}: {{ plan.patch_value | ts }} })
      .expect(200);
    expect(patched.body.{{ plan.patch_field }}).toEqual({{ plan.patch_value | ts }});
    await request(t.app).patch(`{{ path }}/${row.id}`){{ who('update') }}.send({ role: 'admin' }).expect(400);
  });
{% endif %}

  it('deletes (204), after which the row is gone (404)', async () => {
    const row = await t.create('{{ r.name }}');
    await request(t.app).delete(`{{ path }}/${row.id}`){{ who('delete') }}.expect(204);
    await request(t.app).get(`{{ path }}/${row.id}`){{ who('read') }}.expect(404);
  });
{% set protected = [] %}
{% for action in ['list', 'read', 'create', 'update', 'delete'] if r.access[action] != 'public' %}{% do protected.append(action) %}{% endfor %}
{% if protected %}

  it('requires a token for {{ protected | join(', ') }} (401)', async () => {
    const row = await t.create('{{ r.name }}');
{% for action in protected %}
    {{ {'list': "await request(t.app).get('" ~ path ~ "').expect(401);", 'read': "await request(t.app).get(`" ~ path ~ "/${row.id}`).expect(401);", 'create': "await request(t.app).post('" ~ path ~ "').send(await t.body('" ~ r.name ~ "')).expect(401);", 'update': "await request(t.app).patch(`" ~ path ~ "/${row.id}`).send({}).expect(401);", 'delete': "await request(t.app).delete(`" ~ path ~ "/${row.id}`).expect(401);"}[action] }}
{% endfor %}
  });
{% endif %}
{% set refused = [] %}
{% for action in ['list', 'read', 'create', 'update', 'delete'] if auth and plan.forbidden[action] %}{% do refused.append(action) %}{% endfor %}
{% if refused %}

  it('refuses roles outside the rule (403)', async () => {
    const row = await t.create('{{ r.name }}');
{% for action in refused %}
{% set who = "t.as(plan.forbidden." ~ action ~ ")" %}
    {{ {'list': "await request(t.app).get('" ~ path ~ "').set(" ~ who ~ ").expect(403);", 'read': "await request(t.app).get(`" ~ path ~ "/${row.id}`).set(" ~ who ~ ").expect(403);", 'create': "await request(t.app).post('" ~ path ~ "').set(" ~ who ~ ").send(await t.body('" ~ r.name ~ "')).expect(403);", 'update': "await request(t.app).patch(`" ~ path ~ "/${row.id}`).set(" ~ who ~ ").send({}).expect(403);", 'delete': "await request(t.app).delete(`" ~ path ~ "/${row.id}`).set(" ~ who ~ ").expect(403);"}[action] }}
{% endfor %}
  });
{% endif %}
{% if plan.unique %}

  it('rejects a duplicate {{ plan.unique[0] }} (409)', async () => {
    // The value sent, not the one read back: a private field is never returned.
    const first = await t.body('{{ r.name }}');
    await t.create('{{ r.name }}', first);
    const body = { ...(await t.body('{{ r.name }}')), {{ plan.unique[0] }}: first.{{ plan.unique[0] }} };
    const res = await request(t.app).post('{{ path }}'){{ who('create') }}.send(body).expect(409);
    expect(res.body.detail).not.toMatch(/select|insert|constraint/i);
  });
{% endif %}
{% for child, field in restrict_children[r.name] %}

  it('refuses to delete a row that {{ child }}.{{ field }} still refers to (409)', async () => {
    const row = await t.create('{{ r.name }}');
    await t.create('{{ child }}', { {{ field }}: row.id });
    await request(t.app).delete(`{{ path }}/${row.id}`){{ who('delete') }}.expect(409);
  });
{% endfor %}
{% if auth and plan.stranger %}

  it("hides one user's rows from another (404, not 403) and lists only their own", async () => {
    const row = await t.create('{{ r.name }}');
    const stranger = t.as(plan.stranger);
{% if r.access['read'] == 'owner' %}
    await request(t.app).get(`{{ path }}/${row.id}`).set(stranger).expect(404);
{% endif %}
{% if r.access['update'] == 'owner' %}
    await request(t.app).patch(`{{ path }}/${row.id}`).set(stranger).send({}).expect(404);
{% endif %}
{% if r.access['delete'] == 'owner' %}
    await request(t.app).delete(`{{ path }}/${row.id}`).set(stranger).expect(404);
{% endif %}
{% if r.access['list'] == 'owner' %}
    const list = await request(t.app).get('{{ path }}?limit=100').set(stranger).expect(200);
    expect(list.body.items.map((item: { id: string }) => item.id)).not.toContain(row.id);
{% endif %}
{% if admin_role and r.access['read'] == 'owner' %}
    await request(t.app).get(`{{ path }}/${row.id}`).set(t.as('{{ admin_role }}')).expect(200);
{% endif %}
    await request(t.app).get(`{{ path }}/${row.id}`){{ who('read') }}.expect(200);
  });
{% endif %}
{% for g in r.guards if g.intruders %}
{% set intruder = g.intruders[0] %}

  it('refuses a {{ g.field }} that names a {{ g.label }} the user cannot read, exactly like an unknown id (409)', async () => {
    const theirs = await t.create('{{ g.target.name }}');
    const body = await t.body('{{ r.name }}');
    const attempt = (id: string) =>
      request(t.app)
        .post('{{ path }}')
{% if intruder %}
        .set(t.as({{ intruder | ts }}))
{% endif %}
        .send({ ...body, {{ g.field }}: id })
        .expect(409);
    const foreign = await attempt(theirs.id);
    expect(foreign.body.errors).toEqual([{ path: 'body.{{ g.field }}', message: 'No such {{ g.label }}.' }]);
    const unknown = await attempt('6b0a3b5e-7f2d-4c8e-9a1b-2c3d4e5f6a7b');
    expect(unknown.body).toEqual(foreign.body);
{% if g.rule == 'owner' and admin_role and (r.access['create'] in ('public', 'authenticated') or admin_role in r.access['create']) %}
    await request(t.app)
      .post('{{ path }}')
      .set(t.as({{ admin_role | ts }}))
      .send({ ...body, {{ g.field }}: theirs.id })
      .expect(201);
{% endif %}
  });
{% endfor %}
{% for f in r.filters %}

  it('filters by {{ f.name }}', async () => {
    const row = await t.create('{{ r.name }}');
    await t.create('{{ r.name }}');
    const value = String(row.{{ f.name }});
    const res = await request(t.app)
      .get('{{ path }}')
      .query({ {{ f.name }}: value, limit: 100 })
{% if auth %}
      .set(t.as(actors.list))
{% endif %}
      .expect(200);
    expect(res.body.items.map((item: { id: string }) => item.id)).toContain(row.id);
    for (const item of res.body.items) expect(String(item.{{ f.name }})).toBe(value);
    // Injection attempts are plain data: a 400 for a typed filter or an empty match, never a 500.
    const probe = await request(t.app).get('{{ path }}').query({ {{ f.name }}: "' OR '1'='1" }){{ who('list') }};
    expect([200, 400]).toContain(probe.status);
    if (probe.status === 200) expect(probe.body.total).toBe(0);
  });
{% endfor %}
{% if r.sort %}

  it('sorts by {{ r.sort | join(', ') }} both ways and rejects other sort keys', async () => {
    await t.create('{{ r.name }}');
    await t.create('{{ r.name }}');
    await t.create('{{ r.name }}');
    for (const field of {{ r.sort | ts }}) {
      const up = await request(t.app).get(`{{ path }}?limit=100&sort=${field}`){{ who('list') }}.expect(200);
      const down = await request(t.app).get(`{{ path }}?limit=100&sort=-${field}`){{ who('list') }}.expect(200);
      const values = (res: request.Response) => res.body.items.map((item: Record<string, unknown>) => item[field]);
      expect(values(down)).toEqual([...values(up)].reverse());
      expect(await walk({ sort: field })).toEqual(up.body.items.map((item: { id: string }) => item.id));
      expect(await walk({ sort: `-${field}` })).toEqual(down.body.items.map((item: { id: string }) => item.id));
    }
    await request(t.app).get('{{ path }}?sort=-id; DROP TABLE users'){{ who('list') }}.expect(400);
  });
{% endif %}
});
