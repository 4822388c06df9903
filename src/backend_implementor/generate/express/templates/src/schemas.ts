// Every request and response shape, used both to validate at runtime and to build the OpenAPI document.
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
{% if auth %}
import { ROLES } from './auth/service.js';
{% endif %}

extendZodWithOpenApi(z);

const timestamps = {
  id: z.uuid(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
};

/**
 * A number from the query string, read only when written the plain way (`20`, `-1.5`, `2e3`). Not z.coerce:
 * Number('') is 0, so `?offset=` would pass as 0, and Number('0x10') is 16. An integer takes digits alone,
 * so `?offset=0.0` is refused like any other value the document does not allow.
 */
const fromQuery =
  (syntax: RegExp) =>
  <T extends z.ZodType>(schema: T) =>
    z.preprocess((value) => (typeof value === 'string' ? (syntax.test(value) ? Number(value) : Number.NaN) : value), schema);
const queryInteger = fromQuery(/^-?\d+$/);
{% if uses_query_number %}
const queryNumber = fromQuery(/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i);
{% endif %}
{% if uses_text %}

/** Free text: PostgreSQL cannot store U+0000, so it is refused (and the document says so). */
const text = () => z.string().regex(/^[^\u0000]*$/, 'NUL characters are not accepted.');
{% endif %}
{% if uses_date %}

/** A calendar date PostgreSQL can store: it has no year 0000 (1 BC comes before 0001). */
const isoDate = () => z.iso.date().regex(/^(?!0000-)/, 'year 0000 does not exist; years start at 0001.').openapi({ format: 'date' });
{% endif %}
{% if uses_datetime %}

/**
 * An instant with its offset, within what PostgreSQL stores and answers back as ISO 8601: offsets under 16
 * hours, and no first or last day of years 0001–9999 (an offset could move it out of them).
 */
const storableInstant = /^(?!0000-|0001-01-01T|9999-12-31T)(?!.*[+-](?:1[6-9]|2\d):)/;
const isoDateTime = () =>
  z.iso
    .datetime({ offset: true })
    .regex(storableInstant, 'must fall between 0001-01-02 and 9999-12-30, with an offset under 16 hours.')
    .openapi({ format: 'date-time' });
{% endif %}
{% if uses_email %}

/**
 * An address as HTML forms define it (the WHATWG rule): what browsers send, and what the document's
 * `format: email` admits. zod's stricter default refuses valid ones such as `^w@t.net`.
 */
const email = () => z.email({ pattern: z.regexes.html5Email });
{% endif %}

/** Shared list parameters; unknown query keys are rejected by each resource's strict query schema. */
const counts = ['exact', 'estimate', 'none'] as const;
const page = {
  limit: queryInteger(z.number().int().min(1).max(100)).default(20),
  offset: queryInteger(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).default(0),
  count: z
    .enum(counts)
    .default('estimate')
    .openapi({
      description:
        'How `total` is had: `exact` counts every matching row, `estimate` counts up to 10 000 and past that ' +
        "answers the query planner's estimate, `none` does not count (`total` is null).",
    }),
  cursor: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .openapi({
      description:
        'Start after the row of a `next_cursor` from a previous page of the same sort (keyset pagination: ' +
        'as fast deep in the list as at its start). Not with `offset`.',
    }),
};

const listOf = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    total: z.number().int().nullable(),
    count: z.enum(counts).openapi({ description: 'What `total` is: an exact count, an estimate, or none.' }),
    limit: z.number().int(),
    offset: z.number().int(),
    next_cursor: z
      .string()
      .nullable()
      .openapi({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  });
{% if uses_json %}

type Json = string | number | boolean | (Json | null)[] | { [key: string]: Json | null };

/**
 * Any JSON value jsonb can hold (no NUL in a string or a key, at any depth), documented as one recursive
 * schema. null is a separate branch wherever it is allowed, so `anyOf: [JsonValue, null]` matches once.
 */
const JsonValue: z.ZodType<Json> = z
  .lazy(() =>
    z.union([
      text(),
      z.number(),
      z.boolean(),
      z.array(z.union([JsonValue, z.null()])),
      // propertyNames is JSON Schema 2020-12 (OpenAPI 3.1); the library's metadata type predates it.
      z
        .record(text(), z.union([JsonValue, z.null()]))
        .openapi({ propertyNames: { pattern: '^[^\\u0000]*$' } } as object),
    ]),
  )
  .openapi('JsonValue', { description: 'Any JSON value' });
{% endif %}
{% if uses_decimal %}

/**
 * A decimal travels as a string ("12.50") so no precision is lost; input may also be a JSON number.
 * Digits are checked against the column's precision and scale, so the database never overflows. With a
 * minimum of 0 or more the pattern has no sign, so the document refuses negatives as the server does.
 */
function decimal(precision: number, scale: number, min: number | null, max: number | null) {
  const sign = min !== null && min >= 0 ? '' : '-?';
  const digits = scale > 0 ? `^${sign}\\d{1,${precision - scale}}(\\.\\d{1,${scale}})?$` : `^${sign}\\d{1,${precision}}$`;
  const shape = `a ${sign ? '' : 'non-negative '}decimal with at most ${precision - scale} digits before and ${scale} after the point`;
  return z
    .union([z.string(), z.number()])
    .transform(String)
    .pipe(
      z
        .string()
        .regex(new RegExp(digits), `expected ${shape}`)
        .refine((v) => min === null || Number(v) >= min, `must be at least ${min}`)
        .refine((v) => max === null || Number(v) <= max, `must be at most ${max}`),
    )
    .openapi({ type: 'string', pattern: digits });
}
{% endif %}

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');
{% if auth %}

// ---- auth ----

const Email = email().max(320);
const Password = text().min(8).max(256);

export const Credentials = z.strictObject({ email: Email, password: Password }).openapi('Credentials');
{% if bearer_sessions %}
export const RefreshRequest = z.strictObject({ refresh_token: text().min(1).max(512) }).openapi('RefreshRequest');
export const TokenPair = z
  .object({
    access_token: z.string(),
    refresh_token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int(),
  })
  .openapi('TokenPair');
{% endif %}
export const User = z.object({ id: z.uuid(), email: email(), role: z.enum(ROLES) }).openapi('User');
// The current password may predate today's rules, so only its length is bounded.
export const PasswordChange = z
  .strictObject({ current_password: text().min(1).max(256), new_password: Password })
  .openapi('PasswordChange');
export const Session = z
  .object({
    id: z.uuid(),
    kind: z.enum(['bearer', 'cookie']),
    created_at: z.iso.datetime(),
    last_seen_at: z.iso.datetime(),
    expires_at: z.iso.datetime(),
    user_agent: z.string().nullable(),
    current: z.boolean().openapi({ description: 'The session this request came with' }),
  })
  .openapi('Session');
export const SessionList = z.object({ items: z.array(Session) }).openapi('SessionList');
{% if oidc %}
export const OidcLoginQuery = z.strictObject({
{% if cookie_sessions %}
  // Only a path on this site: a full URL here would make the login an open redirect.
  return_to: text()
    .max(2000)
    .regex(/^\/(?![/\\])[^\s]*$/, 'a path on this site, such as /journal')
    .optional()
    .openapi({ description: 'Where the browser goes after the login (a path on this site; default /)' }),
{% endif %}
});
{% endif %}
{% endif %}
{% if admin_role %}
export const UserList = listOf(User).openapi('UserList');
export const UserListQuery = z.strictObject({ ...page });
export const UserUpdate = z.strictObject({ role: z.enum(ROLES) }).openapi('UserUpdate');
{% endif %}
{% for r in resources %}
{% set R = r.type_name %}

// ---- {{ r.name }} ----

export const {{ R }} = z
  .object({
    ...timestamps,
{% if r.owned %}
    owner_id: z.uuid(),
{% endif %}
{% for f in r.fields if not f.private %}
    {{ f.name }}: {{ f.zod_output }},
{% endfor %}
  })
  .openapi('{{ R }}');
export const {{ R }}Create = z
  .strictObject({
{% for f in r.fields if f.writable %}
    {{ f.name }}: {{ f.zod_create }},
{% endfor %}
  })
  .openapi('{{ R }}Create');
export const {{ R }}Update = z
  .strictObject({
{% for f in r.fields if f.writable %}
    {{ f.name }}: {{ f.zod_update }},
{% endfor %}
  })
  .openapi('{{ R }}Update');
export const {{ R }}List = listOf({{ R }}).openapi('{{ R }}List');
export const {{ R }}ListQuery = z.strictObject({
  ...page,
{% if r.sort %}
  sort: z.enum({{ r.sort_values | ts }}).optional(),
{% endif %}
{% for f in r.filters %}
  {{ f.name }}: {{ f.zod_filter }}.optional(),
{% endfor %}
});
{% endfor %}
