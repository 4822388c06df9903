import { sql } from 'drizzle-orm';
import { integer, pgTable } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../src/db/client.js';
import { countRows, EXACT_UP_TO } from '../src/resources/common.js';

// A table of its own, just past the exact-count limit, so the estimate path runs on the real planner.
const numbers = pgTable('count_probe', { n: integer('n').notNull() });
let database: Database;

beforeAll(async () => {
  database = await openDatabase({});
  await database.db.execute(sql`create table count_probe (n integer not null)`);
  await database.db.execute(sql`insert into count_probe select generate_series(1, ${EXACT_UP_TO + 50})`);
  await database.db.execute(sql`analyze count_probe`);
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
