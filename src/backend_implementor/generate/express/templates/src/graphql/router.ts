{% if graphql %}
import { readFileSync } from 'node:fs';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { type RequestHandler, Router } from 'express';
import {
  buildSchema,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  isObjectType,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  type ValidationContext,
  type ValidationRule,
  validate,
} from 'graphql';
import { createHandler } from 'graphql-http/lib/use/express';
{% if auth %}
import type { AuthService } from '../auth/service.js';
{% endif %}
import type { DatabaseOutage } from '../db/outage.js';
import { HttpError } from '../errors.js';
import { knownError, onlyMethods, requireJson } from '../middleware/errors.js';
import type { Logger } from '../middleware/logger.js';
import type { Services } from '../services/index.js';
import { Loaders } from './loaders.js';
import { type Context, type Resolvers, resolvers } from './resolvers.js';

/** The limits of the spec's `graphql` block: a query past one is refused before anything runs. */
export const LIMITS = {
  maxDepth: {{ graphql.max_depth }},
  maxAliases: {{ graphql.max_aliases }},
  maxDirectives: {{ graphql.max_directives }},
  maxCost: {{ graphql.max_cost }},
  /** Tokens one document may have: parsing stops there, so a huge query costs no more than a small one. */
  maxTokens: 5_000,
} as const;

/** schema.graphql, next to package.json (from src/graphql under tsx and vitest, dist/graphql under node). */
export const SDL = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');

/** The schema of schema.graphql with the resolvers attached; a resolver for a field the file lacks is an error. */
export function executableSchema(map: Resolvers): GraphQLSchema {
  const schema = buildSchema(SDL);
  for (const [typeName, fields] of Object.entries(map)) {
    const type = schema.getType(typeName);
    if (!isObjectType(type)) throw new Error(`schema.graphql has no object type ${typeName}`);
    const defined = type.getFields();
    for (const [name, resolve] of Object.entries(fields)) {
      const field = defined[name];
      if (!field) throw new Error(`schema.graphql has no field ${typeName}.${name}`);
      field.resolve = resolve as NonNullable<typeof field.resolve>;
    }
  }
  return schema;
}

/** Query texts whose outcome is kept; past this many, further ones are parsed and validated each time. */
const MAX_DOCUMENTS = 1_000;

/**
 * Parsed and validated documents by query text. Validation depends on the document and the schema alone (not
 * on variables or the caller), so a query a client sends again is parsed and checked once: most of what
 * GraphQL costs beyond REST. Bounded, so a client sending ever new queries cannot grow it.
 */
class Documents {
  private readonly known = new Map<string, DocumentNode | readonly GraphQLError[]>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly rules: readonly ValidationRule[],
  ) {}

  get(query: string): DocumentNode | readonly GraphQLError[] {
    const kept = this.known.get(query);
    if (kept) return kept;
    let outcome: DocumentNode | readonly GraphQLError[];
    try {
      const document = parse(query, { maxTokens: LIMITS.maxTokens });
      const errors = validate(this.schema, document, this.rules);
      outcome = errors.length > 0 ? errors : document;
    } catch (error) {
      outcome = [error instanceof GraphQLError ? error : new GraphQLError(String(error))]; // a syntax error
    }
    if (this.known.size < MAX_DOCUMENTS) this.known.set(query, outcome);
    return outcome;
  }
}

/** The HTTP statuses of service errors as GraphQL error codes, in `extensions.code`. */
const CODES: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  503: 'SERVICE_UNAVAILABLE',
};

export interface GraphqlOptions {
{% if auth %}
  auth: AuthService;
{% endif %}
  logger: Logger;
  outage: DatabaseOutage;
  /** Production turns introspection off and names no fields in "did you mean" hints. */
  production: boolean;
}

/**
 * POST /graphql (and GET for queries) over graphql-http, the GraphQL over HTTP reference implementation. Each
 * request gets its own loaders, so references are batched per request and nothing is cached across users.
 */
export function graphqlRouter(services: Services, options: GraphqlOptions): Router {
  const schema = executableSchema(resolvers(services{{ ', options.auth' if auth else '' }}));
  // A refused operation is a validation error (400 with the limit named), not an exception out of validation.
  const refuse = {
    propagateOnRejection: false,
    onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
  };
  const rules: ValidationRule[] = [
    maxDepthRule({ n: LIMITS.maxDepth, ...refuse }),
    maxAliasesRule({ n: LIMITS.maxAliases, ...refuse }),
    maxDirectivesRule({ n: LIMITS.maxDirectives, ...refuse }),
    costLimitRule({ maxCost: LIMITS.maxCost, ...refuse }),
  ];
  if (options.production) rules.push(NoSchemaIntrospectionCustomRule);

  const documents = new Documents(schema, [...specifiedRules, ...rules]);

  const handler = createHandler<Context>({
    schema,
    // Parsing and validating through the cache; graphql-http goes on to execute what it answers.
    onSubscribe: (_req, params) => {
      const found = documents.get(params.query);
      if (Array.isArray(found)) return found;
      return { schema, document: found as DocumentNode, operationName: params.operationName, variableValues: params.variables };
    },
    context: (req) => ({ {{ 'user: req.raw.user, ' if auth else '' }}loaders: new Loaders() }),
    formatError: (error) => formatError(error, options),
  });

  const router = Router();
  router.get('/', handler);
  // JSON only, like every write (which also shuts out form-encoded CSRF); express.json's size limit applies.
  router.post('/', requireJson, oneOperation, handler);
  router.all('/', onlyMethods('GET, POST'));
  return router;
}

/** A batch (a JSON array of operations) would multiply one request's work past every limit: one at a time. */
const oneOperation: RequestHandler = (req, _res, next) => {
  if (Array.isArray(req.body)) throw new HttpError(400, 'Batched operations are not accepted; send one operation per request.');
  next();
};

/**
 * What a client sees of an error: a service error keeps its message with its code (and per-field `errors` for
 * BAD_USER_INPUT); anything else is logged and answered as INTERNAL_SERVER_ERROR, never with a stack or SQL.
 */
function formatError(error: Readonly<GraphQLError | Error>, options: GraphqlOptions): GraphQLError {
  // graphql-http's own complaints about the request (no query, bad variables) are plain errors.
  if (!(error instanceof GraphQLError)) return new GraphQLError(error.message, { extensions: { code: 'BAD_REQUEST' } });
  const original = error.originalError;
  if (!original || original instanceof GraphQLError) {
    // The request's own fault: a syntax error, an unknown field, a limit. In production, hints at field names
    // the client did not ask for are cut: they would map the schema that introspection hides.
    const message = options.production ? error.message.replace(/ Did you mean .*$/, '') : error.message;
    // A variable of the wrong type or shape (an unknown input field) is bad input, as in REST's 400.
    const code = message.startsWith('Variable "$') ? 'BAD_USER_INPUT' : 'GRAPHQL_VALIDATION_FAILED';
    return new GraphQLError(message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { code, ...error.extensions },
    });
  }
  const known = knownError(original, options.outage);
  if (!known) return internal(original, error, options);
  return new GraphQLError(known.detail, {
    nodes: error.nodes,
    path: error.path,
    extensions: {
      code: CODES[known.status] ?? 'INTERNAL_SERVER_ERROR',
      ...(known.errors ? { errors: known.errors.map(inGraphql) } : {}),
    },
  });
}

function internal(cause: unknown, error: GraphQLError, options: GraphqlOptions): GraphQLError {
  options.logger.error({ err: cause, path: error.path }, 'unhandled error in a GraphQL resolver');
  return new GraphQLError('Something went wrong on our side.', {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}

/** A service names a field of a REST body as body.<field>; in GraphQL it came in the mutation's input. */
const inGraphql = (e: { path: string; message: string }) => ({ ...e, path: e.path.replace(/^body\./, 'input.') });
{% endif %}
