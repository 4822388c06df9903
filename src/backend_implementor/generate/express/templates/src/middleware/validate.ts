import type { z } from 'zod';
import { badRequest } from '../errors.js';

/** Parses untrusted input with a zod schema; failures become a 400 with one entry per bad field. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, where: 'body' | 'query'): z.output<T> {
  const nul = findNul(input, [where]);
  if (nul) throw badRequest(`Invalid request ${where}.`, [{ path: nul.join('.'), message: 'NUL characters are not accepted.' }]);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw badRequest(
    `Invalid request ${where}.`,
    result.error.issues.flatMap((issue) => {
      const path = [where, ...issue.path.map(String)];
      // Name each unknown key, so `{"role": "admin"}` is reported at body.role.
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'Unknown field.' }));
      }
      return [{ path: path.join('.'), message: issue.message }];
    }),
  );
}

/** PostgreSQL cannot store U+0000 in text or jsonb, so it is refused here (400) instead of failing there (500). */
function findNul(value: unknown, path: string[]): string[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = key.includes('\u0000') ? [...path, key] : findNul(item, [...path, key]);
    if (found) return found;
  }
  return undefined;
}
