import type { z } from 'zod';
import { badRequest } from '../errors.js';

/** Parses untrusted input with a zod schema; failures become a 400 with one entry per bad field. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, where: 'body' | 'query'): z.output<T> {
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
