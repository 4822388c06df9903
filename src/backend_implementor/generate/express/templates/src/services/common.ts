import { createHash } from 'node:crypto';
import { and, asc, desc, {{ 'eq, gt, inArray, lte, ' if graphql else '' }}sql, type AnyColumn, type Placeholder, type SQL } from 'drizzle-orm';
import type { {{ 'PgColumn, ' if graphql else '' }}PgTable } from 'drizzle-orm/pg-core';
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
{% if graphql %}

/** Whether an id can name a row at all (GraphQL reads of other ids find nothing). */
export const isId = (value: unknown): boolean => Uuid.safeParse(value).success;
{% endif %}

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
export function after(
  s: Sorting,
  query: { cursor?: string | undefined; offset: number },
  bind: Bind = inline,
): SQL | undefined {
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
  const lastId = bind('cursor_id', id);
  if (key === null) {
    // Past a NULL: the other NULLs (by id), then, descending, every non-NULL value.
    return s.descending
      ? sql`((${c} is null and ${rowId} < ${lastId}) or ${c} is not null)`
      : sql`(${c} is null and ${rowId} > ${lastId})`;
  }
  const lastKey = bind('cursor_key', key);
  const past = s.descending ? sql`(${c}, ${rowId}) < (${lastKey}, ${lastId})` : sql`(${c}, ${rowId}) > (${lastKey}, ${lastId})`;
  return s.descending || c.notNull ? past : sql`(${past} or ${c} is null)`;
}

/** The cursor of the page after this one, or null on the last page (`found` holds one row more than a page). */
export function nextCursor(s: Sorting, found: { key: string | null; id: string }[], limit: number): string | null {
  const last = found.length > limit ? found[limit - 1] : undefined;
  return last ? Buffer.from(JSON.stringify([s.name, last.key, last.id])).toString('base64url') : null;
}

/**
 * How a query's values reach the SQL: as named placeholders of a prepared statement, or inline (for the one
 * statement that cannot be prepared, EXPLAIN).
 */
export type Bind = <T>(name: string, value: T) => T | Placeholder;

export const inline: Bind = (_name, value) => value;

/**
 * The values of a statement's placeholders, collected while its conditions are built. A name bound twice would
 * give both conditions the second value (a filter could replace the owner scope), so it is refused; routers
 * bind filters as `filter_<field>`, apart from `owner`, `cursor_*`, `limit`, `offset` and `cap`.
 */
class Params {
  readonly values: Record<string, unknown> = {};
  readonly bind: Bind = (name, value) => {
    if (name in this.values) throw new Error(`placeholder ${name} is bound twice`);
    this.values[name] = value;
    return sql.placeholder(name);
  };
  /** Which placeholders are bound: with the sort, this is all a list's SQL depends on. */
  get names(): string {
    return Object.keys(this.values).join(',');
  }
}

interface Statement<T> {
  execute(values?: Record<string, unknown>): Promise<T[]>;
}

/** A drizzle query not yet run: prepared under a name, or run as it is (an unnamed statement). */
interface Preparable<T> extends Statement<T> {
  prepare(name: string): Statement<T>;
}

/** Prepared statements kept per table and kind; past this many shapes, further ones run unprepared. */
export const MAX_SHAPES = 100;

/**
 * Statements built and prepared once per shape: the SQL of a list or an insert depends on which filters or
 * fields a request gives, never on their values. The name is a hash of the shape, so every app in a process
 * (tests make many on one pool) gives the same SQL the same name, and stays within PostgreSQL's 63 bytes.
 * The number kept is bounded: a client cycling through every combination of fields cannot make the server
 * hold one statement per combination on every connection.
 */
class Prepared<T> {
  private readonly byShape = new Map<string, Statement<T>>();
  constructor(private readonly prefix: string) {}

  get(shape: string, build: () => Preparable<T>): Statement<T> {
    const kept = this.byShape.get(shape);
    if (kept) return kept;
    if (this.byShape.size >= MAX_SHAPES) return build();
    const hash = createHash('sha256').update(`${this.prefix}|${shape}`).digest('base64url').slice(0, 16);
    const statement = build().prepare(`${this.prefix.slice(0, 40)}_${hash}`);
    this.byShape.set(shape, statement);
    return statement;
  }
}

export interface ListQuery {
  limit: number;
  offset: number;
  count: 'exact' | 'estimate' | 'none';
  cursor?: string | undefined;
}

/** Rows `?count=estimate` counts one by one; past this many it takes the planner's estimate. */
export const EXACT_UP_TO = 10_000;

/**
 * One table's list: a page (limit/offset or cursor) and its `total`. A list's SQL depends on which filters a
 * request gives, its sort and its kind of cursor, never on their values, so each such shape is built by drizzle
 * and parsed by PostgreSQL once (per connection), then runs with each request's values: most of a list
 * request's cost was building and parsing SQL. PostgreSQL plans the first executions with their values and
 * may then keep a generic plan (its default plan_cache_mode); with an index for every filter and sort, the
 * generic plan is the same index scan, and the 1M-row plan test runs with generic plans forced to prove it.
 */
export class List<Table extends PgTable & { $inferSelect: { id: string } }> {
  private readonly pages: Prepared<{ row: Table['$inferSelect']; key: string | null }>;
  private readonly counts: Prepared<{ n: number }>;

  constructor(
    private readonly db: Db,
    private readonly table: Table,
    name: string,
  ) {
    this.pages = new Prepared(`${name}_list`);
    this.counts = new Prepared(`${name}_count`);
  }

  /** The page `query` asks for, in `sorted` order, of the rows `conditions` (bound as told) admit. */
  async find<Item>(
    query: ListQuery,
    sorted: Sorting,
    conditions: (bind: Bind) => SQL | undefined,
    toJson: (row: Table['$inferSelect']) => Item,
  ) {
    const params = new Params();
    const where = conditions(params.bind);
    // The count's shape: the filters; the page's: the filters and the cursor, bound next.
    const filters = `${sorted.name}|${params.names}`;
    const page = and(where, after(sorted, query, params.bind));
    const pageQuery = this.pages.get(
      `${sorted.name}|${params.names}`,
      () =>
        this.db
          .select({ row: this.table as PgTable, key: sortKey(sorted) })
          .from(this.table as PgTable)
          .where(page)
          .orderBy(...orderBy(sorted))
          .limit(sql.placeholder('limit'))
          .offset(sql.placeholder('offset')) as unknown as Preparable<{ row: Table['$inferSelect']; key: string | null }>,
    );
    const [found, counted] = await Promise.all([
      pageQuery.execute({ ...params.values, limit: query.limit + 1, offset: query.offset }),
      this.total(query.count, sorted, filters, where, params.values, () => conditions(inline)),
    ]);
    return {
      items: found.slice(0, query.limit).map(({ row }) => toJson(row)),
      ...counted,
      limit: query.limit,
      offset: query.offset,
      next_cursor: nextCursor(sorted, found.map(({ row, key }) => ({ key, id: row.id })), query.limit),
    };
  }

  /**
   * A list's `total` as `?count=` asks: `exact` counts every matching row (a full scan of a large table),
   * `estimate` (the default) counts up to EXACT_UP_TO rows and past that answers the query planner's estimate,
   * `none` skips counting. `count` in the answer says which the total is. The capped count walks the rows in
   * the page's order, so it reads the index the page reads instead of scanning the table for them.
   */
  private async total(
    mode: ListQuery['count'],
    sorted: Sorting,
    shape: string,
    where: SQL | undefined,
    values: Record<string, unknown>,
    inlined: () => SQL | undefined,
  ): Promise<{ total: number | null; count: ListQuery['count'] }> {
    if (mode === 'none') return { total: null, count: 'none' };
    const { db } = this;
    const table = this.table as PgTable;
    if (mode === 'exact') {
      const all = this.counts.get(`exact|${shape}`, () =>
        db.select({ n: sql<number>`count(*)::int` }).from(table).where(where),
      );
      const [counted] = await all.execute(values);
      return { total: Number(counted?.n ?? 0), count: 'exact' };
    }
    const capped = this.counts.get(`capped|${shape}`, () => {
      const rows = db
        .select({ one: sql`1` })
        .from(table)
        .where(where)
        .orderBy(...orderBy(sorted))
        .limit(sql.placeholder('cap'));
      return db.select({ n: sql<number>`count(*)::int` }).from(sql`(${rows}) capped`);
    });
    const [first] = await capped.execute({ ...values, cap: EXACT_UP_TO + 1 });
    const counted = Number(first?.n ?? 0);
    if (counted <= EXACT_UP_TO) return { total: counted, count: 'exact' };
    // EXPLAIN reads the planner's statistics, not the rows.
    const filter = inlined();
    const [explained] = await rows(db, sql`explain (format json) select 1 from ${table}${filter ? sql` where ${filter}` : sql``}`);
    const raw = Object.values(explained ?? {})[0];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan?: { 'Plan Rows'?: number } }[];
    return { total: Math.max(counted, Math.round(plan[0]?.Plan?.['Plan Rows'] ?? 0)), count: 'estimate' };
  }
}

/**
 * A table's inserts, prepared per set of columns a row gives (the others take their column defaults): one
 * statement per shape of create body, built by drizzle and parsed by PostgreSQL once per connection.
 */
export class Inserts<Table extends PgTable> {
  private readonly statements: Prepared<Table['$inferSelect']>;

  constructor(
    private readonly db: Db,
    private readonly table: Table,
    name: string,
  ) {
    this.statements = new Prepared(`${name}_insert`);
  }

  /** Inserts one row and returns it as stored. */
  async insert(values: Table['$inferInsert']): Promise<Table['$inferSelect']> {
    const given = values as Record<string, unknown>;
    const columns = Object.keys(given).filter((c) => given[c] !== undefined).sort();
    // A null is part of the shape, written into the statement: as a placeholder's value it would go through the
    // column's encoder, which turns null into JSON 'null' for json and "null" for numeric.
    const shape = columns.map((c) => (given[c] === null ? `${c}=null` : c)).join(',');
    const statement = this.statements.get(
      shape,
      () =>
        this.db
          .insert(this.table as PgTable)
          .values(Object.fromEntries(columns.map((c) => [c, given[c] === null ? null : sql.placeholder(c)])))
          .returning() as unknown as Preparable<Table['$inferSelect']>,
    );
    const [row] = await statement.execute(given);
    if (!row) throw new Error('insert returned no row');
    return row;
  }
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
{% if graphql %}

/** A page of a reference's reverse side (GraphQL's `author { books(limit, offset) }`). */
export interface Page {
  limit: number;
  offset: number;
}

/**
 * For each parent id, one page of the child rows whose `column` names it (oldest first) and their count, in two
 * statements whatever the number of parents: row_number() ranks each parent's children, and one grouped count
 * totals them. `scope` narrows the children (an owner's rows).
 */
export async function childPages<Row extends { id: string }, Item>(
  db: Db,
  table: PgTable & { id: PgColumn; created_at: PgColumn },
  column: PgColumn,
  parents: readonly string[],
  page: Page,
  toJson: (row: Row) => Item,
  scope?: SQL,
): Promise<{ items: Item[]; total: number; limit: number; offset: number }[]> {
  const where = and(inArray(column, [...parents]), scope);
  const ranked = db
    .select({
      id: sql<string>`${table.id}`.as('ranked_id'),
      parent: sql<string>`${column}`.as('parent'),
      n: sql<number>`row_number() over (partition by ${column} order by ${table.created_at}, ${table.id})`.as('n'),
    })
    .from(table)
    .where(where)
    .as('ranked');
  const [found, counted] = await Promise.all([
    db
      .select({ row: table as PgTable, parent: ranked.parent })
      .from(table)
      .innerJoin(ranked, eq(table.id, ranked.id))
      .where(and(gt(ranked.n, page.offset), lte(ranked.n, page.offset + page.limit)))
      .orderBy(ranked.parent, ranked.n),
    db
      .select({ parent: sql<string>`${column}`, n: sql<number>`count(*)::int` })
      .from(table)
      .where(where)
      .groupBy(column),
  ]);
  const items = new Map<string, Item[]>();
  for (const { row, parent } of found) {
    const list = items.get(parent) ?? [];
    list.push(toJson(row as unknown as Row));
    items.set(parent, list);
  }
  const totals = new Map(counted.map(({ parent, n }) => [parent, Number(n)]));
  return parents.map((id) => ({ items: items.get(id) ?? [], total: totals.get(id) ?? 0, ...page }));
}
{% endif %}
