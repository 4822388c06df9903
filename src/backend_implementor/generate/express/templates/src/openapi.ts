import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
{% if cookie_sessions %}
import { INSECURE_SESSION_COOKIE, SESSION_COOKIE } from './auth/cookies.js';
{% endif %}
{% if auth %}
import type { Access } from './middleware/authorize.js';
{% endif %}
import { onlyMethods } from './middleware/errors.js';
import * as s from './schemas.js';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
// Every write route refuses a missing body (415), so the document says the body is required.
const jsonBody = (schema: z.ZodType) => ({ required: true, ...json(schema) });
const problem = (description: string): ResponseConfig => ({
  description,
  content: { 'application/problem+json': { schema: s.Problem } },
});
const IdParams = z.object({ id: z.uuid() });

interface CrudDoc {
  tag: string;
  path: string;
  item: z.ZodType;
  list: z.ZodType;
  query: z.ZodObject;
  create: z.ZodType;
  update: z.ZodType;
{% if auth %}
  access: Record<'list' | 'read' | 'create' | 'update' | 'delete', Access>;
{% endif %}
}

{% if auth %}
function registerCrud(registry: OpenAPIRegistry, scheme: string, doc: CrudDoc): void {
  const guard = (access: Access) => {
    if (access === 'public') return { responses: {} };
    const responses: Record<number, ResponseConfig> = { 401: problem('{{ "Missing or invalid access token" if bearer_sessions else "No live session" }}') };
    if (typeof access !== 'string') responses[403] = problem(`Allowed roles: ${access.join(', ')}`);
    return { security: [{ [scheme]: [] }], responses };
  };
  const op = (
    method: 'get' | 'post' | 'patch' | 'delete',
    path: string,
    summary: string,
    access: Access,
    request: Record<string, unknown>,
    responses: Record<number, ResponseConfig>,
  ) => {
    const g = guard(access);
    registry.registerPath({
      method,
      path,
      tags: [doc.tag],
      summary,
      ...(g.security ? { security: g.security } : {}),
      request,
      responses: { ...responses, ...g.responses },
    });
  };
{% else %}
function registerCrud(registry: OpenAPIRegistry, doc: CrudDoc): void {
  const op = (
    method: 'get' | 'post' | 'patch' | 'delete',
    path: string,
    summary: string,
    request: Record<string, unknown>,
    responses: Record<number, ResponseConfig>,
  ) => registry.registerPath({ method, path, tags: [doc.tag], summary, request, responses });
{% endif %}
  const one = `${doc.path}/{id}`;
  op('get', doc.path, `List ${doc.tag}`, {{ 'doc.access.list, ' if auth else '' }}{ query: doc.query }, {
    200: { description: 'A page of results', ...json(doc.list) },
    400: problem('Unknown or invalid query parameter'),
  });
  op('post', doc.path, `Create one of ${doc.tag}`, {{ 'doc.access.create, ' if auth else '' }}{ body: jsonBody(doc.create) }, {
    201: { description: 'Created', ...json(doc.item) },
    400: problem('Invalid body'),
    409: problem('Unique or reference conflict'),
  });
  op('get', one, `Get one of ${doc.tag}`, {{ 'doc.access.read, ' if auth else '' }}{ params: IdParams }, {
    200: { description: 'Found', ...json(doc.item) },
    404: problem('Not found'),
  });
  op('patch', one, `Update one of ${doc.tag}`, {{ 'doc.access.update, ' if auth else '' }}{ params: IdParams, body: jsonBody(doc.update) }, {
    200: { description: 'Updated', ...json(doc.item) },
    400: problem('Invalid body'),
    404: problem('Not found'),
    409: problem('Unique or reference conflict'),
  });
  op('delete', one, `Delete one of ${doc.tag}`, {{ 'doc.access.delete, ' if auth else '' }}{ params: IdParams }, {
    204: { description: 'Deleted' },
    404: problem('Not found'),
    409: problem('Still referenced by other records'),
  });
}

/** The OpenAPI 3.1 document, built from the very zod schemas the routes validate with. */
export function buildOpenApi(): object {
  const registry = new OpenAPIRegistry();
{% if auth %}
{% if bearer_sessions %}
  const scheme = registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  }).name;
{% else %}
  const scheme = registry.registerComponent('securitySchemes', 'cookieAuth', {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description:
      `The session cookie set by POST /auth/login (HttpOnly, SameSite=Lax; \`${INSECURE_SESSION_COOKIE}\` when ` +
      'COOKIE_SECURE=false). Unsafe methods must also send an Origin header of this site or of CORS_ORIGINS.',
  }).name;
{% endif %}
  const authed = [{ [scheme]: [] }];
{% endif %}

  registry.registerPath({
    method: 'get',
    path: '/health',
    tags: ['meta'],
    summary: 'Readiness: the database answers, has every migration, and no shutdown has begun',
    responses: {
      200: { description: 'Ready', ...json(z.object({ status: z.literal('ok') })) },
      503: { description: 'Not ready: the database is away or behind the code, or the instance is shutting down' },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/livez',
    tags: ['meta'],
    summary: 'Liveness: the process answers (whatever the database does)',
    responses: { 200: { description: 'Alive', ...json(z.object({ status: z.literal('alive') })) } },
  });
{% if auth %}
  registry.registerPath({
    method: 'post',
    path: '/auth/register',
    tags: ['auth'],
    summary: 'Create an account (always with the default role)',
    request: { body: jsonBody(s.Credentials) },
    responses: {
      201: { description: 'Registered', ...json(s.User) },
      400: problem('Invalid body'),
      409: problem('Email already registered'),
      429: problem('Rate limited'),
    },
  });
{% if bearer_sessions %}
  registry.registerPath({
    method: 'post',
    path: '/auth/login',
    tags: ['auth'],
    summary: 'Exchange credentials for tokens (a new session)',
    request: { body: jsonBody(s.Credentials) },
    responses: {
      200: { description: 'Tokens', ...json(s.TokenPair) },
      400: problem('Invalid body'),
      401: problem('Wrong email or password'),
      429: problem('Rate limited'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/auth/refresh',
    tags: ['auth'],
    summary: 'Rotate a refresh token',
    request: { body: jsonBody(s.RefreshRequest) },
    responses: {
      200: { description: 'New tokens; the old refresh token is revoked', ...json(s.TokenPair) },
      400: problem('Invalid body'),
      401: problem('Invalid, expired or reused refresh token, or its session ended'),
      429: problem('Rate limited'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/auth/logout',
    tags: ['auth'],
    summary: 'End the session of a refresh token',
    request: { body: jsonBody(s.RefreshRequest) },
    responses: { 204: { description: 'Logged out' }, 400: problem('Invalid body') },
  });
{% else %}
  registry.registerPath({
    method: 'post',
    path: '/auth/login',
    tags: ['auth'],
    summary: 'Log in: a new session, in a new session cookie (the one sent with the request, if any, ends)',
    request: { body: jsonBody(s.Credentials) },
    responses: {
      200: {
        description: 'Logged in; Set-Cookie carries the session',
        headers: { 'Set-Cookie': { schema: { type: 'string' }, description: `${SESSION_COOKIE}=…; HttpOnly; Secure; SameSite=Lax` } },
        ...json(s.User),
      },
      400: problem('Invalid body'),
      401: problem('Wrong email or password'),
      403: problem('Sent from another site (Origin)'),
      429: problem('Rate limited'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/auth/logout',
    tags: ['auth'],
    summary: 'End this session on the server and clear its cookie',
    security: authed,
    responses: { 204: { description: 'Logged out' }, 401: problem('No live session'), 403: problem('Sent from another site (Origin)') },
  });
{% endif %}
{% if oidc %}
  const OidcParams = z.object({ provider: z.enum({{ oidc | map(attribute='name') | list | ts }}) });
  registry.registerPath({
    method: 'get',
    path: '/auth/oidc/{provider}/login',
    tags: ['auth'],
    summary: 'Sign in with an OpenID provider: redirects there (authorization code with PKCE, state and nonce)',
    request: { params: OidcParams, query: s.OidcLoginQuery },
    responses: {
      302: { description: 'To the provider; Set-Cookie binds the login’s state to this browser' },
      400: problem('Invalid query'),
      404: problem('This provider is not configured on this server'),
      429: problem('Rate limited'),
      502: problem('The provider could not be reached'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/auth/oidc/{provider}/callback',
    tags: ['auth'],
    summary: 'Where the provider sends the browser back: checks the state, redeems the code, signs the user in',
    request: { params: OidcParams, query: z.object({ code: z.string().optional(), state: z.string().optional(), error: z.string().optional() }) },
    responses: {
{% if cookie_sessions %}
      303: { description: 'Signed in: Set-Cookie carries the new session; to return_to (default /)' },
{% else %}
      200: { description: 'Signed in: a new session’s tokens', ...json(s.TokenPair) },
{% endif %}
      400: problem('Expired or used login; or the provider refused the code or its ID token did not check out'),
      403: problem('The state is not the one this browser started with; or the provider did not vouch for the email'),
      404: problem('This provider is not configured on this server'),
      429: problem('Rate limited'),
      502: problem('The provider could not be reached'),
    },
  });
{% endif %}
  registry.registerPath({
    method: 'post',
    path: '/auth/password',
    tags: ['auth'],
    summary: 'Change the password; every other session ends',
    security: authed,
    request: { body: jsonBody(s.PasswordChange) },
    responses: {
      204: { description: 'Changed' },
      400: problem('Invalid body'),
      401: problem('Not authenticated'),
      403: problem('The current password is wrong'),
      429: problem('Rate limited'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/auth/sessions',
    tags: ['auth'],
    summary: 'The current user’s sessions that are still on, most recently used first',
    security: authed,
    responses: { 200: { description: 'Sessions', ...json(s.SessionList) }, 401: problem('Not authenticated') },
  });
  registry.registerPath({
    method: 'delete',
    path: '/auth/sessions',
    tags: ['auth'],
    summary: 'Log out everywhere: end every session of the current user, this one included',
    security: authed,
    responses: { 204: { description: 'Every session ended' }, 401: problem('Not authenticated') },
  });
  registry.registerPath({
    method: 'delete',
    path: '/auth/sessions/{id}',
    tags: ['auth'],
    summary: 'End one of the current user’s sessions',
    security: authed,
    request: { params: IdParams },
    responses: { 204: { description: 'Ended' }, 401: problem('Not authenticated'), 404: problem('No such session of yours') },
  });
  registry.registerPath({
    method: 'get',
    path: '/auth/me',
    tags: ['auth'],
    summary: 'The current user',
    security: authed,
    responses: { 200: { description: 'Current user', ...json(s.User) }, 401: problem('Not authenticated') },
  });
{% endif %}
{% if admin_role %}
  registry.registerPath({
    method: 'get',
    path: '/users',
    tags: ['users'],
    summary: 'List users (admin)',
    security: authed,
    request: { query: s.UserListQuery },
    responses: {
      200: { description: 'A page of users', ...json(s.UserList) },
      400: problem('Invalid query'),
      401: problem('Not authenticated'),
      403: problem('Not an admin'),
    },
  });
  registry.registerPath({
    method: 'patch',
    path: '/users/{id}',
    tags: ['users'],
    summary: "Set a user's role (admin)",
    security: authed,
    request: { params: IdParams, body: jsonBody(s.UserUpdate) },
    responses: {
      200: { description: 'Updated user', ...json(s.User) },
      400: problem('Invalid body'),
      401: problem('Not authenticated'),
      403: problem('Not an admin'),
      404: problem('Not found'),
    },
  });

{% endif %}
{% for r in resources %}
  registerCrud(registry, {{ 'scheme, ' if auth else '' }}{
    tag: '{{ r.name }}',
    path: '/{{ r.name }}',
    item: s.{{ r.type_name }},
    list: s.{{ r.type_name }}List,
    query: s.{{ r.type_name }}ListQuery,
    create: s.{{ r.type_name }}Create,
    update: s.{{ r.type_name }}Update,
{% if auth %}
    access: {
{% for action in ['list', 'read', 'create', 'update', 'delete'] %}
      {{ action }}: {{ r.access_ts(action) }},
{% endfor %}
    },
{% endif %}
  });
{% endfor %}

  // What any operation may answer besides its own outcomes: a refused body, a database that is down or behind.
  for (const definition of registry.definitions) {
    if (definition.type !== 'route') continue;
    const { route } = definition;
    if (route.request?.body) {
      route.responses[413] = problem('Body larger than the BODY_LIMIT setting');
      route.responses[415] = problem('Body missing or not application/json');
    }
    route.responses[503] = problem('Database unreachable or migrations pending; retry after Retry-After seconds');
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: {{ name | ts }}, version: '0.1.0', description: {{ description | ts }} },
  });
}

// Swagger UI is served from the swagger-ui-dist package, so /docs works offline and under helmet's default CSP
// for pages (without upgrade-insecure-requests, so it also works over plain http in development).
const swaggerDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/swagger-ui-bundle.js'));

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ name }} API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const DOCS_INIT = "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });\n";

export function docsRouter(): Router {
  const router = Router();
  const document = buildOpenApi();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  const pagePolicy = helmet.contentSecurityPolicy({ directives: { upgradeInsecureRequests: null } });
  router.get('/docs', pagePolicy, (_req, res) => {
    res.type('html').send(DOCS_HTML);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('js').send(DOCS_INIT);
  });
  const files = ['swagger-ui.css', 'swagger-ui-bundle.js'];
  for (const file of files) {
    router.get(`/docs/${file}`, (_req, res) => {
      res.sendFile(file, { root: swaggerDir, maxAge: '1d' });
    });
  }
  router.all(['/openapi.json', '/docs', '/docs/init.js', ...files.map((f) => `/docs/${f}`)], onlyMethods('GET'));
  return router;
}
