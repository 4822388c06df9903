{% if auth %}
import { {{ 'and, ' if bearer_sessions }}eq{{ ', isNull' if bearer_sessions }} } from 'drizzle-orm';
{% if bearer_sessions %}
import { SignJWT } from 'jose';
{% endif %}
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it{{ ', vi' if bearer_sessions }} } from 'vitest';
import { DEFAULT_ROLE } from '../src/auth/service.js';
{% if bearer_sessions %}
import { secretKey, VerifiedTokens } from '../src/auth/tokens.js';
import { authSessions, refreshTokens, users } from '../src/db/schema.js';
import { PASSWORD, setup, type TestContext } from './helpers.js';
{% else %}
import { loadConfig } from '../src/config.js';
import { createApp } from '../src/app.js';
import { authSessions, users } from '../src/db/schema.js';
import { createLogger } from '../src/middleware/logger.js';
import { ORIGIN, PASSWORD, sessionCookie, setup, type TestContext } from './helpers.js';
{% endif %}

let t: TestContext;

beforeAll(async () => {
  t = await setup();
});

afterAll(async () => {
  await t?.close();
});

{% if bearer_sessions %}
const login = (email: string, password = PASSWORD) => request(t.app).post('/auth/login').send({ email, password });
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
{% endif %}

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

{% if bearer_sessions %}
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
    expect(await ours.verify(token)).toEqual({
      id: t.users[DEFAULT_ROLE]!.id,
      role: DEFAULT_ROLE,
      sessionId: expect.any(String),
    });
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

  it('ends the session at logout: its access token is refused too (401)', async () => {
    const session = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    const me = () => request(t.app).get('/auth/me').set('Authorization', `Bearer ${session.body.access_token}`);
    await me().expect(200);
    await request(t.app).post('/auth/logout').send({ refresh_token: session.body.refresh_token }).expect(204);
    await me().expect(401);
  });

  it('refuses an access token without a session (sid) claim, as issued before sessions were recorded', async () => {
    const claims = claimsOf(t.users[DEFAULT_ROLE]!.token);
    delete claims.sid;
    const old = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(t.config.jwtSecret));
    await request(t.app).get('/auth/me').set('Authorization', `Bearer ${old}`).expect(401);
  });

  it('gives a refresh token from before sessions were recorded its session at the next refresh', async () => {
    const user = t.users[DEFAULT_ROLE]!;
    const familyId = crypto.randomUUID();
    const token = 'pre-sessions-refresh-token-0123456789abcdef';
    const { createHash } = await import('node:crypto');
    await t.database.db.insert(refreshTokens).values({
      user_id: user.id,
      family_id: familyId,
      token_hash: createHash('sha256').update(token).digest('hex'),
      expires_at: new Date(Date.now() + 60_000),
    });
    const res = await request(t.app).post('/auth/refresh').send({ refresh_token: token }).expect(200);
    const [session] = await t.database.db.select().from(authSessions).where(eq(authSessions.id, familyId));
    expect(session).toMatchObject({ user_id: user.id, kind: 'bearer', revoked_at: null });
    await request(t.app).get('/auth/me').set('Authorization', `Bearer ${res.body.access_token}`).expect(200);
  });

  it('never issues a refresh token past the end of its session, nor refreshes after it', async () => {
    const first = await login(`${DEFAULT_ROLE}@example.com`).expect(200);
    const sid = claimsOf(first.body.access_token).sid;
    const soon = new Date(Date.now() + 30_000);
    await t.database.db.update(authSessions).set({ expires_at: soon }).where(eq(authSessions.id, sid));
    const next = await request(t.app).post('/auth/refresh').send({ refresh_token: first.body.refresh_token }).expect(200);
    expect(next.body.expires_in).toBeLessThanOrEqual(30);
    const [issued, ...others] = await t.database.db
      .select()
      .from(refreshTokens)
      .where(and(eq(refreshTokens.family_id, sid), isNull(refreshTokens.revoked_at)));
    expect(others).toEqual([]);
    expect(issued!.expires_at.getTime()).toBeLessThanOrEqual(soon.getTime());
    const past = new Date(Date.now() - 1000);
    await t.database.db.update(authSessions).set({ expires_at: past }).where(eq(authSessions.id, sid));
    await request(t.app).post('/auth/refresh').send({ refresh_token: next.body.refresh_token }).expect(401);
  });
});
{% else %}
describe('cookie login', () => {
  const cookieLogin = (email: string, extra: Record<string, string> = {}) =>
    request(t.app).post('/auth/login').set(extra).send({ email, password: PASSWORD });

  it('sets an HttpOnly, Secure, SameSite=Lax __Host- session cookie and answers the user (200)', async () => {
    const res = await cookieLogin(`${DEFAULT_ROLE}@example.com`).expect(200);
    expect(res.body).toEqual({ id: t.users[DEFAULT_ROLE]!.id, email: `${DEFAULT_ROLE}@example.com`, role: DEFAULT_ROLE });
    const [setCookie] = res.headers['set-cookie'] as unknown as string[];
    expect(setCookie).toMatch(/^__Host-session=[A-Za-z0-9_-]{43}; /);
    for (const flag of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/']) expect(setCookie).toContain(flag);
    expect(setCookie).not.toMatch(/Domain=/i);
    const me = await request(t.app).get('/auth/me').set('Cookie', sessionCookie(res)).expect(200);
    expect(me.body.id).toBe(t.users[DEFAULT_ROLE]!.id);
  });

  it('stores only a hash of the cookie: the database does not hold the secret', async () => {
    const res = await cookieLogin(`${DEFAULT_ROLE}@example.com`).expect(200);
    const secret = sessionCookie(res).split('=')[1]!;
    const rows = await t.database.db.select().from(authSessions);
    expect(rows.some((row) => row.token_hash === secret || row.id === secret)).toBe(false);
  });

  it('rejects a wrong password and an unknown email alike (401), setting no cookie', async () => {
    const wrong = await request(t.app)
      .post('/auth/login')
      .send({ email: `${DEFAULT_ROLE}@example.com`, password: 'wrong-password' })
      .expect(401);
    const unknown = await cookieLogin('nobody@example.com').expect(401);
    expect(wrong.body.detail).toBe(unknown.body.detail);
    expect(wrong.headers['set-cookie']).toBeUndefined();
  });

  it('issues a new session id at every login and ends the one the browser had (no fixation)', async () => {
    const before = sessionCookie(await cookieLogin(`${DEFAULT_ROLE}@example.com`).expect(200));
    const again = { Cookie: before, Origin: ORIGIN };
    const after = sessionCookie(await cookieLogin(`${DEFAULT_ROLE}@example.com`, again).expect(200));
    expect(after).not.toBe(before);
    await request(t.app).get('/auth/me').set('Cookie', before).expect(401);
    await request(t.app).get('/auth/me').set('Cookie', after).expect(200);
  });

  it('ends the session on the server at logout: the old cookie is refused afterwards (401)', async () => {
    const cookie = sessionCookie(await cookieLogin(`${DEFAULT_ROLE}@example.com`).expect(200));
    const res = await request(t.app).post('/auth/logout').set({ Cookie: cookie, Origin: ORIGIN }).expect(204);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^__Host-session=;.*Expires=Thu, 01 Jan 1970/);
    await request(t.app).get('/auth/me').set('Cookie', cookie).expect(401);
    await request(t.app).post('/auth/logout').set({ Cookie: cookie, Origin: ORIGIN }).expect(401);
  });

  it('refuses cookie-authenticated writes from another site or without an Origin (403), allows this site', async () => {
    const cookie = sessionCookie(await cookieLogin(`${DEFAULT_ROLE}@example.com`).expect(200));
    const logout = (headers: Record<string, string>) => request(t.app).post('/auth/logout').set({ Cookie: cookie, ...headers });
    await logout({ Origin: 'https://evil.example' }).expect(403);
    await logout({ Origin: 'null' }).expect(403);
    await logout({}).expect(403);
    await request(t.app).get('/auth/me').set('Cookie', cookie).expect(200); // reads need no Origin
    // Same site by Host: the page served from this very host.
    const host = '127.0.0.1:4321';
    await logout({ Host: host, Origin: `https://${host}` }).expect(204);
  });

  it('refuses a login posted from another site (403): it would sign the visitor in to another account', async () => {
    await cookieLogin(`${DEFAULT_ROLE}@example.com`, { Origin: 'https://evil.example' }).expect(403);
    await cookieLogin(`${DEFAULT_ROLE}@example.com`, { Origin: ORIGIN }).expect(200);
  });

  it('treats a cookie whose session ended as anonymous, and clears it', async () => {
    const res = await request(t.app).get('/livez').set('Cookie', '__Host-session=' + 'A'.repeat(43)).expect(200);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^__Host-session=;/);
    await request(t.app).get('/auth/me').set('Cookie', '__Host-session=' + 'A'.repeat(43)).expect(401);
  });

  it('names the cookie `session`, without Secure, when COOKIE_SECURE=false (plain-HTTP development)', async () => {
    const config = loadConfig({ NODE_ENV: 'test', AUTH_RATE_LIMIT: '10000', COOKIE_SECURE: 'false' });
    const app = createApp({ db: t.database.db, config, logger: createLogger('silent') });
    const res = await request(app).post('/auth/login').send({ email: `${DEFAULT_ROLE}@example.com`, password: PASSWORD }).expect(200);
    const [setCookie] = res.headers['set-cookie'] as unknown as string[];
    expect(setCookie).toMatch(/^session=/);
    expect(setCookie).not.toContain('Secure');
    await request(app).get('/auth/me').set('Cookie', sessionCookie(res)).expect(200);
  });
});
{% endif %}
{% endif %}
