{% if auth %}
import { lt, sql } from 'drizzle-orm';
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit';
import type { Db } from '../db/client.js';
import { rateLimits } from '../db/schema.js';

/**
 * express-rate-limit's counters in the database, so that every instance behind a load balancer spends the
 * same budget (a memory store gives each instance its own). Fixed windows: one upsert per attempt opens or
 * counts the client's window; expired windows are swept once a window.
 */
export class DatabaseStore implements Store {
  prefix = 'auth:';
  localKeys = false;
  private windowMs = 60_000;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly db: Db) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), this.windowMs);
    this.sweeper.unref();
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const [row] = rowsOf(
      await this.db.execute(
        sql`select hits, ${resetMs} from ${rateLimits} where key = ${this.prefix + key} and reset_at > now()`,
      ),
    );
    return row ? counted(row) : undefined;
  }

  async increment(key: string): Promise<IncrementResponse> {
    const window = `${this.windowMs} milliseconds`;
    // One statement, so concurrent attempts from several instances count exactly.
    const [row] = rowsOf(
      await this.db.execute(sql`
        insert into ${rateLimits} as r (key, hits, reset_at)
        values (${this.prefix + key}, 1, now() + ${window}::interval)
        on conflict (key) do update set
          hits = case when r.reset_at <= now() then 1 else r.hits + 1 end,
          reset_at = case when r.reset_at <= now() then now() + ${window}::interval else r.reset_at end
        returning hits, ${resetMs}`),
    );
    if (!row) throw new Error('rate limit upsert returned no row');
    return counted(row);
  }

  async decrement(key: string): Promise<void> {
    await this.db.execute(
      sql`update ${rateLimits} set hits = greatest(hits - 1, 0) where key = ${this.prefix + key} and reset_at > now()`,
    );
  }

  async resetKey(key: string): Promise<void> {
    await this.db.execute(sql`delete from ${rateLimits} where key = ${this.prefix + key}`);
  }

  async resetAll(): Promise<void> {
    await this.db.execute(sql`delete from ${rateLimits} where key like ${this.prefix + '%'}`);
  }

  shutdown(): void {
    clearInterval(this.sweeper);
  }

  async sweep(): Promise<void> {
    await this.db.delete(rateLimits).where(lt(rateLimits.reset_at, sql`now()`));
  }
}

interface Counter {
  hits: number;
  reset_ms: number | string;
}

const resetMs = sql.raw('(extract(epoch from reset_at) * 1000)::float8 as reset_ms');
const rowsOf = (result: unknown): Counter[] => (result as { rows: Counter[] }).rows;
const counted = (row: Counter): ClientRateLimitInfo => ({
  totalHits: Number(row.hits),
  resetTime: new Date(Number(row.reset_ms)),
});
{% endif %}
