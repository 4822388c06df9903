import type { Logger } from '../middleware/logger.js';

// Errors that say the database cannot be reached (not that a query was wrong): the driver's socket errors,
// PostgreSQL's connection-exception class 08, server shutdown and "cannot connect now" (57P0x), too many
// connections (53300), and node-postgres' own messages for a connection that died or never came.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const SQLSTATE_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
const DRIVER_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/** True when `error` (or anything in its `cause` chain, as drizzle wraps driver errors) means "database unreachable". */
export function isUnavailable(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SQLSTATE_UNAVAILABLE.test(code))) return true;
    if (DRIVER_MESSAGES.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some(isUnavailable)) return true;
  }
  return false;
}

/**
 * Logs a database outage as state changes: one line when it starts, a count at most every `reportMs` while
 * it lasts, one line when a new connection succeeds again — never a stack trace per failed request.
 */
export class DatabaseOutage {
  private since: number | undefined;
  private failures = 0;
  private reportedAt = 0;

  constructor(
    private readonly logger: Logger,
    private readonly reportMs = 30_000,
  ) {}

  get active(): boolean {
    return this.since !== undefined;
  }

  failed(error: unknown): void {
    const now = Date.now();
    this.failures += 1;
    if (this.since === undefined) {
      this.since = this.reportedAt = now;
      this.logger.error({ reason: rootMessage(error) }, 'database unreachable: answering 503 until it is back');
    } else if (now - this.reportedAt >= this.reportMs) {
      this.reportedAt = now;
      this.logger.warn({ failures: this.failures, downForMs: now - this.since }, 'database still unreachable');
    }
  }

  recovered(): void {
    if (this.since === undefined) return;
    this.logger.info({ failures: this.failures, downForMs: Date.now() - this.since }, 'database reachable again');
    this.since = undefined;
    this.failures = 0;
  }
}

/** The innermost reason: drizzle wraps the driver's error, whose message is the reason, in one quoting the SQL. */
export function rootMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (e instanceof AggregateError && e.errors[0] instanceof Error) e = e.errors[0];
  return e instanceof Error ? e.message || String((e as { code?: unknown }).code ?? 'error') : String(e);
}
