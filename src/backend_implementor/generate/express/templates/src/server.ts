import { createApp } from './app.js';
{% if admin_role %}
import { AuthService } from './auth/service.js';
{% endif %}
import { ConfigError, loadConfig, loadDotEnv } from './config.js';
import { openDatabase } from './db/client.js';
{% if admin_role %}
import { ADMIN_ROLE } from './middleware/authorize.js';
{% endif %}
import { createLogger } from './middleware/logger.js';

loadDotEnv();
let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`refusing to start: ${error.message}`);
  process.exit(1);
}
const logger = createLogger(config.logLevel);

const database = await openDatabase({ url: config.databaseUrl, pgliteDir: config.pgliteDir });
await database.migrate();
{% if admin_role %}
if (config.admin) {
  await new AuthService(database.db, config).seedAdmin(config.admin.email, config.admin.password, ADMIN_ROLE);
  logger.info({ email: config.admin.email }, 'admin account ready');
}
{% elif auth %}
if (config.admin) logger.warn('ADMIN_EMAIL is ignored: the spec has no admin_role');
{% endif %}

const app = createApp({ db: database.db, config, logger });
const server = app.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, database: config.databaseUrl ? 'postgres' : 'pglite' }, 'listening');
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
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
