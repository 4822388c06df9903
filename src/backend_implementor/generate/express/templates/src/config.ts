import { existsSync } from 'node:fs';
import { z } from 'zod';
{% if bearer_sessions %}

// Used only outside production so `npm start` works with no set-up; production refuses to start without JWT_SECRET.
const DEV_JWT_SECRET = 'dev-only-insecure-jwt-secret-do-not-use-in-production';
{% endif %}

const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

{% set env_fields %}
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: optional(z.string().min(1)),
  PGLITE_DIR: z.string().default('.data/pglite'),
  MIGRATE_ON_START: z.stringbool().default(true),
{% if bearer_sessions %}
  JWT_SECRET: optional(z.string()),
  ACCESS_TTL_SECONDS: z.coerce.number().int().positive().default({{ access_ttl }}),
  REFRESH_TTL_SECONDS: z.coerce.number().int().positive().default({{ refresh_ttl }}),
{% endif %}
{% if auth %}
  SESSION_TTL_SECONDS: z.coerce.number().int().positive().default({{ session_ttl }}),
{% if cookie_sessions %}
  SESSION_IDLE_SECONDS: z.coerce.number().int().positive().default({{ session_idle }}),
{% endif %}
{% if uses_cookies %}
  COOKIE_SECURE: z.stringbool().default(true),
{% endif %}
{% endif %}
{% if oidc %}
  PUBLIC_URL: optional(z.url({ protocol: /^https?$/ })),
{% for p in oidc %}
  OIDC_{{ p.env }}_ISSUER: z.url({ protocol: /^https?$/ }).default({{ p.issuer | ts }}),
  OIDC_{{ p.env }}_CLIENT_ID: optional(z.string().min(1)),
  OIDC_{{ p.env }}_CLIENT_SECRET: optional(z.string().min(1)),
{% endfor %}
{% endif %}
  CORS_ORIGINS: z.string().default(''),
  BODY_LIMIT: z.string().default('100kb'),
{% if auth %}
  AUTH_RATE_LIMIT: z.coerce.number().int().positive().default(20),
{% endif %}
  TRUST_PROXY: z.coerce.number().int().min(0).default(0),
  SHUTDOWN_DELAY_SECONDS: z.coerce.number().min(0).max(300).default(0),
{% if auth %}
  ADMIN_EMAIL: optional(z.email()),
  ADMIN_PASSWORD: optional(z.string().min(8).max(256)),
{% endif %}
{% endset %}
{% if bearer_sessions or oidc %}
const EnvSchema = z
  .object({
{{ env_fields | indent(2, first=True) }}  })
  .superRefine((env, ctx) => {
    const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
{% for p in oidc %}
    if (Boolean(env.OIDC_{{ p.env }}_CLIENT_ID) !== Boolean(env.OIDC_{{ p.env }}_CLIENT_SECRET)) {
      problem('OIDC_{{ p.env }}_CLIENT_SECRET', 'OIDC_{{ p.env }}_CLIENT_ID and OIDC_{{ p.env }}_CLIENT_SECRET are set together');
    }
{% endfor %}
    if (env.NODE_ENV !== 'production') return;
{% if bearer_sessions %}
    if (Buffer.byteLength(env.JWT_SECRET ?? '') < 32) problem('JWT_SECRET', 'must be set to at least 32 bytes in production');
{% endif %}
{% if oidc %}
    const providers = [{% for p in oidc %}env.OIDC_{{ p.env }}_CLIENT_ID{{ ', ' if not loop.last }}{% endfor %}];
    if (providers.some(Boolean) && !env.PUBLIC_URL?.startsWith('https://')) {
      problem('PUBLIC_URL', 'must be the https:// URL browsers reach this server at, to sign in with OIDC in production');
    }
{% for p in oidc %}
    if (env.OIDC_{{ p.env }}_CLIENT_ID && !env.OIDC_{{ p.env }}_ISSUER.startsWith('https://')) {
      problem('OIDC_{{ p.env }}_ISSUER', 'must be https in production');
    }
{% endfor %}
{% endif %}
  });
{% else %}
const EnvSchema = z.object({
{{ env_fields }}});
{% endif %}
{% if oidc %}

/** An OpenID provider this server may send users to (one with a client id and secret set). */
export interface OidcProvider {
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
}
{% endif %}

export interface Config {
  env: 'development' | 'test' | 'production';
  host: string;
  port: number;
  logLevel: string;
  databaseUrl: string | undefined;
  /** Directory of the embedded PGlite database; empty means in-memory. Ignored when databaseUrl is set. */
  pgliteDir: string;
  /** Apply pending migrations at start; when false, another process runs `npm run db:migrate`. */
  migrateOnStart: boolean;
{% if bearer_sessions %}
  jwtSecret: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
{% endif %}
{% if auth %}
  /** A login's absolute lifetime, however active. */
  sessionTtlSeconds: number;
{% if cookie_sessions %}
  /** A cookie session ends after this long without a request. */
  sessionIdleSeconds: number;
{% endif %}
{% if uses_cookies %}
  /** Send cookies only over HTTPS (with the `__Host-` prefix); false only for plain-HTTP development. */
  cookieSecure: boolean;
{% endif %}
{% endif %}
{% if oidc %}
  /** This server's URL as browsers reach it: OIDC redirect URIs are <publicUrl>/auth/oidc/<name>/callback. */
  publicUrl: string;
  oidc: OidcProvider[];
{% endif %}
  corsOrigins: string[];
  bodyLimit: string;
{% if auth %}
  authRateLimit: number;
{% endif %}
  trustProxy: number;
  /** After SIGTERM, how long readiness answers 503 while requests are still served, before the server closes. */
  shutdownDelaySeconds: number;
{% if auth %}
  admin: { email: string; password: string } | undefined;
{% endif %}
}

export class ConfigError extends Error {}

/** Fills in from ./.env, when there is one, what the environment does not set itself (see .env.example). */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid environment: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: e.PGLITE_DIR,
    migrateOnStart: e.MIGRATE_ON_START,
{% if bearer_sessions %}
    jwtSecret: e.JWT_SECRET ?? DEV_JWT_SECRET,
    accessTtlSeconds: e.ACCESS_TTL_SECONDS,
    refreshTtlSeconds: e.REFRESH_TTL_SECONDS,
{% endif %}
{% if auth %}
    sessionTtlSeconds: e.SESSION_TTL_SECONDS,
{% if cookie_sessions %}
    sessionIdleSeconds: e.SESSION_IDLE_SECONDS,
{% endif %}
{% if uses_cookies %}
    cookieSecure: e.COOKIE_SECURE,
{% endif %}
{% endif %}
{% if oidc %}
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    oidc: [
{% for p in oidc %}
      { name: {{ p.name | ts }}, issuer: e.OIDC_{{ p.env }}_ISSUER, clientId: e.OIDC_{{ p.env }}_CLIENT_ID, clientSecret: e.OIDC_{{ p.env }}_CLIENT_SECRET, scopes: {{ p.scopes | ts }} },
{% endfor %}
    ].filter((p): p is OidcProvider => Boolean(p.clientId && p.clientSecret)),
{% endif %}
    corsOrigins: e.CORS_ORIGINS.split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    bodyLimit: e.BODY_LIMIT,
{% if auth %}
    authRateLimit: e.AUTH_RATE_LIMIT,
{% endif %}
    trustProxy: e.TRUST_PROXY,
    shutdownDelaySeconds: e.SHUTDOWN_DELAY_SECONDS,
{% if auth %}
    admin: e.ADMIN_EMAIL && e.ADMIN_PASSWORD ? { email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD } : undefined,
{% endif %}
  };
}
