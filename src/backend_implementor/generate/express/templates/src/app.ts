import cors from 'cors';
import { sql } from 'drizzle-orm';
import express, { type Express } from 'express';
import helmet from 'helmet';
{% if uses_cookies %}
import { SecretCookie } from './auth/cookies.js';
{% endif %}
{% if oidc %}
import { OidcLogins } from './auth/oidc.js';
{% endif %}
{% if auth %}
import { authRouter } from './auth/routes.js';
import { AuthService } from './auth/service.js';
{% endif %}
{% if admin_role %}
import { usersRouter } from './auth/users.js';
{% endif %}
import type { Config } from './config.js';
import { type Db, pendingMigrations } from './db/client.js';
import { DatabaseOutage } from './db/outage.js';
import { requireCurrentSchema, SchemaState, sendDraining, sendSchemaPending } from './db/readiness.js';
{% if graphql %}
import { graphqlRouter } from './graphql/router.js';
{% endif %}
{% if auth %}
import { authenticate } from './middleware/authenticate.js';
{% endif %}
import { errorHandler, notFound, onlyMethods, utf8Only } from './middleware/errors.js';
import { httpLogger, type Logger } from './middleware/logger.js';
import { requestId } from './middleware/requestId.js';
import { docsRouter } from './openapi.js';
{% for r in resources_by_name %}
import { {{ r.router }} } from './resources/{{ r.name }}.js';
{% endfor %}
import { createServices } from './services/index.js';

export interface AppDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Whether migrations are pending; by default checked against db (server.ts passes its own). */
  schema?: SchemaState;
  /** Where database outages are logged; server.ts shares it with the connection pool. */
  outage?: DatabaseOutage;
  /** True once a shutdown began: readiness answers 503 so a load balancer stops sending traffic here. */
  draining?: () => boolean;
}

const API_CSP = { defaultSrc: ["'none'"], frameAncestors: ["'none'"] };

{% set oidc_options = ", oidc, oidcState" if oidc else '' %}
/** The whole HTTP pipeline; the order of app.use calls below is the order requests flow through. */
export function createApp({ db, config, logger, ...deps }: AppDeps): Express {
  const schema = deps.schema ?? new SchemaState(() => pendingMigrations(db));
  const services = createServices(db);
  const outage = deps.outage ?? new DatabaseOutage(logger);
{% if auth %}
  const auth = new AuthService(db, config);
{% endif %}
{% if cookie_sessions %}
  const cookie = new SecretCookie('session', config.cookieSecure);
{% endif %}
{% if oidc %}
  const oidc = new OidcLogins(db, config.oidc, config.publicUrl, config.env === 'production');
  const oidcState = new SecretCookie('oidc-state', config.cookieSecure);
{% endif %}
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(requestId);
  // While shutting down, every answer closes its connection, so a keep-alive client reconnects elsewhere.
  app.use((_req, res, next) => {
    if (deps.draining?.()) res.set('Connection', 'close');
    next();
  });
  app.use(httpLogger(logger));
  // Helmet's headers, with the CSP a JSON API needs: it loads nothing and is framed by nothing. (The /docs
  // page sets the one Swagger UI needs, see openapi.ts.)
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: API_CSP } }));
  // Only listed origins may call from a browser; with none listed, no CORS headers are sent at all.
{% if cookie_sessions %}
  // Listed origins may send the session cookie (their writes pass the Origin check in authenticate).
  app.use(cors({ origin: config.corsOrigins.length > 0 ? config.corsOrigins : false, credentials: true }));
{% else %}
  app.use(cors({ origin: config.corsOrigins.length > 0 ? config.corsOrigins : false }));
{% endif %}
  // JSON bodies only (each write route answers 415 to anything else), and only valid UTF-8.
  app.use(express.json({ limit: config.bodyLimit, type: 'application/json', verify: utf8Only }));
{% if auth %}
{% if bearer_sessions %}
  app.use(authenticate(auth));
{% else %}
  app.use(authenticate(auth, cookie, config.corsOrigins));
{% endif %}
{% endif %}

  // Liveness: the process answers. A database outage must not get healthy instances restarted.
  app.get('/livez', (_req, res) => {
    res.json({ status: 'alive' });
  });
  app.all('/livez', onlyMethods('GET'));
  // Readiness: 200 only when the database is reachable and has every migration and no shutdown has begun;
  // otherwise 503 saying why.
  app.get('/health', async (_req, res) => {
    if (deps.draining?.()) return sendDraining(res);
    const pending = await schema.pendingMigrations();
    if (pending.length > 0) return sendSchemaPending(res, pending);
    await db.execute(sql`select 1`);
    res.json({ status: 'ok' });
  });
  app.all('/health', onlyMethods('GET'));
  app.use(docsRouter());
  // Everything below needs the current schema: while migrations are pending it answers 503, not 500s.
  app.use(requireCurrentSchema(schema));
{% if auth %}
{% if bearer_sessions %}
  app.use('/auth', authRouter(auth, db, { rateLimit: config.authRateLimit{{ oidc_options }} }));
{% else %}
  app.use('/auth', authRouter(auth, db, { rateLimit: config.authRateLimit, cookie, origins: config.corsOrigins{{ oidc_options }} }));
{% endif %}
{% endif %}
{% if admin_role %}
  app.use('/users', usersRouter(db));
{% endif %}
{% for r in resources %}
  app.use('/{{ r.name }}', {{ r.router }}(services.{{ r.var }}));
{% endfor %}
{% if graphql %}
  app.use('/graphql', graphqlRouter(services, { {{ 'auth, ' if auth else '' }}logger, outage, production: config.env === 'production' }));
{% endif %}

  app.use(notFound);
  app.use(errorHandler(logger, outage));
  return app;
}
