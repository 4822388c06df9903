import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
{% if auth %}
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/middleware/logger.js';
import { PASSWORD, setup, type TestContext } from './helpers.js';
{% else %}
import { setup, type TestContext } from './helpers.js';
{% endif %}

let t: TestContext;

beforeAll(async () => {
  t = await setup({ BODY_LIMIT: '1kb' });
});

afterAll(async () => {
  await t?.close();
});

describe('the HTTP pipeline', () => {
  it('reports health (200)', async () => {
    const res = await request(t.app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('sends security headers, a request id, and no x-powered-by', async () => {
    const res = await request(t.app).get('/health').set('X-Request-Id', 'trace-123');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
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
    await request(t.app).get('/docs/swagger-ui-bundle.js').expect(200);
  });
{% if auth %}

  it('rate-limits the auth endpoints (429)', async () => {
    const config = loadConfig({ NODE_ENV: 'test', AUTH_RATE_LIMIT: '2' });
    const limited = createApp({ db: t.database.db, config, logger: createLogger('silent') });
    const attempt = () => request(limited).post('/auth/login').send({ email: 'x@example.com', password: PASSWORD });
    await attempt().expect(401);
    await attempt().expect(401);
    const res = await attempt().expect(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
{% endif %}
});
{% if auth %}

describe('configuration', () => {
  it('refuses production without a JWT_SECRET of at least 32 bytes', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'too-short' })).toThrow(/JWT_SECRET/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toHaveLength(32);
  });
});
{% endif %}
