import { isUtf8 } from 'node:buffer';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { type DatabaseOutage, isUnavailable } from '../db/outage.js';
import { HttpError, notFound as notFoundError } from '../errors.js';
import type { Logger } from './logger.js';

function send(res: Response, error: HttpError): void {
{% if auth %}
  if (error.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
{% endif %}
  res
    .status(error.status)
    .type('application/problem+json')
    .json({
      type: 'about:blank',
      title: error.title,
      status: error.status,
      detail: error.detail,
      ...(error.errors ? { errors: error.errors } : {}),
    });
}

// PostgreSQL SQLSTATEs that are the client's fault; drizzle wraps driver errors, so look through `cause`.
function sqlState(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

export const notFound: RequestHandler = (_req, _res, next) => next(notFoundError('No route matches this path.'));

/** The last handler of a path: every method it does not serve gets 405 with `Allow` (OPTIONS: 204 with it). */
export function onlyMethods(allow: string): RequestHandler {
  return (req, res) => {
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') return void res.status(204).end();
    throw new HttpError(405, `${req.method} is not supported here; use ${allow}.`);
  };
}

/** Refuses a body that is not UTF-8 (express.json would turn bad bytes into U+FFFD and store them). */
export function utf8Only(_req: unknown, _res: unknown, body: Buffer): void {
  if (!isUtf8(body)) throw Object.assign(new Error('Request body is not valid UTF-8.'), { type: 'body.not_utf8' });
}

/**
 * The HTTP error an error stands for, when it is not a bug: an HttpError, a body the parser refused, a database
 * that cannot be reached (told to `outage`, so it is logged once, not per request), or a PostgreSQL error that
 * is the client's fault. Shared by REST and GraphQL, so both answer the same error the same way.
 */
export function knownError(error: unknown, outage: DatabaseOutage): HttpError | undefined {
  if (error instanceof HttpError) return error;
  const type = (error as { type?: unknown }).type;
  if (type === 'body.not_utf8') return new HttpError(400, 'Request body is not valid UTF-8.');
  // body-parser errors (malformed JSON, 413) carry a safe status and `expose`.
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (error as { expose?: unknown }).expose) {
    return new HttpError(status, status === 413 ? 'Request body is too large.' : 'Request body is not valid JSON.');
  }
  if (isUnavailable(error)) {
    outage.failed(error);
    return new HttpError(503, 'The database is unavailable; try again shortly.');
  }
  switch (sqlState(error)) {
    case '23505':
      return new HttpError(409, 'A record with the same unique value already exists.');
    case '23503':
      return new HttpError(409, 'A referenced record does not exist, or other records still refer to this one.');
  }
  return undefined;
}

/** Every error leaves as problem+json; a 503 says when to retry, and other 500s are logged in full and never leak
 * stack traces or SQL. */
export function errorHandler(logger: Logger, outage: DatabaseOutage): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = knownError(error, outage);
    if (known) {
      if (known.status === 503) res.setHeader('Retry-After', '5');
      return send(res, known);
    }
    logger.error({ err: error, reqId: req.id }, 'unhandled error');
    send(res, new HttpError(500, 'Something went wrong on our side.'));
  };
}

/** Writes must be JSON (415 otherwise), which also shuts out form-encoded CSRF. Used on each write route, so
 * a method a path does not serve is a 405 whatever its body. */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (!req.is('application/json')) throw new HttpError(415, 'Send a JSON body with Content-Type: application/json.');
  next();
};
