import { sql } from 'drizzle-orm';
import { integer, pgTable, uuid } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../src/db/client.js';
import { after, type Bind, EXACT_UP_TO, List, MAX_SHAPES, nextCursor, orderBy, sortKey, sorting } from '../src/services/common.js';

// A table of its own, just past the exact-count limit, so the estimate path runs on the real planner.
const numbers = pgTable('count_probe', { id: uuid('id').primaryKey().defaultRandom(), n: integer('n').notNull() });
// Keyset pages over a nullable sort column with ties: NULLs last ascending, first descending.
const ranked = pgTable('cursor_probe', { id: uuid('id').primaryKey().defaultRandom(), rank: integer('rank') });
let database: Database;
let list: List<typeof numbers>;
const byN = sorting(undefined, {}, numbers.n, numbers.id);
const all = () => undefined;
const above = (n: number) => (bind: Bind) => sql`${numbers.n} > ${bind('n', n)}`;
const page = (count: 'exact' | 'estimate' | 'none') => ({ limit: 2, offset: 0, count });

beforeAll(async () => {
  database = await openDatabase({});
  await database.db.execute(sql`create table count_probe (id uuid primary key default gen_random_uuid(), n integer not null)`);
  await database.db.execute(sql`insert into count_probe (n) select generate_series(1, ${EXACT_UP_TO + 50})`);
  await database.db.execute(sql`analyze count_probe`);
  await database.db.execute(sql`create table cursor_probe (id uuid primary key default gen_random_uuid(), rank integer)`);
  await database.db.execute(sql`insert into cursor_probe (rank) select case when n % 4 = 0 then null else n % 3 end from generate_series(1, 23) n`);
  list = new List(database.db, numbers, 'count_probe');
});
afterAll(() => database.close());

describe('list totals (?count=)', () => {
  it('counts every row with exact', async () => {
    const { total, count } = await list.find(page('exact'), byN, all, (row) => row);
    expect({ total, count }).toEqual({ total: EXACT_UP_TO + 50, count: 'exact' });
  });

  it('estimates past the limit, from the planner, never below what it counted', async () => {
    const { total, count } = await list.find(page('estimate'), byN, all, (row) => row);
    expect(count).toBe('estimate');
    expect(total).toBeGreaterThan(EXACT_UP_TO);
    expect(total).toBeLessThan((EXACT_UP_TO + 50) * 2);
    // A filter's values reach EXPLAIN too, which is not a prepared statement.
    const filtered = await list.find(page('estimate'), byN, above(10), (row) => row);
    expect(filtered.count).toBe('estimate');
    expect(filtered.total).toBeGreaterThan(EXACT_UP_TO);
  });

  it('counts exactly under the limit, filter included', async () => {
    const under = await list.find(page('estimate'), byN, above(EXACT_UP_TO), (row) => row);
    expect({ total: under.total, count: under.count }).toEqual({ total: 50, count: 'exact' });
    expect(under.items.map((row) => row.n)).toEqual([EXACT_UP_TO + 1, EXACT_UP_TO + 2]);
  });

  it('runs one prepared statement per shape, with each request\'s values', async () => {
    // Same filter, same sort: the same statements, so only the values can tell these apart.
    for (const n of [EXACT_UP_TO + 40, EXACT_UP_TO + 10, EXACT_UP_TO + 49]) {
      const found = await list.find(page('exact'), byN, above(n), (row) => row);
      expect(found.total).toBe(EXACT_UP_TO + 50 - n);
      expect(found.items[0]?.n).toBe(n + 1);
    }
  });

  it('answers shapes past the ones it keeps prepared, unprepared', async () => {
    for (let i = 0; i < MAX_SHAPES + 5; i++) {
      const shape = (bind: Bind) => sql`${numbers.n} > ${bind(`n${i}`, EXACT_UP_TO + 47)}`;
      const found = await list.find(page('estimate'), byN, shape, (row) => row);
      expect(found.items.map((row) => row.n)).toEqual([EXACT_UP_TO + 48, EXACT_UP_TO + 49]);
      expect(found.total).toBe(3);
    }
  });

  it('refuses a placeholder bound twice (a filter must never take over the owner scope)', async () => {
    const twice = (bind: Bind) => sql`${numbers.n} > ${bind('n', 1)} and ${numbers.n} < ${bind('n', 5)}`;
    await expect(list.find(page('none'), byN, twice, (row) => row)).rejects.toThrow(/bound twice/);
  });

  it('skips counting with none', async () => {
    const { total, count } = await list.find(page('none'), byN, all, (row) => row);
    expect({ total, count }).toEqual({ total: null, count: 'none' });
  });
});

describe('keyset pages (?cursor=)', () => {
  for (const sort of ['rank', '-rank']) {
    it(`walks ${sort} with NULLs and ties, every row once, in ORDER BY order`, async () => {
      const s = sorting(sort, { rank: ranked.rank }, ranked.rank, ranked.id);
      const everything = await database.db.select({ id: ranked.id }).from(ranked).orderBy(...orderBy(s));
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const found = await database.db
          .select({ row: ranked, key: sortKey(s) })
          .from(ranked)
          .where(after(s, { cursor, offset: 0 }))
          .orderBy(...orderBy(s))
          .limit(4);
        seen.push(...found.slice(0, 3).map(({ row }) => row.id));
        const next = nextCursor(s, found.map(({ row, key }) => ({ key, id: row.id })), 3);
        if (next === null) break;
        cursor = next;
      }
      expect(seen).toEqual(everything.map((r) => r.id));
    });
  }
});
