import { asc, desc, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { notFound } from '../errors.js';

const Uuid = z.uuid();

/** A path id that is not a UUID cannot name a row, so it is a 404 rather than a 400. */
export function idParam(value: unknown): string {
  const parsed = Uuid.safeParse(value);
  if (!parsed.success) throw notFound();
  return parsed.data;
}

/** ORDER BY for a whitelisted `sort` value (`field` or `-field`), with id as a stable tie-breaker. */
export function orderBy(
  sort: string | undefined,
  columns: Record<string, AnyColumn>,
  fallback: AnyColumn,
  id: AnyColumn,
): SQL[] {
  if (!sort) return [asc(fallback), asc(id)];
  const descending = sort.startsWith('-');
  const column = columns[descending ? sort.slice(1) : sort] ?? fallback;
  return [descending ? desc(column) : asc(column), asc(id)];
}

/** Rows `?count=estimate` counts one by one; past this many it takes the planner's estimate. */
export const EXACT_UP_TO = 10_000;

/**
 * A list's `total` as `?count=` asks: `exact` counts every matching row (a full scan of a large table),
 * `estimate` (the default) counts up to EXACT_UP_TO rows and past that answers the query planner's estimate,
 * `none` skips counting. `count` in the answer says which the total is.
 */
export async function countRows(
  db: Db,
  table: PgTable,
  where: SQL | undefined,
  mode: 'exact' | 'estimate' | 'none',
): Promise<{ total: number | null; count: 'exact' | 'estimate' | 'none' }> {
  if (mode === 'none') return { total: null, count: 'none' };
  if (mode === 'exact') return { total: await db.$count(table, where), count: 'exact' };
  const filter = where ? sql` where ${where}` : sql``;
  const [capped] = await rows(
    db,
    sql`select count(*)::int as n from (select 1 from ${table}${filter} limit ${EXACT_UP_TO + 1}) capped`,
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
