import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { and, desc, eq, max, sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { bigint, type PgDatabase, type PgQueryResultHKT, pgSchema, serial, text } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { DatabaseOutage } from './outage.js';
import * as schema from './schema.js';

/** The same drizzle API over either driver; routers only ever see this type. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /** Applies every pending migration in drizzle/ (on PostgreSQL one instance at a time, see migrateLocked). */
  migrate(): Promise<void>;
  /** Tags of the migrations in drizzle/ that the database does not have yet, oldest first. */
  pendingMigrations(): Promise<string[]>;
  /** Reverts the most recently applied migration with its drizzle/down/ script; returns its tag. */
  rollback(): Promise<string | undefined>;
  close(): Promise<void>;
}

// Resolves to <project>/drizzle from both src/db (tsx, vitest) and dist/db (node).
const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** PostgreSQL via node-postgres when a URL is given, otherwise embedded PGlite (in memory when dir is empty). */
export async function openDatabase(options: {
  url?: string | undefined;
  pgliteDir?: string;
  /** Told of connection failures and recoveries (PostgreSQL only). */
  outage?: DatabaseOutage;
  /** Called with the SQL of every statement drizzle runs (tests count them). */
  onQuery?: (sql: string) => void;
}): Promise<Database> {
  const logger = options.onQuery && { logQuery: options.onQuery };
  if (options.url) {
    // A connection that cannot be had within 5 s fails the request (503) instead of queueing it forever.
    // Sessions in UTC, as PGlite's are: timestamps read back with a +00 offset whatever the server's zone.
    const pool = new pg.Pool({
      connectionString: options.url,
      max: 10,
      connectionTimeoutMillis: 5_000,
      options: '-c TimeZone=UTC',
    });
    // An idle connection that dies (a database restart, a failover) emits 'error' on the pool; unheard, that
    // would end the process. The pool drops the dead client and connects anew on the next query.
    pool.on('error', (error) => options.outage?.failed(error));
    pool.on('connect', () => options.outage?.recovered());
    const db = drizzlePg(pool, { schema, logger });
    return {
      db,
      migrate: () => migrateLocked(pool),
      pendingMigrations: () => pendingMigrations(db),
      rollback: () => rollback(db),
      close: () => pool.end(),
    };
  }
  // PGlite creates its data directory but not the parents (the default is .data/pglite).
  if (options.pgliteDir) await mkdir(options.pgliteDir, { recursive: true });
  const client = options.pgliteDir ? new PGlite(options.pgliteDir) : new PGlite();
  await client.waitReady;
  const db = drizzlePglite(client, { schema, logger });
  return {
    db,
    // PGlite belongs to this one process, so there is nobody to race and no lock to take.
    migrate: () => migratePglite(db, { migrationsFolder }),
    pendingMigrations: () => pendingMigrations(db),
    rollback: () => rollback(db),
    close: () => client.close(),
  };
}

// Key of the PostgreSQL advisory lock that migrations run under: "drizzle" in ASCII, read as one bigint (sent
// as a string, which PostgreSQL casts). Any constant would do as long as every instance uses the same one.
const MIGRATION_LOCK_KEY = 0x64_72_69_7a_7a_6c_65n.toString();

/**
 * Runs drizzle's migrator on one connection that holds the advisory lock. Replicas started together queue
 * on the lock; each one after the first finds nothing left to apply. (Unlocked, they race: all but one
 * fail on CREATE SCHEMA or CREATE TABLE.)
 */
async function migrateLocked(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await migratePg(drizzlePg(client, { schema }), { migrationsFolder });
  } finally {
    // The lock belongs to this session: if unlocking fails, destroying the connection releases it too.
    const failed = await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).then(
      () => undefined,
      (error: Error) => error,
    );
    client.release(failed);
  }
}

// drizzle's own bookkeeping table, declared here so rollback and pendingMigrations can query it without raw SQL.
const appliedMigrations = pgSchema('drizzle').table('__drizzle_migrations', {
  id: serial('id').primaryKey(),
  hash: text('hash').notNull(),
  created_at: bigint('created_at', { mode: 'number' }),
});

// Only to ask whether drizzle's table exists yet: before the first migration neither it nor its schema does.
const catalogTables = pgSchema('pg_catalog').table('pg_tables', {
  schemaname: text('schemaname').notNull(),
  tablename: text('tablename').notNull(),
});

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

async function readJournal(): Promise<Journal> {
  return JSON.parse(await readFile(`${migrationsFolder}/meta/_journal.json`, 'utf8')) as Journal;
}

/** drizzle's own rule: a migration is applied when its journal `when` is <= the newest created_at recorded. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const { entries } = await readJournal();
  const [table] = await db
    .select({ name: catalogTables.tablename })
    .from(catalogTables)
    .where(and(eq(catalogTables.schemaname, 'drizzle'), eq(catalogTables.tablename, '__drizzle_migrations')));
  if (!table) return entries.map((e) => e.tag);
  const [newest] = await db.select({ when: max(appliedMigrations.created_at) }).from(appliedMigrations);
  const applied = newest?.when ?? -Infinity;
  return entries.filter((e) => e.when > applied).map((e) => e.tag);
}

async function rollback(db: Db): Promise<string | undefined> {
  const { entries } = await readJournal();
  const [last] = await db.select().from(appliedMigrations).orderBy(desc(appliedMigrations.created_at)).limit(1);
  if (!last) return undefined;
  const entry = entries.find((e) => e.when === last.created_at);
  if (!entry) throw new Error(`applied migration ${last.created_at} is not in drizzle/meta/_journal.json`);
  const script = await readFile(`${migrationsFolder}/down/${entry.tag}.sql`, 'utf8');
  await db.transaction(async (tx) => {
    for (const statement of script.split('--> statement-breakpoint')) {
      if (statement.trim()) await tx.execute(sql.raw(statement));
    }
    await tx.delete(appliedMigrations).where(eq(appliedMigrations.id, last.id));
  });
  return entry.tag;
}
