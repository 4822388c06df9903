{% if auth %}
import { eq } from 'drizzle-orm';
{% endif %}
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../src/app.js';
{% if auth %}
import { ROLES } from '../src/auth/service.js';
{% endif %}
import { type Config, loadConfig } from '../src/config.js';
import { type Database, openDatabase } from '../src/db/client.js';
{% if auth %}
import { users } from '../src/db/schema.js';
{% endif %}
import { createLogger } from '../src/middleware/logger.js';
import { type ResourceName, samples } from './samples.js';
{% if auth %}

export const PASSWORD = 'correct-horse-battery';
{% if cookie_sessions %}
/** The browser origin test requests come from (given as CORS_ORIGINS), which the session's Origin check allows. */
export const ORIGIN = 'https://app.example.test';
{% endif %}

export interface TestUser {
  id: string;
  email: string;
{% if bearer_sessions %}
  token: string;
{% else %}
  /** The Cookie header of the user's session. */
  cookie: string;
{% endif %}
}
{% if cookie_sessions %}

/** The session cookie a login answer set, as a Cookie header. */
export function sessionCookie(res: { headers: Record<string, unknown> }): string {
  const setCookie = res.headers['set-cookie'];
  const found = (Array.isArray(setCookie) ? setCookie : []).find((c: string) => /^(__Host-)?session=[^;]+/.test(c));
  if (!found) throw new Error(`the answer set no session cookie: ${JSON.stringify(setCookie)}`);
  return found.split(';')[0] as string;
}
{% endif %}
{% endif %}

{% if auth %}
/** A fresh login of its own (a new session): the headers its requests carry. */
export async function signIn(app: Express, email: string, password = PASSWORD, userAgent = 'vitest'): Promise<Record<string, string>> {
  const login = await request(app).post('/auth/login').set('User-Agent', userAgent).send({ email, password }).expect(200);
{% if bearer_sessions %}
  return { Authorization: `Bearer ${login.body.access_token}` };
{% else %}
  return { Cookie: sessionCookie(login), Origin: ORIGIN };
{% endif %}
}

{% endif %}
export interface TestContext {
  app: Express;
  config: Config;
  database: Database;
{% if auth %}
  /** Two users per role: `<role>` and `<role>_2` (a stranger with the same rights). */
  users: Record<string, TestUser>;
  /** Authorization header for a user key, or none for anonymous (null). */
  as(user: string | null): Record<string, string>;
{% endif %}
  /** A valid create body for a resource (creating whatever rows it refers to first). */
  body(resource: ResourceName): Promise<Record<string, unknown>>;
  /** Creates a row through the API{{ " as the resource's creator" if auth else '' }} and returns the response body. */
  create(resource: ResourceName, overrides?: Record<string, unknown>): Promise<Record<string, unknown> & { id: string }>;
  close(): Promise<void>;
}

/** An app on a fresh in-memory PGlite with migrations applied (onQuery hears each statement); call close() in afterAll. */
export async function setup(env: Record<string, string> = {}, onQuery?: (sql: string) => void): Promise<TestContext> {
  const config = loadConfig({ NODE_ENV: 'test', {{ "AUTH_RATE_LIMIT: '10000', " if auth else '' }}{{ "CORS_ORIGINS: ORIGIN, " if cookie_sessions else '' }}...env });
  const database = await openDatabase({ onQuery });
  await database.migrate();
  const app = createApp({ db: database.db, config, logger: createLogger('silent') });
{% if auth %}

  const all: Record<string, TestUser> = {};
  for (const role of ROLES) {
    for (const key of [role, `${role}_2`]) {
      const email = `${key}@example.com`;
      const registered = await request(app).post('/auth/register').send({ email, password: PASSWORD }).expect(201);
      await database.db.update(users).set({ role }).where(eq(users.email, email));
      const login = await request(app).post('/auth/login').send({ email, password: PASSWORD }).expect(200);
{% if bearer_sessions %}
      all[key] = { id: registered.body.id, email, token: login.body.access_token };
{% else %}
      all[key] = { id: registered.body.id, email, cookie: sessionCookie(login) };
{% endif %}
    }
  }
{% endif %}

  const counters = new Map<ResourceName, number>();
{% if auth %}
  const as = (user: string | null): Record<string, string> => {
    if (user === null) return {};
    const found = all[user];
    if (!found) throw new Error(`no test user ${user}`);
{% if bearer_sessions %}
    return { Authorization: `Bearer ${found.token}` };
{% else %}
    return { Cookie: found.cookie, Origin: ORIGIN };
{% endif %}
  };
{% endif %}
  const body = async (resource: ResourceName): Promise<Record<string, unknown>> => {
    const plan = samples[resource];
    const i = counters.get(resource) ?? 0;
    counters.set(resource, i + 1);
    const out: Record<string, unknown> = { ...plan.bodies[i % plan.bodies.length] };
    for (const [field, target] of Object.entries(plan.refs)) out[field] = (await create(target)).id;
    return out;
  };
  const create = async (resource: ResourceName, overrides: Record<string, unknown> = {}) => {
    const payload = { ...(await body(resource)), ...overrides };
{% if auth %}
    const res = await request(app).post(`/${resource}`).set(as(samples[resource].actors.create)).send(payload);
{% else %}
    const res = await request(app).post(`/${resource}`).send(payload);
{% endif %}
    if (res.status !== 201) throw new Error(`creating ${resource} gave ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as Record<string, unknown> & { id: string };
  };
{% if auth %}
  return { app, config, database, users: all, as, body, create, close: () => database.close() };
{% else %}
  return { app, config, database, body, create, close: () => database.close() };
{% endif %}
}
