{% if auth %}
import { eq } from 'drizzle-orm';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app.js';
import { RECHECK_MS } from '../src/auth/sessions.js';
import { DEFAULT_ROLE } from '../src/auth/service.js';
import { authSessions } from '../src/db/schema.js';
import { createLogger } from '../src/middleware/logger.js';
import { PASSWORD, setup, signIn, type TestContext } from './helpers.js';

let t: TestContext;

beforeAll(async () => {
  t = await setup();
});

afterAll(async () => {
  await t?.close();
});

/** A new account of its own, so each test's sessions and password are its own. */
let accounts = 0;
async function account(): Promise<string> {
  const email = `sessions-${++accounts}@example.com`;
  await request(t.app).post('/auth/register').send({ email, password: PASSWORD }).expect(201);
  return email;
}

/** Runs `check` once RECHECK_MS has passed, when every instance has read its sessions again. */
async function afterRecheck(check: () => PromiseLike<unknown>): Promise<void> {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    vi.setSystemTime(Date.now() + RECHECK_MS + 1);
    await check();
  } finally {
    vi.useRealTimers();
  }
}

const me = (headers: Record<string, string>) => request(t.app).get('/auth/me').set(headers);
const sessionsOf = async (headers: Record<string, string>) =>
  (await request(t.app).get('/auth/sessions').set(headers).expect(200)).body.items as Array<Record<string, unknown>>;

describe('session management', () => {
  it('lists the user’s own sessions, newest use first, marking the current one', async () => {
    const email = await account();
    const laptop = await signIn(t.app, email, PASSWORD, 'laptop-browser');
    const phone = await signIn(t.app, email, PASSWORD, 'phone-app');
    const items = await sessionsOf(phone);
    expect(items).toHaveLength(2);
    expect(items.map((s) => s.user_agent).sort()).toEqual(['laptop-browser', 'phone-app']);
    expect(items.filter((s) => s.current).map((s) => s.user_agent)).toEqual(['phone-app']);
    for (const s of items) {
      expect(s).toEqual({
        id: expect.any(String),
        kind: '{{ 'cookie' if cookie_sessions else 'bearer' }}',
        created_at: expect.any(String),
        last_seen_at: expect.any(String),
        expires_at: expect.any(String),
        user_agent: expect.any(String),
        current: expect.any(Boolean),
      });
    }
    // Another user sees none of them.
    const stranger = await sessionsOf(await signIn(t.app, `${DEFAULT_ROLE}_2@example.com`));
    expect(stranger.map((s) => s.id)).not.toContain(items[0]!.id);
    await me(laptop).expect(200);
  });

  it('ends one session (204): its credential is refused, the others go on', async () => {
    const email = await account();
    const laptop = await signIn(t.app, email, PASSWORD, 'laptop');
    const phone = await signIn(t.app, email, PASSWORD, 'phone');
    const target = (await sessionsOf(phone)).find((s) => s.user_agent === 'laptop')!;
    await request(t.app).delete(`/auth/sessions/${target.id}`).set(phone).expect(204);
    await me(laptop).expect(401);
    await me(phone).expect(200);
    await request(t.app).delete(`/auth/sessions/${target.id}`).set(phone).expect(404);
  });

  it('answers 404 for another user’s session or a malformed id, ending nothing', async () => {
    const victim = await signIn(t.app, await account());
    const [theirs] = await sessionsOf(victim);
    const intruder = await signIn(t.app, await account());
    await request(t.app).delete(`/auth/sessions/${theirs!.id}`).set(intruder).expect(404);
    await request(t.app).delete('/auth/sessions/not-a-uuid').set(intruder).expect(404);
    await me(victim).expect(200);
  });

  it('logs out everywhere (DELETE /auth/sessions): every session ends, this one included', async () => {
    const email = await account();
    const a = await signIn(t.app, email);
    const b = await signIn(t.app, email);
    await request(t.app).delete('/auth/sessions').set(a).expect(204);
    await me(a).expect(401);
    await me(b).expect(401);
  });

  it('needs a login for every session route (401)', async () => {
    await request(t.app).get('/auth/sessions').expect(401);
    await request(t.app).delete('/auth/sessions').expect(401);
    await request(t.app).delete(`/auth/sessions/${crypto.randomUUID()}`).expect(401);
    await request(t.app).post('/auth/password').send({ current_password: PASSWORD, new_password: 'x'.repeat(12) }).expect(401);
  });

  it('stops a session ended on another instance within RECHECK_MS', async () => {
    const other = createApp({ db: t.database.db, config: t.config, logger: createLogger('silent') });
    const email = await account();
    const session = await signIn(t.app, email);
    await request(other).get('/auth/me').set(session).expect(200); // the other instance now knows it
    await request(t.app).delete('/auth/sessions').set(session).expect(204);
    await afterRecheck(() => request(other).get('/auth/me').set(session).expect(401));
  });

  it('ends a session at its absolute end, however active', async () => {
    const session = await signIn(t.app, await account());
    const [current] = await sessionsOf(session);
    await t.database.db.update(authSessions).set({ expires_at: new Date(Date.now() - 1000) }).where(eq(authSessions.id, current!.id as string));
    await afterRecheck(() => me(session).expect(401));
  });
{% if cookie_sessions %}

  it('ends a cookie session left idle past SESSION_IDLE_SECONDS', async () => {
    const session = await signIn(t.app, await account());
    const [current] = await sessionsOf(session);
    const idle = new Date(Date.now() - (t.config.sessionIdleSeconds + 1) * 1000);
    await t.database.db.update(authSessions).set({ last_seen_at: idle }).where(eq(authSessions.id, current!.id as string));
    await afterRecheck(() => me(session).expect(401));
  });
{% endif %}
});

describe('password change', () => {
  const change = (headers: Record<string, string>, body: Record<string, unknown>) =>
    request(t.app).post('/auth/password').set(headers).send(body);

  it('changes the password (204) and ends every other session, keeping this one', async () => {
    const email = await account();
    const other = await signIn(t.app, email);
    const current = await signIn(t.app, email);
    await change(current, { current_password: PASSWORD, new_password: 'a-brand-new-passphrase' }).expect(204);
    await me(current).expect(200);
    await me(other).expect(401);
    await request(t.app).post('/auth/login').send({ email, password: PASSWORD }).expect(401);
    await signIn(t.app, email, 'a-brand-new-passphrase');
  });

  it('refuses a wrong current password (403 naming current_password), changing nothing', async () => {
    const email = await account();
    const session = await signIn(t.app, email);
    const res = await change(session, { current_password: 'not-the-password', new_password: 'another-passphrase' }).expect(403);
    expect(res.body.errors).toContainEqual(expect.objectContaining({ path: 'current_password' }));
    await signIn(t.app, email);
  });

  it('holds the new password to the registration rules (400)', async () => {
    const session = await signIn(t.app, await account());
    for (const body of [
      { current_password: PASSWORD, new_password: 'short' },
      { current_password: PASSWORD, new_password: 'x'.repeat(257) },
      { current_password: PASSWORD },
      { current_password: PASSWORD, new_password: 'long-enough-passphrase', extra: true },
    ]) {
      await change(session, body).expect(400);
    }
  });
});
{% endif %}
