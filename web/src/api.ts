/**
 * The dashboard's only way to the API: one graphql-ws connection (queries, mutations and
 * subscriptions) carrying the typed documents of web/src/gql (codegen's client preset). It
 * reconnects forever and says so (ConnectionState); a subscription resumes after its last cursor.
 */
import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from './gql/graphql';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting';

const TOKEN_KEY = 'cas-dashboard-token';
/** Backoff between reconnection attempts: 0.5 s, doubling up to this. */
const MAX_RETRY_WAIT_MS = 5_000;

export const storedToken = () => localStorage.getItem(TOKEN_KEY) ?? '';

type Listener = (state: ConnectionState) => void;
const listeners = new Set<Listener>();
let state: ConnectionState = 'connecting';
let everConnected = false;

function setState(next: ConnectionState) {
  state = next;
  for (const listener of listeners) listener(next);
}

export function onConnectionState(listener: Listener): () => void {
  listeners.add(listener);
  listener(state);
  return () => listeners.delete(listener);
}

function connect(): Client {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  return createClient({
    url,
    lazy: false,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: async (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(MAX_RETRY_WAIT_MS, 500 * 2 ** retries))),
    connectionParams: () => {
      const token = storedToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    on: {
      connecting: () => setState(everConnected ? 'reconnecting' : 'connecting'),
      connected: () => {
        everConnected = true;
        setState('connected');
      },
      closed: () => {
        if (everConnected) setState('reconnecting');
      },
    },
  });
}

let client = connect();

/** Signs in with a token (an API key or a Supabase access token), or out with ''. */
export function setToken(token: string) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  void client.dispose();
  everConnected = false;
  client = connect();
}

export interface GraphQLFailure {
  message: string;
  code?: string;
}

export class ApiError extends Error {
  constructor(readonly failures: GraphQLFailure[]) {
    super(failures.map((failure) => failure.message).join('; '));
  }
  get code() {
    return this.failures[0]?.code;
  }
}

const failuresOf = (errors: unknown): GraphQLFailure[] =>
  (Array.isArray(errors) ? errors : [errors]).map((error) => ({
    message: (error as { message?: string }).message ?? String(error),
    code: (error as { extensions?: { code?: string } }).extensions?.code,
  }));

/** A query or mutation: its data, or an ApiError with the GraphQL errors. */
export function request<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  ...[variables]: Variables extends Record<string, never> ? [] : [Variables]
): Promise<Result> {
  return new Promise((resolve, reject) => {
    let result: Result | undefined;
    client.subscribe<Result>(
      { query: document.toString(), variables: (variables ?? {}) as Record<string, unknown> },
      {
        next: (message) => {
          if (message.errors?.length) reject(new ApiError(failuresOf(message.errors)));
          else result = message.data as Result;
        },
        error: (error) => reject(new ApiError(failuresOf(error))),
        complete: () => (result === undefined ? undefined : resolve(result)),
      },
    );
  });
}

/**
 * A subscription. `resumeAfter(data)` names the cursor a result carries: after a dropped
 * connection the subscription starts again after the last one received (`after` variable), so
 * nothing is missed or repeated. Returns the function that stops it.
 */
export function subscribe<Result, Variables extends Record<string, unknown>>(
  document: TypedDocumentString<Result, Variables>,
  variables: Variables,
  handlers: {
    next: (data: Result) => void;
    error?: (error: ApiError) => void;
    complete?: () => void;
    resumeAfter?: (data: Result) => string | null | undefined;
  },
): () => void {
  // graphql-ws sends this same payload again when it reconnects: keeping `after` current in it
  // is what makes the resumption exact.
  const payload = { query: document.toString(), variables: { ...variables } as Record<string, unknown> };
  return client.subscribe<Result>(payload, {
    next: (message) => {
      if (message.errors?.length) return handlers.error?.(new ApiError(failuresOf(message.errors)));
      const data = message.data as Result;
      const cursor = handlers.resumeAfter?.(data);
      if (cursor) payload.variables.after = cursor;
      handlers.next(data);
    },
    error: (error) => handlers.error?.(new ApiError(failuresOf(error))),
    complete: () => handlers.complete?.(),
  });
}
