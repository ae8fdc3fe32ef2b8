/**
 * Errors as clients see them. Expected failures (CasError) become GraphQL errors with
 * `extensions.code`; anything else is logged with the request id and replaced by a masked
 * "Unexpected error." whose extensions carry only the code INTERNAL_SERVER_ERROR and the request id,
 * so no stack trace or SQL ever reaches a client.
 */
import type { Plugin } from 'graphql-yoga';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { handleStreamOrSingleExecutionResult, maskError as yogaMaskError } from 'graphql-yoga';
import { ErrorCode, isCasError, type CasError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from './context.js';

export const INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR';
export const UNEXPECTED_ERROR_MESSAGE = 'Unexpected error.';

/** Details of a CasError that are safe to show (zod issue paths and messages). */
function publicDetails(error: CasError): Record<string, unknown> {
  const issues = error.details?.issues;
  return Array.isArray(issues) ? { issues } : {};
}

/** The coded GraphQL error for a CasError raised under `error` (a resolver's located error). */
export function fromCasError(cause: CasError, located?: GraphQLError): GraphQLError {
  return new GraphQLError(cause.message, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    extensions: { code: cause.code, ...publicDetails(cause) },
  });
}

/** A GraphQL error with a code, for failures the API layer itself detects. */
export function codedError(code: ErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

const isOurOwn = (error: GraphQLError) =>
  error.originalError === undefined ||
  error.originalError === null ||
  error.originalError instanceof GraphQLError;

/**
 * GraphQL's own execution errors carry no code. Without a path they concern the request (a variable
 * of the wrong type, an unknown operation name): BAD_USER_INPUT. With a path they come from the
 * schema's own checks (a null in a non-null field): a bug on our side, INTERNAL_SERVER_ERROR.
 */
function withCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError ?? undefined,
    extensions: { ...error.extensions, code: error.path ? INTERNAL_SERVER_ERROR : ErrorCode.BAD_USER_INPUT },
  });
}

/**
 * Maps each error of a result: CasError → coded error; GraphQL's own (syntax, validation, coded
 * errors thrown on purpose) → unchanged; anything else → logged and masked.
 */
function mapErrors(errors: readonly GraphQLError[], context: GraphQLContext | undefined, logger: Logger) {
  return errors.map((error) => {
    if (isOurOwn(error)) return withCode(error);
    const cause = error.originalError;
    if (isCasError(cause)) return fromCasError(cause, error);
    const requestId = context?.requestId;
    (context?.logger ?? logger).error(
      { err: cause, path: error.path?.join('.'), requestId },
      'unexpected error while resolving an operation',
    );
    return new GraphQLError(UNEXPECTED_ERROR_MESSAGE, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { code: INTERNAL_SERVER_ERROR, ...(requestId ? { requestId } : {}) },
    });
  });
}

/**
 * Envelop plugin: applies `mapErrors` to every execution and subscription result, over HTTP and
 * over WebSocket alike (graphql-ws runs through the same envelop).
 */
export function useErrorMapping(logger: Logger): Plugin<GraphQLContext> {
  const onResult =
    (context: GraphQLContext | undefined) =>
    ({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) => {
      if (result.errors?.length) {
        setResult({ ...result, errors: mapErrors(result.errors as GraphQLError[], context, logger) });
      }
    };
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onResult(args.contextValue)),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: (payload) =>
        handleStreamOrSingleExecutionResult(payload, onResult(args.contextValue)),
    }),
  };
}

/**
 * yoga's `maskedErrors.maskError`, the net under `useErrorMapping` for errors raised outside
 * execution (building the context, starting a subscription): CasError keeps its code, the rest is
 * masked by yoga (which logs it).
 */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  const cause = error instanceof GraphQLError ? error.originalError : error;
  if (isCasError(cause)) return fromCasError(cause, error instanceof GraphQLError ? error : undefined);
  return yogaMaskError(error, message, isDev);
}

export { ErrorCode };
