import { createApp } from './app.js';
{% if admin_role %}
import { AuthService } from './auth/service.js';
{% endif %}
import { type Config, ConfigError, loadConfig, loadDotEnv } from './config.js';
import { openDatabase } from './db/client.js';
import { DatabaseOutage, rootMessage } from './db/outage.js';
import { SchemaState } from './db/readiness.js';
{% if admin_role %}
import { ADMIN_ROLE } from './middleware/authorize.js';
{% endif %}
import { createLogger } from './middleware/logger.js';

loadDotEnv();
let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`refusing to start: ${error.message}`);
  process.exit(1);
}
const logger = createLogger(config.logLevel);

const outage = new DatabaseOutage(logger);
const database = await openDatabase({ url: config.databaseUrl, pgliteDir: config.pgliteDir, outage });
if (config.migrateOnStart) {
  try {
    await database.migrate();
  } catch (error) {
    // No crash loop: keep serving, and /health answers 503 naming what is pending until someone fixes it.
    logger.error({ err: error }, `migrations failed: ${rootMessage(error)}`);
  }
}
{% if admin_role %}
// The admin account needs the users table, so it is seeded once the schema is current (now, or after db:migrate).
const schema = new SchemaState(() => database.pendingMigrations(), {
  onCurrent: async () => {
    if (!config.admin) return;
    await new AuthService(database.db, config).seedAdmin(config.admin.email, config.admin.password, ADMIN_ROLE);
    logger.info({ email: config.admin.email }, 'admin account ready');
  },
});
{% else %}
{% if auth %}
if (config.admin) logger.warn('ADMIN_EMAIL is ignored: the spec has no admin_role');
{% endif %}
const schema = new SchemaState(() => database.pendingMigrations());
{% endif %}
try {
  const pending = await schema.pendingMigrations();
  if (pending.length > 0) logger.warn({ pending }, 'migrations pending; answering 503 until `npm run db:migrate`');
} catch (error) {
  // E.g. the database is unreachable: every request checks again.
  logger.error({ err: error }, 'could not check the database schema');
}

let stopping = false;
const app = createApp({ db: database.db, config, logger, schema, outage, draining: () => stopping });
const server = app.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, database: config.databaseUrl ? 'postgres' : 'pglite' }, 'listening');
});

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal, delaySeconds: config.shutdownDelaySeconds }, 'shutting down');
  // Readiness now answers 503; keep serving while the load balancer notices and routes elsewhere.
  await new Promise((resolve) => setTimeout(resolve, config.shutdownDelaySeconds * 1000));
  // Stop accepting connections, let in-flight requests finish, then close the database.
  const forced = setTimeout(() => server.closeAllConnections(), 10_000).unref();
  server.close(async () => {
    clearTimeout(forced);
    await database.close();
    logger.info('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
