import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
{% if auth %}
import { loadConfig } from '../src/config.js';
import { rateLimits } from '../src/db/schema.js';
{% endif %}
import { createLogger } from '../src/middleware/logger.js';
import { {{ 'PASSWORD, ' if auth else '' }}setup, type TestContext } from './helpers.js';
{% if auth %}
import { samples } from './samples.js';
{% endif %}

let t: TestContext;

beforeAll(async () => {
  t = await setup({ BODY_LIMIT: '1kb' });
});

afterAll(async () => {
  await t?.close();
});

describe('the HTTP pipeline', () => {
  it('logs one line per request with its whole path, also inside a resource router', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const app = createApp({ db: t.database.db, config: t.config, logger });
    // A list answered by the router's own handler (errors are answered outside it, where the path is whole).
    const path = '/{{ resources[0].name }}';
    await request(app).get(path){% if auth %}.set(t.as(samples.{{ resources[0].name }}.actors.list)){% endif %}.expect(200);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'request', method: 'GET', path, status: 200 }));
  });

  it('reports health (200)', async () => {
    const res = await request(t.app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect((await request(t.app).get('/livez').expect(200)).body).toEqual({ status: 'alive' });
  });

  it('turns readiness to 503 once a shutdown began, still serving and closing each connection', async () => {
    const draining = createApp({ db: t.database.db, config: t.config, logger: createLogger('silent'), draining: () => true });
    const ready = await request(draining).get('/health').expect(503);
    expect(ready.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(ready.headers.connection).toBe('close');
    const alive = await request(draining).get('/livez').expect(200);
    expect(alive.headers.connection).toBe('close');
  });

  it('sends security headers, a request id, and no x-powered-by', async () => {
    const res = await request(t.app).get('/health').set('X-Request-Id', 'trace-123');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['x-frame-options']).toBeDefined();
    expect(res.headers['x-request-id']).toBe('trace-123');
  });

  it('sends no CORS headers to origins that are not configured', async () => {
    const res = await request(t.app).get('/health').set('Origin', 'https://evil.example');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers unknown routes with problem+json (404)', async () => {
    const res = await request(t.app).get('/no/such/route').expect(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404 });
  });

{% set post_path = '/auth/login' if auth else '/' ~ resources[0].name %}
  it('accepts only JSON bodies (415), rejects malformed JSON (400) and oversized bodies (413)', async () => {
    await request(t.app).post('{{ post_path }}').set('Content-Type', 'text/plain').send('hello').expect(415);
    await request(t.app).post('{{ post_path }}').set('Content-Type', 'application/json').send('{"email":').expect(400);
    const big = { email: 'a@example.com', password: 'x'.repeat(2048) };
    const res = await request(t.app).post('{{ post_path }}').send(big).expect(413);
    expect(res.body.detail).not.toMatch(/at |node_modules/);
  });

  it('refuses hostile bodies with 400 naming the field: deep nesting, invalid UTF-8, lone surrogates, NUL', async () => {
    // serialize: superagent would otherwise JSON-encode a Buffer instead of sending its bytes.
    const post = (body: string | Buffer) =>
      request(t.app).post('{{ post_path }}').set('Content-Type', 'application/json').serialize((raw) => raw).send(body);
    // Checked without recursion (the black-box tests send 10,000 levels; this suite's body limit is 1kb).
    const deep = await post('['.repeat(400) + ']'.repeat(400)).expect(400);
    expect(deep.body.errors[0].message).toMatch(/Nested more than/);
    const utf8 = await post(Buffer.from('{"x": "caf\xe9"}', 'latin1')).expect(400);
    expect(utf8.body.detail).toBe('Request body is not valid UTF-8.');
    const lone = await post('{"email": "a\\ud800"}').expect(400);
    expect(lone.body.errors).toEqual([{ path: 'body.email', message: expect.stringMatching(/surrogate/) }]);
    const nul = await post('{"email": "a\\u0000"}').expect(400);
    expect(nul.body.errors).toEqual([{ path: 'body.email', message: expect.stringMatching(/NUL/) }]);
  });

  it('answers methods a path does not serve with 405 and Allow', async () => {
{% set one = '/' ~ resources[0].name %}
    for (const method of ['put', 'trace'] as const) {
      const res = await request(t.app)[method]('{{ one }}').expect(405);
      expect(res.headers.allow).toBe('GET, POST');
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const one = await request(t.app).put('{{ one }}/00000000-0000-4000-8000-000000000000').send({}).expect(405);
    expect(one.headers.allow).toBe('GET, PATCH, DELETE');
    await request(t.app).post('/health').expect(405);
  });

{% set public_lists = [] %}
{% for r in resources if r.access['list'] == 'public' %}{% do public_lists.append('/' ~ r.name) %}{% endfor %}
{% if public_lists %}
  it('refuses empty, out-of-range and non-integer paging parameters (400)', async () => {
    const queries = ['offset=', 'limit=', 'limit=0', 'limit=101', 'offset=-1', 'offset=9007199254740992'];
    // Digits alone: 0.0, 0x10 and a padded 5 are not the integers the document declares.
    for (const query of [...queries, 'offset=0.0', 'limit=0x10', 'limit=%205']) {
      await request(t.app).get(`{{ public_lists[0] }}?${query}`).expect(400);
    }
  });

{% endif %}
  it('serves a valid OpenAPI 3.1 document and the docs page', async () => {
    const res = await request(t.app).get('/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
    for (const path of [{{ "'/auth/login', " if auth else '' }}{% for r in resources %}'/{{ r.name }}', '/{{ r.name }}/{id}'{{ ', ' if not loop.last else '' }}{% endfor %}]) {
      expect(res.body.paths).toHaveProperty([path]);
    }
{% if not auth %}
    // No users, so nothing is secured: no security schemes and no auth routes.
    expect(res.body.components?.securitySchemes).toBeUndefined();
    expect(Object.keys(res.body.paths).filter((path) => path.startsWith('/auth/'))).toEqual([]);
{% endif %}
    const docs = await request(t.app).get('/docs').expect(200);
    expect(docs.text).toContain('swagger-ui');
    // The page's own policy lets Swagger UI load its script and styles from here, and nothing else.
    expect(docs.headers['content-security-policy']).toContain("script-src 'self'");
    await request(t.app).get('/docs/swagger-ui-bundle.js').expect(200);
  });

  // Contract drift caught where it is made: the document's methods are the server's, and what every
  // route may answer (415, 413, 503) is declared. `bimpl verify` fuzzes the rest (see the README).
  it('documents exactly the methods each path serves, with its refusals', async () => {
    const doc = (await request(t.app).get('/openapi.json').expect(200)).body;
    type Operation = { requestBody?: { required?: boolean }; responses: Record<string, unknown> };
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      const url = path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
      const served = await request(t.app).trace(url).expect(405);
      const allowed = (served.headers.allow ?? '').split(', ').map((m: string) => m.toLowerCase()).sort();
      expect(Object.keys(item).sort(), path).toEqual(allowed);
      for (const [method, op] of Object.entries(item)) {
        expect(op.responses, `${method} ${path}`).toHaveProperty('503');
        if (op.requestBody) {
          expect(op.requestBody.required, `${method} ${path}`).toBe(true);
          expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['413', '415']));
        }
      }
    }
  });
{% if auth %}

  it('rate-limits the auth endpoints (429)', async () => {
    await t.database.db.delete(rateLimits);
    const config = loadConfig({ NODE_ENV: 'test', AUTH_RATE_LIMIT: '2' });
    const limited = createApp({ db: t.database.db, config, logger: createLogger('silent') });
    const attempt = () => request(limited).post('/auth/login').send({ email: 'x@example.com', password: PASSWORD });
    await attempt().expect(401);
    await attempt().expect(401);
    const res = await attempt().expect(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['ratelimit-policy']).toMatch(/; q=2; w=60\b/);
  });

  it('counts auth attempts in the database, so the limit holds across instances', async () => {
    await t.database.db.delete(rateLimits);
    const config = loadConfig({ NODE_ENV: 'test', AUTH_RATE_LIMIT: '3' });
    const instance = () => createApp({ db: t.database.db, config, logger: createLogger('silent') });
    const [a, b] = [instance(), instance()];
    const attempt = (app: ReturnType<typeof instance>) =>
      request(app).post('/auth/login').send({ email: 'x@example.com', password: PASSWORD });
    await attempt(a).expect(401);
    await attempt(b).expect(401);
    await attempt(a).expect(401);
    await attempt(b).expect(429);
    // A window that has run out starts again from one.
    await t.database.db.update(rateLimits).set({ reset_at: new Date(Date.now() - 1000) });
    await attempt(b).expect(401);
    const [counter] = await t.database.db.select().from(rateLimits);
    expect(counter?.hits).toBe(1);
  });
{% endif %}
});
{% if bearer_sessions %}

describe('configuration', () => {
  it('refuses production without a JWT_SECRET of at least 32 bytes', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'too-short' })).toThrow(/JWT_SECRET/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toHaveLength(32);
  });
});
{% endif %}
