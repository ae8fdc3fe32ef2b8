/**
 * Errors as clients see them. Expected failures (CasError) become GraphQL errors with
 * `extensions.code`; anything else is logged with the request id and replaced by a masked
 * "Unexpected error." whose extensions carry only the code INTERNAL_SERVER_ERROR and the request id,
 * so no stack trace or SQL ever reaches a client.
 */
import type { ExecutionResult, GraphQLError } from 'graphql';
import {
  createGraphQLError,
  handleStreamOrSingleExecutionResult,
  maskError as yogaMaskError,
  type Plugin,
} from 'graphql-yoga';
import { ErrorCode, isCasError, type CasError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from './context.js';

export const INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR';

/*
 * Errors are created with yoga's createGraphQLError and recognised by name, not `instanceof`:
 * a process may hold two copies of graphql (its CommonJS and ES builds; vitest loads both), and
 * yoga must see our errors as GraphQL errors whichever copy this module got.
 */
export const isGraphQLError = (error: unknown): error is GraphQLError =>
  error instanceof Error && error.name === 'GraphQLError';
export const UNEXPECTED_ERROR_MESSAGE = 'Unexpected error.';

/** Details of a CasError that are safe to show (zod issue paths and messages, a workflow's step id). */
function publicDetails(error: CasError): Record<string, unknown> {
  const issues = error.details?.issues;
  const stepId = error.details?.stepId;
  return {
    ...(Array.isArray(issues) ? { issues } : {}),
    ...(typeof stepId === 'string' ? { stepId } : {}),
  };
}

/** The coded GraphQL error for a CasError raised under `error` (a resolver's located error). */
export function fromCasError(cause: CasError, located?: GraphQLError): GraphQLError {
  return createGraphQLError(cause.message, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    extensions: { code: cause.code, ...publicDetails(cause) },
  });
}

const isOurOwn = (error: GraphQLError) =>
  error.originalError === undefined || error.originalError === null || isGraphQLError(error.originalError);

/**
 * GraphQL's own execution errors carry no code. Without a path they concern the request (a variable
 * of the wrong type, an unknown operation name): BAD_USER_INPUT. With a path they come from the
 * schema's own checks (a null in a non-null field): a bug on our side, INTERNAL_SERVER_ERROR.
 */
function withCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  return createGraphQLError(error.message, {
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
    if (isCasError(cause)) {
      // The service could not reach its database: the client retries, the operator should know.
      if (cause.code === ErrorCode.UNAVAILABLE) {
        (context?.logger ?? logger).warn(
          { err: cause, details: cause.details, path: error.path?.join('.'), requestId: context?.requestId },
          'database unavailable while resolving an operation',
        );
      }
      return fromCasError(cause, error);
    }
    const requestId = context?.requestId;
    (context?.logger ?? logger).error(
      { err: cause, path: error.path?.join('.'), requestId },
      'unexpected error while resolving an operation',
    );
    return createGraphQLError(UNEXPECTED_ERROR_MESSAGE, {
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
  const cause = isGraphQLError(error) ? error.originalError : error;
  if (isCasError(cause)) return fromCasError(cause, isGraphQLError(error) ? error : undefined);
  return yogaMaskError(error, message, isDev);
}
