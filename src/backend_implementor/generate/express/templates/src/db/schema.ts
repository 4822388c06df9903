{% if sql_defaults %}
import { sql } from 'drizzle-orm';
{% endif %}
import { {{ pg_imports | join(', ') }} } from 'drizzle-orm/pg-core';

const timestamps = {
  created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
};
{% if auth %}

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    email: varchar('email', { length: 320 }).notNull().unique(),
{% if oidc %}
    // Null for an account made by an OpenID login, which has no password.
    password_hash: text('password_hash'),
{% else %}
    password_hash: text('password_hash').notNull(),
{% endif %}
    role: text('role').notNull(),
    ...timestamps,
  },
  // GET /users pages by created_at.
  (t) => [index('users_created_at_id_idx').on(t.created_at, t.id)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    // Tokens from one login share a family, so reuse of a rotated token revokes the whole chain.
    family_id: uuid('family_id').notNull(),
    token_hash: text('token_hash').notNull().unique(),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    revoked_at: timestamp('revoked_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('refresh_tokens_user_id_idx').on(t.user_id), index('refresh_tokens_family_id_idx').on(t.family_id)],
);

// One row per login: a refresh-token family (its family_id is this id) or a cookie session. A user lists and
// ends them through /auth/sessions; an ended or expired session stops its tokens or cookie on every instance.
export const authSessions = pgTable(
  'auth_sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull().$type<'bearer' | 'cookie'>(),
    // Cookie sessions: the SHA-256 of the cookie's secret. The id above is not a secret; it names the session.
    token_hash: text('token_hash').unique(),
    user_agent: text('user_agent'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    last_seen_at: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    // Absolute end, however active the session is.
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    revoked_at: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('auth_sessions_user_id_idx').on(t.user_id)],
);

{% if oidc %}
// Which OpenID provider subject is which user. The key is "<provider>|<subject>", so a subject is linked once.
export const userIdentities = pgTable(
  'user_identities',
  {
    id: text('id').primaryKey(),
    user_id: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    subject: text('subject').notNull(),
    email: text('email'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('user_identities_user_id_idx').on(t.user_id)],
);

// OpenID logins under way: what the callback must check (PKCE verifier, nonce), by a hash of their state.
export const oidcLogins = pgTable(
  'oidc_logins',
  {
    state_hash: text('state_hash').primaryKey(),
    provider: text('provider').notNull(),
    nonce: text('nonce').notNull(),
    code_verifier: text('code_verifier').notNull(),
    return_to: text('return_to'),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('oidc_logins_expires_at_idx').on(t.expires_at)],
);

{% endif %}
// Attempts per client on the login, registration and refresh routes, shared by every instance.
export const rateLimits = pgTable('rate_limits', {
  key: text('key').primaryKey(),
  hits: integer('hits').notNull(),
  reset_at: timestamp('reset_at', { withTimezone: true }).notNull(),
});
{% endif %}
{% for r in resources %}

export const {{ r.var }} = pgTable(
  '{{ r.name }}',
  {
    id: uuid('id').primaryKey().defaultRandom(),
{% if r.owned %}
    owner_id: uuid('owner_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
{% endif %}
{% for f in r.fields %}
    {{ f.name }}: {{ f.drizzle }},
{% endfor %}
    ...timestamps,
  },
{% if r.indexes %}
  (t) => [
{% for cols in r.indexes %}
    index('{{ index_name(r.name, cols) }}').on({% for c in cols %}t.{{ c }}{{ ', ' if not loop.last }}{% endfor %}),
{% endfor %}
  ],
{% endif %}
);
{% endfor %}
