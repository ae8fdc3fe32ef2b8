/**
 * Limits against abusive requests: the request body limit, graphql-armor's validation rules and
 * our repeated-field check. Each rejection is a 4xx (413 for the body) or a GraphQL error with a
 * code, never a 500.
 */
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import {
  Kind,
  type DocumentNode,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { createGraphQLError, handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';

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
  /**
   * Most selections of one response key in one selection set, fragments included (`{ agents { id }
   * agents { id } ... }`). graphql-armor's cost limit and alias limit do not see such repeats, yet
   * graphql-js merges them pairwise (quadratic); this is checked before validation.
   */
  maxFieldRepetition: number;
}

/** Generous for the contract's queries (the deepest useful one is 6 levels), tight for abuse. */
export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 1_000_000,
  maxDepth: 10,
  maxTokens: 2_000,
  maxAliases: 15,
  maxDirectives: 20,
  maxCost: 50_000,
  maxFieldRepetition: 10,
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

const validationError = (message: string) =>
  createGraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });

/** The largest count of one response key within one selection set of `document`. */
export function maxFieldRepetition(document: DocumentNode): { key: string; count: number } {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  let worst = { key: '', count: 0 };
  const countKeys = (set: SelectionSetNode, counts: Map<string, number>, seen: Set<string>) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        const count = (counts.get(key) ?? 0) + 1;
        counts.set(key, count);
        if (count > worst.count) worst = { key, count };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        countKeys(selection.selectionSet, counts, seen);
      } else if (!seen.has(selection.name.value)) {
        // A fragment spread: its fields merge into this selection set (each fragment once: cycles
        // are a validation error reported later).
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) countKeys(fragment.selectionSet, counts, seen);
      }
    }
  };
  const visitSets = (set: SelectionSetNode) => {
    countKeys(set, new Map(), new Set());
    for (const selection of set.selections) {
      if (selection.kind !== Kind.FRAGMENT_SPREAD && selection.selectionSet)
        visitSets(selection.selectionSet);
    }
  };
  for (const definition of document.definitions) {
    if ('selectionSet' in definition && definition.selectionSet) visitSets(definition.selectionSet);
  }
  return worst;
}

/**
 * Refuses documents that repeat one field more than `max` times in a selection set, before validation.
 * A document that passed is remembered: the parse cache hands the same document object to every
 * request with the same text, and this plugin runs before yoga's validation cache.
 */
export function useFieldRepetitionLimit(max: number): Plugin {
  const passed = new WeakSet<DocumentNode>();
  return {
    onValidate({ params, setResult }) {
      if (passed.has(params.documentAST)) return;
      const { key, count } = maxFieldRepetition(params.documentAST);
      if (count <= max) passed.add(params.documentAST);
      else {
        setResult([
          validationError(`Field repetition limit of ${max} exceeded: "${key}" is selected ${count} times`),
        ]);
      }
    },
  };
}

export const RESPONSE_TOO_LARGE = 'RESPONSE_TOO_LARGE';

/** The most UTF-8 bytes one UTF-16 code unit of a string takes in JSON (a control character: \u001f). */
const MAX_BYTES_PER_CODE_UNIT = 6;
/** The longest JSON text of a number (-1.2345678901234567e-308). */
const MAX_NUMBER_BYTES = 24;

/**
 * True when `value`'s JSON text surely takes at most `budget` UTF-8 bytes, judged from string
 * lengths without building the text (no allocation); false when it may take more, or holds a value
 * whose JSON is not plain data (an object with toJSON, such as a GraphQLError): then measure it.
 */
export function jsonBytesAtMost(value: unknown, budget: number): boolean {
  const spend = (node: unknown): boolean => {
    switch (typeof node) {
      case 'string':
        budget -= 2 + MAX_BYTES_PER_CODE_UNIT * node.length;
        return budget >= 0;
      case 'number':
        budget -= MAX_NUMBER_BYTES;
        return budget >= 0;
      case 'boolean':
      case 'undefined':
        budget -= 5;
        return budget >= 0;
      case 'object': {
        if (node === null) return (budget -= 4) >= 0;
        if (Array.isArray(node)) {
          budget -= 2 + node.length;
          return budget >= 0 && node.every(spend);
        }
        if (typeof (node as { toJSON?: unknown }).toJSON === 'function') return false;
        budget -= 2;
        for (const key in node) {
          budget -= 4 + MAX_BYTES_PER_CODE_UNIT * key.length;
          if (budget < 0 || !spend((node as Record<string, unknown>)[key])) return false;
        }
        return true;
      }
      default:
        return false;
    }
  };
  return spend(value);
}

/**
 * A hard cap on each serialized result (a single response, or each event of a subscription, over
 * HTTP, SSE and WebSocket): a larger one is replaced by a RESPONSE_TOO_LARGE error and no data.
 * The cost limit refuses most such queries before they run; JSON fields (task input and result,
 * state) can still be large, which only the serialized size shows. 0 means no cap.
 */
export function useResponseSizeLimit(maxBytes: number): Plugin {
  if (maxBytes <= 0) return {};
  const capped = ({
    result,
    setResult,
  }: {
    result: ExecutionResult;
    setResult: (r: ExecutionResult) => void;
  }) => {
    // Most results are far below the cap: a bound found without building the JSON text clears them.
    if (jsonBytesAtMost(result, maxBytes)) return;
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes <= maxBytes) return;
    setResult({
      data: null,
      errors: [
        createGraphQLError(
          `The response would be ${bytes} bytes, over the limit of ${maxBytes}: ask for fewer items or fields`,
          { extensions: { code: RESPONSE_TOO_LARGE, maxBytes } },
        ),
      ],
    });
  };
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, capped) }),
    onSubscribe: () => ({
      onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, capped),
    }),
  };
}

/** Only a single non-negative integer is a Content-Length (comma-joined values are smuggling). */
const CONTENT_LENGTH = /^\d+$/;

const bodyTooLarge = () =>
  createGraphQLError('Request body too large', {
    extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' },
  });

/**
 * The request body limit, answered as yoga's own (413 REQUEST_ENTITY_TOO_LARGE; 400 for a malformed
 * Content-Length). yoga's `maxRequestBodySize` pipes every body through a TransformStream, whose
 * stream pipeline makes an AbortController and a DOMException per request: about a fifth of the
 * server's CPU on a small query (`npm run bench -- --only=http`). A body with a Content-Length is
 * never longer than it (node's HTTP parser reads exactly that many bytes, and refuses a request that
 * also says chunked), so only bodies without one are counted as they arrive. Registered after the
 * request parsers, as the last plugin, so it wraps whichever parser was chosen.
 */
export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      if (contentLength !== null) {
        if (!CONTENT_LENGTH.test(contentLength)) {
          throw createGraphQLError('Content-Length header is invalid.', {
            extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
          });
        }
        if (Number(contentLength) > limit) throw bodyTooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      setRequestParser((chunked) => requestParser(withCountedBody(chunked, limit, fetchAPI)));
    },
  };
}

/** `request` whose body fails with 413 once more than `limit` bytes have streamed in. */
function withCountedBody(
  request: Request,
  limit: number,
  fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream },
): Request {
  // A native ReadableStream pipes only into a native TransformStream (graphql-yoga#4583).
  const Transform =
    request.body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let bytes = 0;
  const counted = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        if (bytes > limit) controller.error(bodyTooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: counted,
    duplex: 'half',
  } as RequestInit);
}
