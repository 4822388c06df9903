{% if admin_role %}
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthService, DEFAULT_ROLE } from '../src/auth/service.js';
import { ADMIN_ROLE } from '../src/middleware/authorize.js';
import { setup, signIn, type TestContext } from './helpers.js';

let t: TestContext;

beforeAll(async () => {
  t = await setup();
});

afterAll(async () => {
  await t?.close();
});

describe('user administration', () => {
  it('lets the admin role list users (200) and nobody else (401/403)', async () => {
    const res = await request(t.app).get('/users?limit=100').set(t.as(ADMIN_ROLE)).expect(200);
    expect(res.body.items.map((u: { email: string }) => u.email)).toContain(`${DEFAULT_ROLE}@example.com`);
    expect(res.body.items[0]).not.toHaveProperty('password_hash');
    // Page by page through next_cursor: the same accounts in the same order.
    const ids: string[] = [];
    for (let cursor: string | null | undefined; cursor !== null; ) {
      const page: request.Response = await request(t.app)
        .get('/users')
        .query({ limit: 1, ...(cursor ? { cursor } : {}) })
        .set(t.as(ADMIN_ROLE))
        .expect(200);
      ids.push(...page.body.items.map((u: { id: string }) => u.id));
      cursor = page.body.next_cursor;
    }
    expect(ids).toEqual(res.body.items.map((u: { id: string }) => u.id));
    await request(t.app).get('/users').expect(401);
{% if default_role != admin_role %}
    await request(t.app).get('/users').set(t.as(DEFAULT_ROLE)).expect(403);
{% endif %}
  });

  it('lets the admin change a role (200), validating the body (400) and id (404)', async () => {
    const target = t.users[`${DEFAULT_ROLE}_2`]!;
    const res = await request(t.app)
      .patch(`/users/${target.id}`)
      .set(t.as(ADMIN_ROLE))
      .send({ role: ADMIN_ROLE })
      .expect(200);
    expect(res.body).toMatchObject({ id: target.id, role: ADMIN_ROLE });
    await request(t.app).patch(`/users/${target.id}`).set(t.as(ADMIN_ROLE)).send({ role: 'emperor' }).expect(400);
    await request(t.app)
      .patch(`/users/${target.id}`)
      .set(t.as(ADMIN_ROLE))
      .send({ role: DEFAULT_ROLE, email: 'x@example.com' })
      .expect(400);
    await request(t.app)
      .patch('/users/6b0a3b5e-7f2d-4c8e-9a1b-2c3d4e5f6a7b')
      .set(t.as(ADMIN_ROLE))
      .send({ role: DEFAULT_ROLE })
      .expect(404);
{% if default_role != admin_role %}
    await request(t.app).patch(`/users/${target.id}`).set(t.as(DEFAULT_ROLE)).send({ role: ADMIN_ROLE }).expect(403);
{% endif %}
  });

  it('seeds (and re-seeds) the admin account from ADMIN_EMAIL / ADMIN_PASSWORD', async () => {
    const auth = new AuthService(t.database.db, t.config);
    await auth.seedAdmin('root@example.com', 'first-password', ADMIN_ROLE);
    await auth.seedAdmin('root@example.com', 'second-password', ADMIN_ROLE);
    await request(t.app).post('/auth/login').send({ email: 'root@example.com', password: 'first-password' }).expect(401);
    const me = await request(t.app).get('/auth/me').set(await signIn(t.app, 'root@example.com', 'second-password')).expect(200);
    expect(me.body.role).toBe(ADMIN_ROLE);
  });
});
{% endif %}
