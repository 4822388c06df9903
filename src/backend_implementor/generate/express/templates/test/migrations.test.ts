import { readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import type { Express } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { type Database, openDatabase } from '../src/db/client.js';
import { SchemaState } from '../src/db/readiness.js';
import { createLogger } from '../src/middleware/logger.js';

const config = loadConfig({ NODE_ENV: 'test' });
const logger = createLogger('silent');

// Every migration in drizzle/, oldest first: on an empty database all of them are pending.
async function allTags(): Promise<string[]> {
  const journal = JSON.parse(await readFile(new URL('../drizzle/meta/_journal.json', import.meta.url), 'utf8'));
  return (journal.entries as { tag: string }[]).map((e) => e.tag);
}

// Fresh in-memory databases that nothing has migrated yet.
const opened: Database[] = [];
async function emptyDatabase(): Promise<Database> {
  const database = await openDatabase({});
  opened.push(database);
  return database;
}

afterEach(async () => {
  for (const database of opened.splice(0)) await database.close();
});

{% if auth %}
// An API route that reads the database: POST /auth/login looks the user up.
const apiCall = (app: Express) =>
  request(app).post('/auth/login').send({ email: 'nobody@example.com', password: 'not-a-password' });
const API_STATUS_WHEN_READY = 401;
{% else %}
// An API route that reads the database.
const apiCall = (app: Express) => request(app).get('/{{ resources[0].name }}');
const API_STATUS_WHEN_READY = 200;
{% endif %}

function expectSchemaPending(res: request.Response, pending: string[]): void {
  expect(res.status).toBe(503);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.headers['retry-after']).toBe('5');
  expect(res.body).toMatchObject({ type: 'about:blank', title: 'Service Unavailable', status: 503, pending });
  for (const tag of pending) expect(res.body.detail).toContain(tag);
}

describe('pending migrations', () => {
  it('are every journal tag on an empty database, none once migrated, the last one when it is undone', async () => {
    const tags = await allTags();
    const database = await emptyDatabase();
    expect(await database.pendingMigrations()).toEqual(tags);
    await database.migrate();
    expect(await database.pendingMigrations()).toEqual([]);
    await database.db.execute(
      sql`delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)`,
    );
    expect(await database.pendingMigrations()).toEqual(tags.slice(-1));
  });

  it('make /health and the API answer 503 naming them, while the docs stay up', async () => {
    const tags = await allTags();
    const database = await emptyDatabase();
    const app = createApp({ db: database.db, config, logger });
    expectSchemaPending(await request(app).get('/health'), tags);
    expectSchemaPending(await apiCall(app), tags);
    await request(app).get('/openapi.json').expect(200);
    await request(app).get('/docs').expect(200);
  });

  it('once applied by someone else, are noticed without a restart', async () => {
    const database = await emptyDatabase();
    const schema = new SchemaState(() => database.pendingMigrations(), { recheckMs: 0 });
    const app = createApp({ db: database.db, config, logger, schema });
    await request(app).get('/health').expect(503);
    await database.migrate(); // what `npm run db:migrate` does from another process
    const res = await request(app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect((await apiCall(app)).status).toBe(API_STATUS_WHEN_READY);
  });
});

describe('SchemaState', () => {
  it('asks at most once per interval while pending, and never again once current', async () => {
    const pending = vi.fn(async () => ['0001_next']);
    const behind = new SchemaState(pending, { recheckMs: 60_000 });
    await Promise.all([behind.pendingMigrations(), behind.pendingMigrations()]);
    expect(await behind.pendingMigrations()).toEqual(['0001_next']);
    expect(pending).toHaveBeenCalledTimes(1);

    const current = vi.fn(async () => []);
    const onCurrent = vi.fn(async () => {});
    const ready = new SchemaState(current, { onCurrent, recheckMs: 0 });
    for (let i = 0; i < 3; i++) expect(await ready.pendingMigrations()).toEqual([]);
    expect(current).toHaveBeenCalledTimes(1);
    expect(onCurrent).toHaveBeenCalledTimes(1);
  });
});

describe('MIGRATE_ON_START', () => {
  it('defaults to true and accepts true/false/1/0', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).migrateOnStart).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test', MIGRATE_ON_START: 'false' }).migrateOnStart).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test', MIGRATE_ON_START: '0' }).migrateOnStart).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test', MIGRATE_ON_START: '1' }).migrateOnStart).toBe(true);
    expect(() => loadConfig({ NODE_ENV: 'test', MIGRATE_ON_START: 'maybe' })).toThrow(/MIGRATE_ON_START/);
  });
});
