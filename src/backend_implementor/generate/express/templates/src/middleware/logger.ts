import type { RequestHandler } from 'express';
import { destination, pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  // Written to stdout asynchronously: lines that come while a write is in flight go out together, instead of one
  // blocking write per request. pino flushes what is left when the process exits.
  return pino({ level, redact: ['req.headers.authorization', 'req.headers.cookie'] }, destination({ sync: false }));
}

/** One line per request once the response is sent; bodies are never logged. */
export function httpLogger(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    // Read now: inside a mounted router req.path is relative to the mount point (/books/1 reads as /1).
    const path = req.path;
    res.on('finish', () => {
      logger.info(
        {
          reqId: req.id,
          method: req.method,
          path,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      );
    });
    next();
  };
}
