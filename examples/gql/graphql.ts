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
  /** Do not start before this time (1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z). */
  runAt?: string | null | undefined;
  /** Per-attempt time limit (1-86400000 ms). */
  timeoutMs?: number | null | undefined;
  /** Answer once the task is final instead of when it is queued; after the server's wait limit (CAS_WAIT_TIMEOUT_MS, default 60 s) the answer is the task as it is then, still QUEUED or RUNNING. */
  wait?: boolean | null | undefined;
};

/** QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED (a failed attempt with attempts left goes back to QUEUED). RUNNING → WAITING when the handler waits for children, a signal or a timer (no worker slot held); WAITING → RUNNING again once that has happened. */
export type TaskStatus =
  | 'CANCELLED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'WAITING';

export type ListAgentsQueryVariables = Exact<{ [key: string]: never; }>;


export type ListAgentsQuery = { agents: Array<{ id: string, name: string, role: string, status: AgentStatus, metrics: { totalRuns: number, successRate: number } }> };

export type RunTaskMutationVariables = Exact<{
  input: ExecuteTaskInput;
}>;


export type RunTaskMutation = { executeTask: { id: string, status: TaskStatus, result: unknown, durationMs: number | null, createdBy: string | null, error: { message: string, code: string | null } | null, agent: { id: string } } };


export const ListAgentsDocument = {"__meta__":{"hash":"sha256:f4ec7fb95bebf58f238bda867abefdb364509662535301014f10279c8c9e230f"},"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"ListAgents"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"agents"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"role"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"metrics"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"totalRuns"}},{"kind":"Field","name":{"kind":"Name","value":"successRate"}}]}}]}}]}}]} as unknown as DocumentNode<ListAgentsQuery, ListAgentsQueryVariables>;
export const RunTaskDocument = {"__meta__":{"hash":"sha256:a33b2214e7258bb0df81e01a8a4ee3ff5fd9cd2249abe4e1d11b50b9f1a4f64c"},"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"RunTask"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ExecuteTaskInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"executeTask"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"result"}},{"kind":"Field","name":{"kind":"Name","value":"error"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"code"}}]}},{"kind":"Field","name":{"kind":"Name","value":"durationMs"}},{"kind":"Field","name":{"kind":"Name","value":"createdBy"}},{"kind":"Field","name":{"kind":"Name","value":"agent"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}}]}}]}}]}}]} as unknown as DocumentNode<RunTaskMutation, RunTaskMutationVariables>;