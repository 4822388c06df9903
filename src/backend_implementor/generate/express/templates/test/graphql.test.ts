{% if graphql %}
{% set B = graphql_batch %}
{% macro who(user) %}{% if auth %}.set(t.as({{ user }})){% endif %}{% endmacro %}
import { buildSchema, isObjectType } from 'graphql';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executableSchema, LIMITS, SDL } from '../src/graphql/router.js';
import { resolvers } from '../src/graphql/resolvers.js';
import { setup, type TestContext } from './helpers.js';
import { type ResourceName, samples } from './samples.js';

interface GraphqlError {
  message: string;
  extensions?: { code?: string; errors?: { path: string; message: string }[] };
}
interface Answer {
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  data?: Record<string, any> | null;
  errors?: GraphqlError[];
}

/** Each resource's operations and what a client can select of it (references as { id }). */
const OPS: Record<
  ResourceName,
  {
    one: string;
    many: string;
    create: string;
    update: string;
    remove: string;
    type: string;
    input: boolean;
    refs: string[];
    selection: string;
    owner: { list: boolean; read: boolean; update: boolean; delete: boolean };
  }
> = {
{% for r in resources %}
  {{ r.name }}: {
    one: '{{ r.gql.one }}',
    many: '{{ r.gql.many }}',
    create: '{{ r.gql.create }}',
    update: '{{ r.gql.update }}',
    remove: '{{ r.gql.delete }}',
    type: '{{ r.type_name }}',
    input: {{ (r.fields | selectattr('writable') | list | length > 0) | ts }},
    refs: {{ r.fields | selectattr('ref_table') | rejectattr('private') | map(attribute='name') | list | ts }},
    selection: '{{ r.gql_selection }}',
    owner: { {% for a in ['list', 'read', 'update', 'delete'] %}{{ a }}: {{ (r.access[a] == 'owner') | ts }}{{ ', ' if not loop.last else '' }}{% endfor %} },
  },
{% endfor %}
};

let t: TestContext;
/** The SQL of every statement the app runs. */
const statements: string[] = [];

beforeAll(async () => {
  t = await setup({}, (sql) => statements.push(sql));
});

afterAll(async () => {
  await t?.close();
});

async function gql(query: string, variables: Record<string, unknown> = {}{{ ', user: string | null = null' if auth else '' }}): Promise<Answer> {
  const res = await request(t.app).post('/graphql'){{ who('user') }}.send({ query, variables });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Answer;
}

const code = (answer: Answer) => answer.errors?.[0]?.extensions?.code;

/** A REST body as GraphQL answers it: a reference is the object it names, here by its id. */
const asGraphql = (refs: string[], row: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(row).map(([key, value]) => [key, refs.includes(key) && value !== null ? { id: value } : value]));

const createOp = (op: (typeof OPS)[ResourceName]) =>
  op.input
    ? `mutation ($input: ${op.type}CreateInput!) { row: ${op.create}(input: $input) { ${op.selection} } }`
    : `mutation { row: ${op.create} { ${op.selection} } }`;

const updateOp = (op: (typeof OPS)[ResourceName]) =>
  op.input
    ? `mutation ($id: ID!, $input: ${op.type}UpdateInput!) { row: ${op.update}(id: $id, input: $input) { ${op.selection} } }`
    : `mutation ($id: ID!) { row: ${op.update}(id: $id) { ${op.selection} } }`;

const readOp = (op: (typeof OPS)[ResourceName], selection = op.selection) =>
  `query ($id: ID!) { row: ${op.one}(id: $id) { ${selection} } }`;

const listOp = (op: (typeof OPS)[ResourceName]) => `{ page: ${op.many}(limit: 100, count: exact) { items { id } total count } }`;

const deleteOp = (op: (typeof OPS)[ResourceName]) => `mutation ($id: ID!) { done: ${op.remove}(id: $id) }`;

describe('schema.graphql', () => {
  it('has a resolver for every query and mutation, and the server builds from it', () => {
    const schema = buildSchema(SDL);
    const map = resolvers({} as never{{ ', {} as never' if auth else '' }});
    for (const root of ['Query', 'Mutation']) {
      const type = schema.getType(root);
      if (!isObjectType(type)) throw new Error(`no ${root} type`);
      expect(Object.keys(map[root] ?? {}).sort()).toEqual(Object.keys(type.getFields()).sort());
    }
    expect(() => executableSchema({ Query: { no_such_field: () => null } })).toThrow(/no field Query.no_such_field/);
  });
});

for (const name of Object.keys(OPS) as ResourceName[]) {
  const op = OPS[name];
  const plan = samples[name];
{% if auth %}
  const actors = plan.actors;
{% endif %}

  describe(`GraphQL ${name}`, () => {
    it('creates, reads, lists, updates and deletes a row, which reads the same through REST', async () => {
      const created = await gql(createOp(op), { input: await t.body(name) }{{ ', actors.create' if auth else '' }});
      expect(created.errors).toBeUndefined();
      const row = created.data?.row;
      const rest = await request(t.app).get(`/${name}/${row.id}`){{ who('actors.read') }}.expect(200);
      expect(row).toEqual(asGraphql(op.refs, rest.body));

      const read = await gql(readOp(op), { id: row.id }{{ ', actors.read' if auth else '' }});
      expect(read.data?.row).toEqual(row);

      const listed = await gql(listOp(op){{ ', {}, actors.list' if auth else '' }});
      const restList = await request(t.app).get(`/${name}?count=exact&limit=100`){{ who('actors.list') }}.expect(200);
      expect(listed.data?.page.items.map((item: { id: string }) => item.id)).toEqual(restList.body.items.map((item: { id: string }) => item.id));
      expect(listed.data?.page).toMatchObject({ total: restList.body.total, count: 'exact' });

      if (plan.patch_field !== null && op.input) {
        const patch = { [plan.patch_field]: plan.patch_value };
        const updated = await gql(updateOp(op), { id: row.id, input: patch }{{ ', actors.update' if auth else '' }});
        expect(updated.errors).toBeUndefined();
        expect(updated.data?.row).toMatchObject(asGraphql(op.refs, patch));
      }

      const deleted = await gql(deleteOp(op), { id: row.id }{{ ', actors.delete' if auth else '' }});
      expect(deleted.data?.done).toBe(true);
      expect((await gql(readOp(op), { id: row.id }{{ ', actors.read' if auth else '' }})).data?.row).toBeNull();
      expect(code(await gql(deleteOp(op), { id: row.id }{{ ', actors.delete' if auth else '' }}))).toBe('NOT_FOUND');
    });

    it('reads an id that names nothing as null, and changing it is NOT_FOUND', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
        expect((await gql(readOp(op), { id }{{ ', actors.read' if auth else '' }})).data?.row).toBeNull();
        expect(code(await gql(deleteOp(op), { id }{{ ', actors.delete' if auth else '' }}))).toBe('NOT_FOUND');
      }
    });

    it('answers an invalid input as BAD_USER_INPUT naming the field, and stores nothing', async () => {
      if (!plan.invalid || !op.input) return;
      const [field, value] = plan.invalid;
      const before = await request(t.app).get(`/${name}?count=exact`){{ who('actors.list') }}.expect(200);
      const answer = await gql(createOp(op), { input: { ...(await t.body(name)), [field]: value } }{{ ', actors.create' if auth else '' }});
      expect(code(answer)).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(answer.errors)).toContain(field);
      expect(JSON.stringify(answer.errors)).not.toMatch(/\(\S+:\d+:\d+\)|select .* from|insert into/i); // no stack, no SQL
      const after = await request(t.app).get(`/${name}?count=exact`){{ who('actors.list') }}.expect(200);
      expect(after.body.total).toBe(before.body.total);
    });

    it('has no field for private data', async () => {
      for (const field of plan.private) {
        const answer = await gql(`{ ${op.many}(limit: 1) { items { ${field} } } }`{{ ', {}, actors.list' if auth else '' }});
        expect(code(answer)).toBe('GRAPHQL_VALIDATION_FAILED');
      }
    });
{% if auth %}

    it('refuses whom REST refuses: anonymous callers are UNAUTHENTICATED, roles left out FORBIDDEN', async () => {
      const row = await t.create(name);
      const input = op.input ? await t.body(name) : undefined;
      const attempt: Record<keyof typeof actors, (user: string | null) => Promise<Answer>> = {
        list: (user) => gql(listOp(op), {}, user),
        read: (user) => gql(readOp(op), { id: row.id }, user),
        create: (user) => gql(createOp(op), { input }, user),
        update: (user) => gql(updateOp(op), { id: row.id, input: {} }, user),
        delete: (user) => gql(deleteOp(op), { id: row.id }, user),
      };
      for (const action of Object.keys(attempt) as (keyof typeof actors)[]) {
        if (actors[action] !== null) expect(code(await attempt[action](null)), action).toBe('UNAUTHENTICATED');
        const forbidden = plan.forbidden[action];
        if (forbidden !== null) expect(code(await attempt[action](forbidden)), action).toBe('FORBIDDEN');
      }
      // Nothing was changed or removed by the refused calls.
      await request(t.app).get(`/${name}/${row.id}`){{ who('actors.read') }}.expect(200);
    });

    it("treats another user's row as missing: null to read, NOT_FOUND to change, absent from lists", async () => {
      const stranger = plan.stranger;
      if (stranger === null) return;
      const row = await t.create(name);
      if (op.owner.read) expect((await gql(readOp(op), { id: row.id }, stranger)).data?.row).toBeNull();
      if (op.owner.list) {
        const listed = await gql(listOp(op), {}, stranger);
        expect(listed.data?.page.items.map((item: { id: string }) => item.id)).not.toContain(row.id);
      }
      if (op.owner.update) expect(code(await gql(updateOp(op), { id: row.id, input: {} }, stranger))).toBe('NOT_FOUND');
      if (op.owner.delete) expect(code(await gql(deleteOp(op), { id: row.id }, stranger))).toBe('NOT_FOUND');
      await request(t.app).get(`/${name}/${row.id}`).set(t.as(actors.read)).expect(200);
    });
{% endif %}
  });
}
{% if auth %}

describe('GraphQL me', () => {
  it('is the signed-in user, and UNAUTHENTICATED without a session', async () => {
    const [key, user] = Object.entries(t.users)[0] as [string, { id: string; email: string }];
    expect((await gql('{ me { id email role } }', {}, key)).data?.me).toMatchObject({ id: user.id, email: user.email });
    expect(code(await gql('{ me { id } }'))).toBe('UNAUTHENTICATED');
  });
});
{% endif %}

describe('GraphQL over HTTP', () => {
{% if B %}
  it('reads {{ B.child.name }} with their {{ B.field }} and its {{ B.back }} in the same few statements for any page size', async () => {
    const query = `query ($limit: Int!) {
      {{ B.child.gql.many }}(limit: $limit, count: exact) { items { id {{ B.field }} { id {{ B.back }}(limit: 5) { total items { id } } } } }
    }`;
    // Each with a parent of its own (samples are distinct for 40 rows per resource, this file's included).
    for (let i = 0; i < 20; i++) await t.create('{{ B.child.name }}');
    const counts: number[] = [];
    for (const limit of [2, 20]) {
      statements.length = 0;
      const answer = await gql(query, { limit }{{ ', samples.' ~ B.child.name ~ '.actors.list' if auth else '' }});
      expect(answer.errors).toBeUndefined();
      expect(answer.data?.{{ B.child.gql.many }}.items).toHaveLength(limit);
      counts.push(statements.length);
    }
    // A page, its count, one batch of {{ B.parent.name }}, one page of {{ B.back }} per batch and its count.
    expect(counts[1]).toBe(counts[0]);
    expect(counts[0]).toBeLessThanOrEqual(6);
  });

  it('refuses a query nested deeper than the depth limit before running it', async () => {
    let selection = 'id';
    for (let depth = 0; depth <= LIMITS.maxDepth; depth += 2) {
      selection = `{{ B.field }} { {{ B.back }}(limit: 1) { items { ${selection} } } }`;
    }
    statements.length = 0;
    const answer = await gql(`{ {{ B.child.gql.many }}(limit: 1) { items { ${selection} } } }`{{ ', {}, samples.' ~ B.child.name ~ '.actors.list' if auth else '' }});
    expect(code(answer)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(answer.errors?.[0]?.message).toMatch(/depth limit/);
    expect(statements).toEqual([]);
  });
{% endif %}

  it('refuses more aliases than the limit', async () => {
    const op = Object.values(OPS)[0];
    const read = `${op?.one}(id: "00000000-0000-4000-8000-000000000000") { id }`;
    const aliases = Array.from({ length: LIMITS.maxAliases + 1 }, (_, i) => `a${i}: ${read}`).join(' ');
    statements.length = 0;
    const answer = await gql(`{ ${aliases} }`);
    expect(code(answer)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(answer.errors?.[0]?.message).toMatch(/[Aa]liases limit/);
    expect(statements).toEqual([]);
  });

  it('refuses a batch of operations, and anything but JSON', async () => {
    const batch = await request(t.app)
      .post('/graphql')
      .send([{ query: '{ __typename }' }, { query: '{ __typename }' }])
      .expect(400);
    expect(batch.body.detail).toMatch(/Batched operations/);
    await request(t.app).post('/graphql').set('Content-Type', 'text/plain').send('{ __typename }').expect(415);
  });

  it('runs queries over GET but never mutations', async () => {
    const query = await request(t.app).get('/graphql').query({ query: '{ __typename }' }).expect(200);
    expect(query.body.data).toEqual({ __typename: 'Query' });
    const op = Object.values(OPS)[0];
    await request(t.app)
      .get('/graphql')
      .query({ query: `mutation { ${op?.remove}(id: "00000000-0000-4000-8000-000000000000") }` })
      .expect(405);
  });

  it('answers introspection outside production, and refuses it and field hints in production', async () => {
    const introspect = '{ __schema { queryType { name } } }';
    expect((await gql(introspect)).data?.__schema.queryType.name).toBe('Query');
    const production = await setup({ NODE_ENV: 'production'{{ ", JWT_SECRET: 'a-production-secret-of-at-least-32-bytes'" if bearer_sessions else '' }} });
    try {
      const refused = await request(production.app).post('/graphql').send({ query: introspect }).expect(200);
      expect(refused.body.errors[0].message).toMatch(/introspection has been disabled/);
      const typo = await request(production.app).post('/graphql').send({ query: `{ ${Object.values(OPS)[0]?.many}x { total } }` });
      expect(typo.body.errors[0].message).not.toMatch(/Did you mean/);
    } finally {
      await production.close();
    }
  });
});
{% endif %}
