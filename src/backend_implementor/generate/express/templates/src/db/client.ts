import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { desc, eq, sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { bigint, type PgDatabase, type PgQueryResultHKT, pgSchema, serial, text } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import * as schema from './schema.js';

/** The same drizzle API over either driver; routers only ever see this type. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /** Applies every pending migration in drizzle/. */
  migrate(): Promise<void>;
  /** Reverts the most recently applied migration with its drizzle/down/ script; returns its tag. */
  rollback(): Promise<string | undefined>;
  close(): Promise<void>;
}

// Resolves to <project>/drizzle from both src/db (tsx, vitest) and dist/db (node).
const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** PostgreSQL via node-postgres when a URL is given, otherwise embedded PGlite (in memory when dir is empty). */
export async function openDatabase(options: { url?: string | undefined; pgliteDir?: string }): Promise<Database> {
  if (options.url) {
    const pool = new pg.Pool({ connectionString: options.url, max: 10 });
    const db = drizzlePg(pool, { schema });
    return {
      db,
      migrate: () => migratePg(db, { migrationsFolder }),
      rollback: () => rollback(db),
      close: () => pool.end(),
    };
  }
  // PGlite creates its data directory but not the parents (the default is .data/pglite).
  if (options.pgliteDir) await mkdir(options.pgliteDir, { recursive: true });
  const client = options.pgliteDir ? new PGlite(options.pgliteDir) : new PGlite();
  await client.waitReady;
  const db = drizzlePglite(client, { schema });
  return {
    db,
    migrate: () => migratePglite(db, { migrationsFolder }),
    rollback: () => rollback(db),
    close: () => client.close(),
  };
}

// drizzle's own bookkeeping table, declared here so rollback can query it without raw SQL.
const appliedMigrations = pgSchema('drizzle').table('__drizzle_migrations', {
  id: serial('id').primaryKey(),
  hash: text('hash').notNull(),
  created_at: bigint('created_at', { mode: 'number' }),
});

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

async function rollback(db: Db): Promise<string | undefined> {
  const journal = JSON.parse(await readFile(`${migrationsFolder}/meta/_journal.json`, 'utf8')) as Journal;
  const [last] = await db.select().from(appliedMigrations).orderBy(desc(appliedMigrations.created_at)).limit(1);
  if (!last) return undefined;
  const entry = journal.entries.find((e) => e.when === last.created_at);
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
