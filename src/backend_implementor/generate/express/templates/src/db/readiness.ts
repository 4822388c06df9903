import type { RequestHandler, Response } from 'express';

/**
 * Whether the database has every migration this code needs, kept in memory. While migrations are pending
 * it asks the database again at most every `recheckMs`, so a `npm run db:migrate` run from elsewhere is
 * noticed without a restart; once the schema is current it never asks again.
 */
export class SchemaState {
  private pending: string[] | undefined; // undefined until the first check succeeds
  private checkedAt = 0;
  private inFlight: Promise<string[]> | undefined;

  constructor(
    private readonly check: () => Promise<string[]>,
    private readonly options: {
      /** Runs once, before the state first reports current (e.g. seeding the admin account). */
      onCurrent?: () => Promise<void>;
      recheckMs?: number;
    } = {},
  ) {}

  /** True once a check found nothing pending (it then stays true). */
  get current(): boolean {
    return this.pending?.length === 0;
  }

  /** The pending migration tags, oldest first; [] once the schema is current. */
  async pendingMigrations(): Promise<string[]> {
    if (this.current) return [];
    if (this.pending && Date.now() - this.checkedAt < (this.options.recheckMs ?? 2000)) return this.pending;
    // However many requests arrive meanwhile, one query answers them all.
    this.inFlight ??= this.refresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async refresh(): Promise<string[]> {
    const pending = await this.check();
    if (pending.length === 0) await this.options.onCurrent?.();
    this.pending = pending;
    this.checkedAt = Date.now();
    return pending;
  }
}

/** Readiness while shutting down: requests in flight finish, new ones belong on another instance. */
export function sendDraining(res: Response): void {
  res.status(503).set('Connection', 'close').type('application/problem+json').json({
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'This instance is shutting down.',
  });
}

/** 503 problem+json naming the pending migrations; load balancers and clients may retry after 5 s. */
export function sendSchemaPending(res: Response, pending: string[]): void {
  res
    .status(503)
    .set('Retry-After', '5')
    .type('application/problem+json')
    .json({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: `The database schema is behind the code; pending migrations: ${pending.join(', ')}.`,
      pending,
    });
}

/** Answers 503 instead of letting requests fail on tables or columns that do not exist yet. */
export function requireCurrentSchema(schema: SchemaState): RequestHandler {
  return (_req, res, next) => {
    // Once current, always current: no promise to wait for on the way to every route.
    if (schema.current) return next();
    return schema.pendingMigrations().then((pending) => {
      if (pending.length > 0) return sendSchemaPending(res, pending);
      next();
    });
  };
}
