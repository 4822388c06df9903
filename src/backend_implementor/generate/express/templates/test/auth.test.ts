{% if auth %}
import { eq } from 'drizzle-orm';
import { SignJWT } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_ROLE } from '../src/auth/service.js';
import { secretKey, VerifiedTokens } from '../src/auth/tokens.js';
import { users } from '../src/db/schema.js';
import { PASSWORD, setup, type TestContext } from './helpers.js';

let t: TestContext;

beforeAll(async () => {
  t = await setup();
});

afterAll(async () => {
  await t?.close();
});

const login = (email: string, password = PASSWORD) => request(t.app).post('/auth/login').send({ email, password });

describe('registration', () => {
  it('creates an account with the default role (201) and stores an argon2id hash', async () => {
    const res = await request(t.app)
      .post('/auth/register')
      .send({ email: 'New.User@Example.com', password: PASSWORD })
      .expect(201);
    expect(res.body).toEqual({ id: expect.any(String), email: 'new.user@example.com', role: DEFAULT_ROLE });
    const [row] = await t.database.db.select().from(users).where(eq(users.id, res.body.id));
    expect(row?.password_hash).toMatch(/^\$argon2id\$/);
    expect(row?.password_hash).not.toContain(PASSWORD);
  });

  it('never lets the client choose a role (400)', async () => {
    const res = await request(t.app)
      .post('/auth/register')
      .send({ email: 'sneaky@example.com', password: PASSWORD, role: 'admin' })
      .expect(400);
    expect(res.body.errors).toContainEqual(expect.objectContaining({ path: 'body.role' }));
  });

  it('rejects bad emails and passwords outside 8..256 characters (400)', async () => {
    for (const body of [
      { email: 'not-an-email', password: PASSWORD },
      { email: 'short@example.com', password: 'short' },
      { email: 'long@example.com', password: 'x'.repeat(257) },
      { email: 'missing@example.com' },
    ]) {
      await request(t.app).post('/auth/register').send(body).expect(400);
    }
  });

  it('refuses a second account with the same email (409)', async () => {
    await request(t.app).post('/auth/register').send({ email: 'twice@example.com', password: PASSWORD }).expect(201);
    await request(t.app).post('/auth/register').send({ email: 'TWICE@example.com', password: PASSWORD }).expect(409);
  });
});

describe('login and tokens', () => {
  it('returns a token pair (200) that authenticates /auth/me', async () => {
    const res = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    expect(res.body).toEqual({
      access_token: expect.any(String),
      refresh_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: t.config.accessTtlSeconds,
    });
    const me = await request(t.app).get('/auth/me').set('Authorization', `Bearer ${res.body.access_token}`).expect(200);
    expect(me.body).toEqual({ id: t.users[DEFAULT_ROLE]!.id, email: `${DEFAULT_ROLE}@example.com`, role: DEFAULT_ROLE });
  });

  it('rejects a wrong password and an unknown email alike (401)', async () => {
    const wrong = await login(`${DEFAULT_ROLE}@example.com`, 'wrong-password').expect(401);
    const unknown = await login('nobody@example.com').expect(401);
    expect(wrong.body.detail).toBe(unknown.body.detail);
  });

  it('gives two users with the same password different tokens', async () => {
    const a = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    const b = await login(`${DEFAULT_ROLE}_2@example.com`).expect(200);
    expect(a.body.access_token).not.toBe(b.body.access_token);
  });

  it('rejects missing, malformed, tampered, alg=none, wrongly signed and expired tokens (401)', async () => {
    const me = (header?: string) => {
      const req = request(t.app).get('/auth/me');
      return header === undefined ? req : req.set('Authorization', header);
    };
    await me().expect(401);
    await me('Bearer').expect(401);
    await me('Basic dXNlcjpwYXNz').expect(401);
    const token = t.users[DEFAULT_ROLE]!.token;
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    // Any change to the payload, e.g. a different role, must break the signature.
    const edited = Buffer.from(JSON.stringify({ ...claims, role: `${claims.role}-edited` })).toString('base64url');
    await me(`Bearer ${header}.${edited}.${signature}`).expect(401);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    await me(`Bearer ${none}.${payload}.`).expect(401);
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-another-secret-0123456789'));
    await me(`Bearer ${forged}`).expect(401);
    const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(t.config.jwtSecret));
    await me(`Bearer ${expired}`).expect(401);
  });

  it('stops accepting a token the moment it expires, though it verified a moment before', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const me = (token: string) => request(t.app).get('/auth/me').set('Authorization', `Bearer ${token}`);
      const token = t.users[DEFAULT_ROLE]!.token;
      await me(token).expect(200);
      await me(token).expect(200);
      vi.setSystemTime(Date.now() + (t.config.accessTtlSeconds + 1) * 1000);
      await me(token).expect(401);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps verified tokens per signing key: a token one key accepted is refused under another', async () => {
    const token = t.users[DEFAULT_ROLE]!.token;
    const ours = new VerifiedTokens(secretKey(t.config.jwtSecret));
    const theirs = new VerifiedTokens(secretKey('another-secret-another-secret-0123456789'));
    expect(await ours.verify(token)).toEqual({ id: t.users[DEFAULT_ROLE]!.id, role: DEFAULT_ROLE });
    expect(await theirs.verify(token)).toBeUndefined();
    // Bounded: past its size the oldest entry goes (and is verified again should it come back).
    const small = new VerifiedTokens(secretKey(t.config.jwtSecret), 1);
    expect(await small.verify(token)).toBeDefined();
    expect(await small.verify(t.users[`${DEFAULT_ROLE}_2`]!.token)).toBeDefined();
    expect(small.size).toBe(1);
  });
});

describe('refresh and logout', () => {
  it('rotates the refresh token; reusing a rotated one revokes the whole session', async () => {
    const first = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    const second = await request(t.app)
      .post('/auth/refresh')
      .send({ refresh_token: first.body.refresh_token })
      .expect(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    // Reuse of the old token looks like theft: it fails, and so does the token issued after it.
    await request(t.app).post('/auth/refresh').send({ refresh_token: first.body.refresh_token }).expect(401);
    await request(t.app).post('/auth/refresh').send({ refresh_token: second.body.refresh_token }).expect(401);
  });

  it('logs out (204): the refresh token stops working', async () => {
    const session = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    await request(t.app).post('/auth/logout').send({ refresh_token: session.body.refresh_token }).expect(204);
    await request(t.app).post('/auth/refresh').send({ refresh_token: session.body.refresh_token }).expect(401);
  });

  it('rejects unknown refresh tokens (401) and bad bodies (400)', async () => {
    await request(t.app).post('/auth/refresh').send({ refresh_token: 'made-up' }).expect(401);
    await request(t.app).post('/auth/refresh').send({}).expect(400);
    await request(t.app).post('/auth/logout').send({ refresh_token: 'x', extra: 1 }).expect(400);
  });
});
{% endif %}
