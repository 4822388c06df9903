import { sql } from 'drizzle-orm';
import { integer, pgTable, uuid } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../src/db/client.js';
import { after, countRows, EXACT_UP_TO, nextCursor, orderBy, sortKey, sorting } from '../src/resources/common.js';

// A table of its own, just past the exact-count limit, so the estimate path runs on the real planner.
const numbers = pgTable('count_probe', { n: integer('n').notNull() });
// Keyset pages over a nullable sort column with ties: NULLs last ascending, first descending.
const ranked = pgTable('cursor_probe', { id: uuid('id').primaryKey().defaultRandom(), rank: integer('rank') });
let database: Database;

beforeAll(async () => {
  database = await openDatabase({});
  await database.db.execute(sql`create table count_probe (n integer not null)`);
  await database.db.execute(sql`insert into count_probe select generate_series(1, ${EXACT_UP_TO + 50})`);
  await database.db.execute(sql`analyze count_probe`);
  await database.db.execute(sql`create table cursor_probe (id uuid primary key default gen_random_uuid(), rank integer)`);
  await database.db.execute(sql`insert into cursor_probe (rank) select case when n % 4 = 0 then null else n % 3 end from generate_series(1, 23) n`);
});
afterAll(() => database.close());

describe('list totals (?count=)', () => {
  it('counts every row with exact', async () => {
    const counted = await countRows(database.db, numbers, undefined, 'exact');
    expect(counted).toEqual({ total: EXACT_UP_TO + 50, count: 'exact' });
  });

  it('estimates past the limit, from the planner, never below what it counted', async () => {
    const { total, count } = await countRows(database.db, numbers, undefined, 'estimate');
    expect(count).toBe('estimate');
    expect(total).toBeGreaterThan(EXACT_UP_TO);
    expect(total).toBeLessThan((EXACT_UP_TO + 50) * 2);
    // A filter's bound parameters reach EXPLAIN too.
    const filtered = await countRows(database.db, numbers, sql`${numbers.n} > ${10}`, 'estimate');
    expect(filtered.count).toBe('estimate');
    expect(filtered.total).toBeGreaterThan(EXACT_UP_TO);
  });

  it('counts exactly under the limit, filter included', async () => {
    const where = sql`${numbers.n} > ${EXACT_UP_TO}`;
    expect(await countRows(database.db, numbers, where, 'estimate')).toEqual({ total: 50, count: 'exact' });
  });

  it('skips counting with none', async () => {
    expect(await countRows(database.db, numbers, undefined, 'none')).toEqual({ total: null, count: 'none' });
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
