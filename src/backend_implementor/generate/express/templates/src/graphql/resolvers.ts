{% if graphql %}
{% set U = 'ctx.user, ' if auth else '' %}
{% macro permit(r, action) %}permit({{ r.var }}Access.{{ action }}, ctx.user);{% endmacro %}
{% set sliced = resources | selectattr('gql.back_refs') | list %}
{% if sliced %}
import { z } from 'zod';
{% endif %}
{% if auth %}
import type { AuthService } from '../auth/service.js';
import type { AuthUser } from '../auth/sessions.js';
{% endif %}
import { notFound } from '../errors.js';
{% if auth %}
import { permit } from '../middleware/authorize.js';
{% endif %}
import { validate } from '../middleware/validate.js';
import {
{% for r in resources_by_name %}
  {{ r.type_name }}Create,
  {{ r.type_name }}ListQuery,
  {{ r.type_name }}Update,
{% endfor %}
} from '../schemas.js';
import { idParam, isId } from '../services/common.js';
import type { Services } from '../services/index.js';
{% for r in resources_by_name %}
{% set typed = r.ref_fields or r.gql.back_refs %}
{% if auth and typed %}
import { {{ r.var }}Access, type {{ r.type_name }}Json } from '../services/{{ r.name }}.js';
{% elif auth %}
import { {{ r.var }}Access } from '../services/{{ r.name }}.js';
{% elif typed %}
import type { {{ r.type_name }}Json } from '../services/{{ r.name }}.js';
{% endif %}
{% endfor %}
import type { Loaders } from './loaders.js';

/** What every resolver gets besides its arguments: the caller and this request's loaders. */
export type Context = {
{% if auth %}
  user: AuthUser | undefined;
{% endif %}
  loaders: Loaders;
};

/** Resolvers by type and field of schema.graphql; executableSchema refuses one the file does not have. */
// biome-ignore lint/suspicious/noExplicitAny: each resolver types its own parent and arguments
export type Resolvers = Record<string, Record<string, (parent: any, args: any, ctx: Context) => unknown>>;

/** List arguments as the query string REST reads them, so the same schema validates both. */
const asQuery = (args: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(Object.entries(args).flatMap(([key, value]) => (value == null ? [] : [[key, String(value)]])));
{% if sliced %}

/** The page of a reverse side (`author { books(limit, offset) }`), bounded like a list's. */
const Slice = z.strictObject({
  limit: z.number().int().min(1).max(100),
  offset: z.number().int().min(0),
});
{% endif %}

/**
 * Every operation of schema.graphql, as calls to the same services REST uses: the same access rules (checked
 * first, as REST's routes do), the same zod schemas on arguments and inputs, the same owner scoping.
 */
export function resolvers(services: Services{{ ', auth: AuthService' if auth else '' }}): Resolvers {
  return {
    Query: {
{% if auth %}
      me: (_root: unknown, _args: unknown, ctx: Context) => auth.me(permit('authenticated', ctx.user).id),
{% endif %}
{% for r in resources %}
      {{ r.gql.one }}: (_root: unknown, { id }: { id: string }, ctx: Context) => {
{% if auth %}
        {{ permit(r, 'read') }}
{% endif %}
        return isId(id) ? services.{{ r.var }}.find({{ U }}id) : null;
      },
      {{ r.gql.many }}: (_root: unknown, args: Record<string, unknown>, ctx: Context) => {
{% if auth %}
        {{ permit(r, 'list') }}
{% endif %}
        return services.{{ r.var }}.list({{ U }}validate({{ r.type_name }}ListQuery, asQuery(args), 'args'));
      },
{% endfor %}
    },
    Mutation: {
{% for r in resources %}
      {{ r.gql.create }}: (_root: unknown, { input }: { input?: unknown }, ctx: Context) => {
{% if auth %}
        {{ permit(r, 'create') }}
{% endif %}
        return services.{{ r.var }}.create({{ U }}validate({{ r.type_name }}Create, input ?? {}, 'input'));
      },
      {{ r.gql.update }}: async (_root: unknown, { id, input }: { id: string; input?: unknown }, ctx: Context) => {
{% if auth %}
        {{ permit(r, 'update') }}
{% endif %}
        const row = await services.{{ r.var }}.update({{ U }}idParam(id), validate({{ r.type_name }}Update, input ?? {}, 'input'));
        if (!row) throw notFound();
        return row;
      },
      {{ r.gql.delete }}: async (_root: unknown, { id }: { id: string }, ctx: Context) => {
{% if auth %}
        {{ permit(r, 'delete') }}
{% endif %}
        if (!(await services.{{ r.var }}.remove({{ U }}idParam(id)))) throw notFound();
        return true;
      },
{% endfor %}
    },
{% for r in resources if r.ref_fields or r.gql.back_refs %}
    {{ r.type_name }}: {
{% for f in r.fields if f.ref_table and not f.private %}
{% set target = resources | selectattr('name', 'equalto', f.ref_table) | first %}
      {{ f.name }}: (row: {{ r.type_name }}Json, _args: unknown, ctx: Context) =>
{% if f.nullable %}
        row.{{ f.name }} === null
          ? null
          : ctx.loaders.get('{{ target.name }}', (ids) => services.{{ target.var }}.findMany({{ U }}ids)).load(row.{{ f.name }}),
{% else %}
        ctx.loaders.get('{{ target.name }}', (ids) => services.{{ target.var }}.findMany({{ U }}ids)).load(row.{{ f.name }}),
{% endif %}
{% endfor %}
{% for back in r.gql.back_refs %}
      {{ back.name }}: (row: {{ r.type_name }}Json, args: unknown, ctx: Context) => {
        const page = validate(Slice, args, 'args');
        return ctx.loaders
          .get(`{{ back.child.name }}.{{ back.field }}:${page.limit}:${page.offset}`, (ids) =>
            services.{{ back.child.var }}.pagesBy{{ back.field | pascal }}({{ U }}ids, page),
          )
          .load(row.id);
      },
{% endfor %}
    },
{% endfor %}
  };
}
{% endif %}
