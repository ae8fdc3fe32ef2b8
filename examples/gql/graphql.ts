/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
/** IDLE: ready, BUSY: running tasks, STOPPED: unregistered (history kept), ERROR: see errorMessage. */
export type AgentStatus =
  | 'BUSY'
  | 'ERROR'
  | 'IDLE'
  | 'STOPPED';

export type ExecuteTaskInput = {
  /** One of the agent's `actions`, e.g. "ping". */
  action: string;
  agentId: string;
  /** A key used before returns that task instead of queueing another. */
  idempotencyKey?: string | null | undefined;
  /** Handed to the action (at most 1 MB). */
  input?: unknown;
  /** 1-100, default 1. */
  maxAttempts?: number | null | undefined;
  /** -1000..1000, higher first; default 0. */
  priority?: number | null | undefined;
  /** Base of the exponential backoff between attempts. */
  retryDelayMs?: number | null | undefined;
  /** Do not start before this time. */
  runAt?: string | null | undefined;
  /** Per-attempt time limit, and the longest `wait` holds the request. */
  timeoutMs?: number | null | undefined;
  /** Answer once the task is final (bounded by timeoutMs) instead of when it is queued. */
  wait?: boolean | null | undefined;
};

/** QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED (a failed attempt with attempts left goes back to QUEUED). */
export type TaskStatus =
  | 'CANCELLED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED';

export type ListAgentsQueryVariables = Exact<{ [key: string]: never; }>;


export type ListAgentsQuery = { agents: Array<{ id: string, name: string, role: string, status: AgentStatus, metrics: { totalRuns: number, successRate: number } }> };

export type RunTaskMutationVariables = Exact<{
  input: ExecuteTaskInput;
}>;


export type RunTaskMutation = { executeTask: { id: string, status: TaskStatus, result: unknown, durationMs: number | null, error: { message: string, code: string | null } | null, agent: { id: string } } };


export const ListAgentsDocument = {"__meta__":{"hash":"sha256:f4ec7fb95bebf58f238bda867abefdb364509662535301014f10279c8c9e230f"},"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"ListAgents"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"agents"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"role"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"metrics"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"totalRuns"}},{"kind":"Field","name":{"kind":"Name","value":"successRate"}}]}}]}}]}}]} as unknown as DocumentNode<ListAgentsQuery, ListAgentsQueryVariables>;
export const RunTaskDocument = {"__meta__":{"hash":"sha256:25f896bdacd54055f6543f288c93a5a71d0fbc215c530d8cf49ea3c3b71b0626"},"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"RunTask"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ExecuteTaskInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"executeTask"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"result"}},{"kind":"Field","name":{"kind":"Name","value":"error"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"code"}}]}},{"kind":"Field","name":{"kind":"Name","value":"durationMs"}},{"kind":"Field","name":{"kind":"Name","value":"agent"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}}]}}]}}]}}]} as unknown as DocumentNode<RunTaskMutation, RunTaskMutationVariables>;