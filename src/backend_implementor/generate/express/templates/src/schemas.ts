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
 * A number from the query string. Not z.coerce: Number('') is 0, so `?offset=` would pass as 0, and the
 * OpenAPI document would call the parameter nullable.
 */
const queryNumber = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (typeof value === 'string' ? (value.trim() === '' ? Number.NaN : Number(value)) : value), schema);
{% if uses_text %}

/** Free text: PostgreSQL cannot store U+0000, so it is refused (and the document says so). */
const text = () => z.string().regex(/^[^\u0000]*$/, 'NUL characters are not accepted.');
{% endif %}

/** Shared list parameters; unknown query keys are rejected by each resource's strict query schema. */
const page = {
  limit: queryNumber(z.number().int().min(1).max(100)).default(20),
  offset: queryNumber(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).default(0),
};

const listOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
{% if uses_json %}

/** Any JSON value. Not z.json(): its recursion cannot be walked by the OpenAPI generator. */
const JsonValue = z
  .union([z.record(z.string(), z.unknown()), z.array(z.unknown()), z.string(), z.number(), z.boolean(), z.null()])
  .openapi({ description: 'Any JSON value' });
{% endif %}
{% if uses_decimal %}

/**
 * A decimal travels as a string ("12.50") so no precision is lost; input may also be a JSON number.
 * Digits are checked against the column's precision and scale, so the database never overflows.
 */
function decimal(precision: number, scale: number, min: number | null, max: number | null) {
  const digits = scale > 0 ? `^-?\\d{1,${precision - scale}}(\\.\\d{1,${scale}})?$` : `^-?\\d{1,${precision}}$`;
  return z
    .union([z.string(), z.number()])
    .transform(String)
    .pipe(
      z
        .string()
        .regex(new RegExp(digits), `expected a decimal with at most ${precision - scale} digits before and ${scale} after the point`)
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

const Email = z.email().max(320);
const Password = text().min(8).max(256);

export const Credentials = z.strictObject({ email: Email, password: Password }).openapi('Credentials');
export const RefreshRequest = z.strictObject({ refresh_token: text().min(1).max(512) }).openapi('RefreshRequest');
export const TokenPair = z
  .object({
    access_token: z.string(),
    refresh_token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int(),
  })
  .openapi('TokenPair');
export const User = z.object({ id: z.uuid(), email: z.email(), role: z.enum(ROLES) }).openapi('User');
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
