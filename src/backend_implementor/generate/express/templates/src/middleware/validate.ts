import type { z } from 'zod';
import { badRequest } from '../errors.js';

/** Deeper JSON than any schema here accepts; checked before zod (whose checks recurse) ever sees it. */
export const MAX_DEPTH = 32;

/** Parses untrusted input with a zod schema; failures become a 400 with one entry per bad field. */
/** Where the input came from, named in each error's path: a REST body or query, a GraphQL input or arguments. */
export type Source = 'body' | 'query' | 'input' | 'args';

export function validate<T extends z.ZodType>(schema: T, input: unknown, where: Source): z.output<T> {
  const bad = findUnstorable(input, where);
  if (bad) throw badRequest(`Invalid request ${where}.`, [bad]);
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

/**
 * The first value PostgreSQL could not store or that no schema accepts: nesting deeper than MAX_DEPTH,
 * U+0000 (text and jsonb cannot hold it) and lone UTF-16 surrogates (not Unicode; stored they become U+FFFD).
 * An explicit stack, not recursion, so a 100,000-deep body is a 400 and never a stack overflow.
 */
function findUnstorable(input: unknown, where: string): { path: string; message: string } | undefined {
  const stack: { value: unknown; path: string[] }[] = [{ value: input, path: [where] }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { value, path } = next;
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return { path: path.join('.'), message: problem };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length > MAX_DEPTH) return { path: path.join('.'), message: `Nested more than ${MAX_DEPTH} levels deep.` };
    for (const [key, item] of Object.entries(value)) {
      const problem = textProblem(key);
      if (problem) return { path: [...path, key].join('.'), message: `Key: ${problem}` };
      stack.push({ value: item, path: [...path, key] });
    }
  }
  return undefined;
}

// With the u flag a string is read by code points: a surrogate pair is one (not Cs), a lone half is Cs.
const LONE_SURROGATE = /\p{Cs}/u;

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'NUL characters are not accepted.';
  if (LONE_SURROGATE.test(text)) return 'Lone UTF-16 surrogates are not accepted (not valid Unicode).';
  return undefined;
}
