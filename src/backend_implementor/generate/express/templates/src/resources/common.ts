import { asc, desc, type AnyColumn, type SQL } from 'drizzle-orm';
import { z } from 'zod';
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

/**
 * PostgreSQL timestamps, read as text (`0017-01-01 00:01:00.5+00` in the UTC sessions the client opens), as
 * ISO 8601 UTC. Put in ISO form before parsing: Date's fallback parser cannot read a year below 100.
 */
export const iso = (value: string): string =>
  new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString();
