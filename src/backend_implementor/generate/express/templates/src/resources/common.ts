import { asc, desc, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { badRequest, notFound } from '../errors.js';

const Uuid = z.uuid();

/** A path id that is not a UUID cannot name a row, so it is a 404 rather than a 400. */
export function idParam(value: unknown): string {
  const parsed = Uuid.safeParse(value);
  if (!parsed.success) throw notFound();
  return parsed.data;
}

/** A list's order: a whitelisted `sort` value (`field` or `-field`), then id, both the same direction. */
export interface Sorting {
  /** The `sort` value as given ('' for the default order); a cursor is only valid for the same one. */
  name: string;
  column: AnyColumn;
  descending: boolean;
  id: AnyColumn;
}

export function sorting(
  sort: string | undefined,
  columns: Record<string, AnyColumn>,
  fallback: AnyColumn,
  id: AnyColumn,
): Sorting {
  const descending = sort?.startsWith('-') ?? false;
  const column = (sort && columns[descending ? sort.slice(1) : sort]) || fallback;
  return { name: sort ?? '', column, descending, id };
}

/** ORDER BY the sort column with id as a stable tie-breaker (PostgreSQL puts NULLs last ascending, first descending). */
export const orderBy = (s: Sorting): SQL[] =>
  s.descending ? [desc(s.column), desc(s.id)] : [asc(s.column), asc(s.id)];

/** A row's sort key as PostgreSQL prints it, exact to the microsecond (a JS Date is not). */
export const sortKey = (s: Sorting) => sql<string | null>`${s.column}::text`;

const Cursor = z.tuple([z.string(), z.string().nullable(), z.uuid()]);

/**
 * The rows after a cursor's row in this order (keyset pagination: no offset to skip, so a page deep in a
 * large table costs what the first one does). A cursor this list did not hand out, or one given with an
 * offset, is a 400.
 */
export function after(s: Sorting, query: { cursor?: string | undefined; offset: number }): SQL | undefined {
  if (query.cursor === undefined) return undefined;
  if (query.offset !== 0) {
    throw badRequest('Invalid request query.', [{ path: 'query.offset', message: 'cannot be combined with cursor.' }]);
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const parsed = Cursor.safeParse(decoded);
  if (!parsed.success || parsed.data[0] !== s.name) {
    const message = parsed.success ? 'was made for another sort order.' : 'is not a cursor this API handed out.';
    throw badRequest('Invalid request query.', [{ path: 'query.cursor', message }]);
  }
  const [, key, id] = parsed.data;
  const { column: c, id: rowId } = s;
  if (key === null) {
    // Past a NULL: the other NULLs (by id), then, descending, every non-NULL value.
    return s.descending
      ? sql`((${c} is null and ${rowId} < ${id}) or ${c} is not null)`
      : sql`(${c} is null and ${rowId} > ${id})`;
  }
  const past = s.descending ? sql`(${c}, ${rowId}) < (${key}, ${id})` : sql`(${c}, ${rowId}) > (${key}, ${id})`;
  return s.descending || c.notNull ? past : sql`(${past} or ${c} is null)`;
}

/** The cursor of the page after this one, or null on the last page (`found` holds one row more than a page). */
export function nextCursor(s: Sorting, found: { key: string | null; id: string }[], limit: number): string | null {
  const last = found.length > limit ? found[limit - 1] : undefined;
  return last ? Buffer.from(JSON.stringify([s.name, last.key, last.id])).toString('base64url') : null;
}

/** Rows `?count=estimate` counts one by one; past this many it takes the planner's estimate. */
export const EXACT_UP_TO = 10_000;

/**
 * A list's `total` as `?count=` asks: `exact` counts every matching row (a full scan of a large table),
 * `estimate` (the default) counts up to EXACT_UP_TO rows and past that answers the query planner's estimate,
 * `none` skips counting. `count` in the answer says which the total is. The capped count walks the rows in
 * the page's `order`, so it reads the index the page reads instead of scanning the table for them.
 */
export async function countRows(
  db: Db,
  table: PgTable,
  where: SQL | undefined,
  mode: 'exact' | 'estimate' | 'none',
  order: SQL[] = [],
): Promise<{ total: number | null; count: 'exact' | 'estimate' | 'none' }> {
  if (mode === 'none') return { total: null, count: 'none' };
  if (mode === 'exact') return { total: await db.$count(table, where), count: 'exact' };
  const filter = where ? sql` where ${where}` : sql``;
  const ordered = order.length > 0 ? sql` order by ${sql.join(order, sql`, `)}` : sql``;
  const [capped] = await rows(
    db,
    sql`select count(*)::int as n from (select 1 from ${table}${filter}${ordered} limit ${EXACT_UP_TO + 1}) capped`,
  );
  const counted = Number(capped?.n ?? 0);
  if (counted <= EXACT_UP_TO) return { total: counted, count: 'exact' };
  // EXPLAIN reads the planner's statistics, not the rows.
  const [explained] = await rows(db, sql`explain (format json) select 1 from ${table}${filter}`);
  const raw = Object.values(explained ?? {})[0];
  const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan?: { 'Plan Rows'?: number } }[];
  return { total: Math.max(counted, Math.round(plan[0]?.Plan?.['Plan Rows'] ?? 0)), count: 'estimate' };
}

/** Rows of a raw statement, from either driver (both answer `{ rows }`). */
async function rows(db: Db, statement: SQL): Promise<Record<string, unknown>[]> {
  return ((await db.execute(statement)) as unknown as { rows: Record<string, unknown>[] }).rows;
}

/**
 * PostgreSQL timestamps, read as text (`0017-01-01 00:01:00.5+00` in the UTC sessions the client opens), as
 * ISO 8601 UTC. Put in ISO form before parsing: Date's fallback parser cannot read a year below 100.
 */
export const iso = (value: string): string =>
  new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString();
