/**
 * Limits against abusive requests, enforced by maintained plugins: yoga's request body limit and
 * graphql-armor's validation rules. Each rejection is a 4xx (413 for the body) or a GraphQL error
 * with a code, never a 500.
 */
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export interface ApiLimits {
  /** Largest HTTP request body and WebSocket message, in bytes. Larger bodies get 413. */
  maxBodyBytes: number;
  /** Deepest selection (fields inside fields); introspection is exempt. */
  maxDepth: number;
  /** Most lexical tokens in one document (checked while parsing, so huge documents stop early). */
  maxTokens: number;
  /** Most aliases in one operation. */
  maxAliases: number;
  /** Most directives in one operation. */
  maxDirectives: number;
  /**
   * Highest graphql-armor cost: objects 2, scalars 1, each level 1.5 times its children, and a
   * selection with a literal `first: n` n times. A 500-task page with a dozen fields costs about
   * 35,000; a 500-task page asking 100 recent tasks of each task's agent, millions.
   */
  maxCost: number;
}

/** Generous for the contract's queries (the deepest useful one is 6 levels), tight for abuse. */
export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 1_000_000,
  maxDepth: 10,
  maxTokens: 2_000,
  maxAliases: 15,
  maxDirectives: 20,
  maxCost: 50_000,
};

/**
 * graphql-armor's validation rules throw by default, which yoga answers as a 200 without a code.
 * Reported instead, a rejection is an ordinary validation error: GRAPHQL_VALIDATION_FAILED, 400.
 * (maxTokens runs in the parser, where a throw is right: GRAPHQL_PARSE_FAILED.)
 */
type ArmorConfig = NonNullable<ConstructorParameters<typeof EnvelopArmor>[0]>;

const asValidationError: Pick<NonNullable<ArmorConfig['maxDepth']>, 'propagateOnRejection' | 'onReject'> = {
  propagateOnRejection: false,
  onReject: [
    (context, error) =>
      context?.reportError(
        createGraphQLError(error.message.replace(/^Syntax Error: /, ''), {
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        }),
      ),
  ],
};

export function armorPlugins(limits: ApiLimits): Plugin[] {
  const armor = new EnvelopArmor({
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, ...asValidationError },
    maxTokens: { n: limits.maxTokens },
    maxAliases: { n: limits.maxAliases, ...asValidationError },
    maxDirectives: { n: limits.maxDirectives, ...asValidationError },
    costLimit: { maxCost: limits.maxCost, ignoreIntrospection: true, ...asValidationError },
    // "Did you mean ...?" hints reveal the schema to someone probing it; GraphiQL has the docs.
    blockFieldSuggestion: { enabled: true },
  });
  return armor.protect().plugins as Plugin[];
}
