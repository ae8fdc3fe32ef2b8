/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
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

/** Severity of a log entry. */
export type LogLevel =
  | 'DEBUG'
  | 'ERROR'
  | 'INFO'
  | 'WARN';

/** QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED (a failed attempt with attempts left goes back to QUEUED). RUNNING → WAITING when the handler waits for children, a signal or a timer (no worker slot held); WAITING → RUNNING again once that has happened. */
export type TaskStatus =
  | 'CANCELLED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'WAITING';

/** RUNNING → SUCCEEDED (every step succeeded) | FAILED (a step failed) | CANCELLED (cancelWorkflowRun). */
export type WorkflowRunStatus =
  | 'CANCELLED'
  | 'FAILED'
  | 'RUNNING'
  | 'SUCCEEDED';

/** PENDING (dependencies not done) → RUNNING (tasks queued) → SUCCEEDED | FAILED; SKIPPED when a dependency failed under CONTINUE, CANCELLED when the run failed fast or was cancelled. */
export type WorkflowStepStatus =
  | 'CANCELLED'
  | 'FAILED'
  | 'PENDING'
  | 'RUNNING'
  | 'SKIPPED'
  | 'SUCCEEDED';

export type DashboardAgentsQueryVariables = Exact<{ [key: string]: never; }>;


export type DashboardAgentsQuery = { eventHead: string, agents: Array<{ id: string, name: string, role: string, status: AgentStatus, runningTasks: number, errorMessage: string | null, lastActivityAt: string | null, metrics: { totalRuns: number, successRate: number } }> };

export type DashboardDurationsQueryVariables = Exact<{
  agentId: string;
}>;


export type DashboardDurationsQuery = { metricSeries: Array<{ start: string, p50: number, p95: number }> };

export type DashboardAgentChangedSubscriptionVariables = Exact<{
  after?: string | null | undefined;
}>;


export type DashboardAgentChangedSubscription = { agentStatusChanged: { id: string, status: AgentStatus, runningTasks: number, errorMessage: string | null, lastActivityAt: string | null } };

export type DashboardActionsQueryVariables = Exact<{ [key: string]: never; }>;


export type DashboardActionsQuery = { agents: Array<{ id: string, name: string, status: AgentStatus, actions: Array<{ name: string, description: string | null, inputSchema: unknown }> }> };

export type DashboardExecuteTaskMutationVariables = Exact<{
  input: ExecuteTaskInput;
}>;


export type DashboardExecuteTaskMutation = { executeTask: { id: string } };

export type DashboardTaskQueryVariables = Exact<{
  id: string;
}>;


export type DashboardTaskQuery = { task: { id: string, agentId: string, action: string | null, status: TaskStatus, progress: number | null, progressMessage: string | null, input: unknown, result: unknown, output: string | null, attempts: number, maxAttempts: number, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, error: { code: string | null, message: string } | null, parent: { id: string } | null, children: Array<{ id: string, agentId: string, action: string | null, status: TaskStatus }> } | null };

export type DashboardTaskEventsSubscriptionVariables = Exact<{
  id: string;
  after?: string | null | undefined;
}>;


export type DashboardTaskEventsSubscription = { taskEvents: { cursor: string, type: string, payload: unknown, createdAt: string } };

export type DashboardTaskOutputSubscriptionVariables = Exact<{
  id: string;
  after?: string | null | undefined;
}>;


export type DashboardTaskOutputSubscription = { taskOutput: { cursor: string, offset: number, text: string } };

export type DashboardTaskLogsQueryVariables = Exact<{
  id: string;
}>;


export type DashboardTaskLogsQuery = { logs: { edges: Array<{ node: { id: string, level: LogLevel, message: string, createdAt: string } }> } };

export type DashboardCancelTaskMutationVariables = Exact<{
  id: string;
}>;


export type DashboardCancelTaskMutation = { cancelTask: { id: string, status: TaskStatus } };

export type DashboardRetryTaskMutationVariables = Exact<{
  input: ExecuteTaskInput;
}>;


export type DashboardRetryTaskMutation = { executeTask: { id: string } };

export type DashboardTasksQueryVariables = Exact<{
  agentId?: string | null | undefined;
  status?: Array<TaskStatus> | TaskStatus | null | undefined;
}>;


export type DashboardTasksQuery = { eventHead: string, agents: Array<{ id: string }>, tasks: { totalCount: number, edges: Array<{ node: { id: string, agentId: string, action: string | null, status: TaskStatus, progress: number | null, createdAt: string } }> } };

export type DashboardTaskRowQueryVariables = Exact<{
  id: string;
}>;


export type DashboardTaskRowQuery = { task: { id: string, agentId: string, action: string | null, status: TaskStatus, progress: number | null, createdAt: string } | null };

export type DashboardTaskActivitySubscriptionVariables = Exact<{
  after?: string | null | undefined;
}>;


export type DashboardTaskActivitySubscription = { events: { cursor: string, type: string, taskId: string | null, payload: unknown } };

export type DashboardWorkflowRunsQueryVariables = Exact<{ [key: string]: never; }>;


export type DashboardWorkflowRunsQuery = { workflowRuns: { edges: Array<{ node: { id: string, status: WorkflowRunStatus, progress: number, createdAt: string, steps: Array<{ id: string }> } }> } };

export type DashboardWorkflowRunQueryVariables = Exact<{
  id: string;
}>;


export type DashboardWorkflowRunQuery = { workflowRun: { id: string, status: WorkflowRunStatus, progress: number, createdAt: string, finishedAt: string | null, steps: Array<{ id: string, agentId: string, action: string, dependsOn: Array<string>, status: WorkflowStepStatus, itemsDone: number, itemsTotal: number | null, task: { id: string } | null }> } | null };

export type DashboardRunFragment = { id: string, status: WorkflowRunStatus, progress: number, createdAt: string, finishedAt: string | null, steps: Array<{ id: string, agentId: string, action: string, dependsOn: Array<string>, status: WorkflowStepStatus, itemsDone: number, itemsTotal: number | null, task: { id: string } | null }> };

export type DashboardWorkflowRunUpdatedSubscriptionVariables = Exact<{
  id: string;
}>;


export type DashboardWorkflowRunUpdatedSubscription = { workflowRunUpdated: { id: string, status: WorkflowRunStatus, progress: number, createdAt: string, finishedAt: string | null, steps: Array<{ id: string, agentId: string, action: string, dependsOn: Array<string>, status: WorkflowStepStatus, itemsDone: number, itemsTotal: number | null, task: { id: string } | null }> } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const DashboardRunFragmentDoc = new TypedDocumentString(`
    fragment DashboardRun on WorkflowRun {
  id
  status
  progress
  createdAt
  finishedAt
  steps {
    id
    agentId
    action
    dependsOn
    status
    itemsDone
    itemsTotal
    task {
      id
    }
  }
}
    `, {"fragmentName":"DashboardRun"}) as unknown as TypedDocumentString<DashboardRunFragment, unknown>;
export const DashboardAgentsDocument = new TypedDocumentString(`
    query DashboardAgents {
  eventHead
  agents {
    id
    name
    role
    status
    runningTasks
    errorMessage
    lastActivityAt
    metrics {
      totalRuns
      successRate
    }
  }
}
    `, {"hash":"sha256:a35840745437997d32079b5c7966d91240de7a00d500821a9a0e63ca088554f5"}) as unknown as TypedDocumentString<DashboardAgentsQuery, DashboardAgentsQueryVariables>;
export const DashboardDurationsDocument = new TypedDocumentString(`
    query DashboardDurations($agentId: ID!) {
  metricSeries(agentId: $agentId, name: "task_duration_ms") {
    start
    p50
    p95
  }
}
    `, {"hash":"sha256:f9f01216e116e871493c886f97593dee0c9ca390d57f60b2d8e3f9c9b91e54ac"}) as unknown as TypedDocumentString<DashboardDurationsQuery, DashboardDurationsQueryVariables>;
export const DashboardAgentChangedDocument = new TypedDocumentString(`
    subscription DashboardAgentChanged($after: String) {
  agentStatusChanged(after: $after) {
    id
    status
    runningTasks
    errorMessage
    lastActivityAt
  }
}
    `, {"hash":"sha256:b7bba1a3f21e09d5d90f067e187c1d17a829813cf9ee74595fcd850a39188c4e"}) as unknown as TypedDocumentString<DashboardAgentChangedSubscription, DashboardAgentChangedSubscriptionVariables>;
export const DashboardActionsDocument = new TypedDocumentString(`
    query DashboardActions {
  agents {
    id
    name
    status
    actions {
      name
      description
      inputSchema
    }
  }
}
    `, {"hash":"sha256:acacd7cdb9efeb50e4dee2aafc87693a1e48d8c03e01fc5ca1c6dcbf56e52891"}) as unknown as TypedDocumentString<DashboardActionsQuery, DashboardActionsQueryVariables>;
export const DashboardExecuteTaskDocument = new TypedDocumentString(`
    mutation DashboardExecuteTask($input: ExecuteTaskInput!) {
  executeTask(input: $input) {
    id
  }
}
    `, {"hash":"sha256:60552f2c902d0707ad1b91f790b7e28f2ae540a6c841cf4febf84ea8d7ed2bda"}) as unknown as TypedDocumentString<DashboardExecuteTaskMutation, DashboardExecuteTaskMutationVariables>;
export const DashboardTaskDocument = new TypedDocumentString(`
    query DashboardTask($id: ID!) {
  task(id: $id) {
    id
    agentId
    action
    status
    progress
    progressMessage
    input
    result
    error {
      code
      message
    }
    output
    attempts
    maxAttempts
    createdAt
    startedAt
    finishedAt
    durationMs
    parent {
      id
    }
    children(first: 50) {
      id
      agentId
      action
      status
    }
  }
}
    `, {"hash":"sha256:fc625af732b07452cb4308cd1801e5b962c6534bcb0be184650ff323e3fd6e61"}) as unknown as TypedDocumentString<DashboardTaskQuery, DashboardTaskQueryVariables>;
export const DashboardTaskEventsDocument = new TypedDocumentString(`
    subscription DashboardTaskEvents($id: ID!, $after: String) {
  taskEvents(taskId: $id, after: $after) {
    cursor
    type
    payload
    createdAt
  }
}
    `, {"hash":"sha256:6ca566f3c9674c24d6357fb16700b11368f43b02e7d8334cd1f61cd59fc73321"}) as unknown as TypedDocumentString<DashboardTaskEventsSubscription, DashboardTaskEventsSubscriptionVariables>;
export const DashboardTaskOutputDocument = new TypedDocumentString(`
    subscription DashboardTaskOutput($id: ID!, $after: String) {
  taskOutput(taskId: $id, after: $after) {
    cursor
    offset
    text
  }
}
    `, {"hash":"sha256:b278a6026c2afef1b65b9f37904ce5fd4eedb826c90ec75e294742f430db096d"}) as unknown as TypedDocumentString<DashboardTaskOutputSubscription, DashboardTaskOutputSubscriptionVariables>;
export const DashboardTaskLogsDocument = new TypedDocumentString(`
    query DashboardTaskLogs($id: ID!) {
  logs(taskId: $id, last: 50) {
    edges {
      node {
        id
        level
        message
        createdAt
      }
    }
  }
}
    `, {"hash":"sha256:58b8af03fde7c125a577946dae8d932bce43f1eedbe7feb25f7b66a9c56cfc6f"}) as unknown as TypedDocumentString<DashboardTaskLogsQuery, DashboardTaskLogsQueryVariables>;
export const DashboardCancelTaskDocument = new TypedDocumentString(`
    mutation DashboardCancelTask($id: ID!) {
  cancelTask(id: $id) {
    id
    status
  }
}
    `, {"hash":"sha256:762758ecb02dc4834f791a10fd9ae0af939954191e9088024a9f30294f21bcf3"}) as unknown as TypedDocumentString<DashboardCancelTaskMutation, DashboardCancelTaskMutationVariables>;
export const DashboardRetryTaskDocument = new TypedDocumentString(`
    mutation DashboardRetryTask($input: ExecuteTaskInput!) {
  executeTask(input: $input) {
    id
  }
}
    `, {"hash":"sha256:a3948e46a55a3157ea6552853e5dfa76ef956b7ca92c89c1f6ac2acaf096c410"}) as unknown as TypedDocumentString<DashboardRetryTaskMutation, DashboardRetryTaskMutationVariables>;
export const DashboardTasksDocument = new TypedDocumentString(`
    query DashboardTasks($agentId: ID, $status: [TaskStatus!]) {
  eventHead
  agents {
    id
  }
  tasks(agentId: $agentId, status: $status, first: 50) {
    totalCount
    edges {
      node {
        id
        agentId
        action
        status
        progress
        createdAt
      }
    }
  }
}
    `, {"hash":"sha256:f5ee05817d5d0d82a57f0a32f9a2ffa02eb13d739308e7a11a913301b046b1e3"}) as unknown as TypedDocumentString<DashboardTasksQuery, DashboardTasksQueryVariables>;
export const DashboardTaskRowDocument = new TypedDocumentString(`
    query DashboardTaskRow($id: ID!) {
  task(id: $id) {
    id
    agentId
    action
    status
    progress
    createdAt
  }
}
    `, {"hash":"sha256:cb83946c5240d33c926d99956f70ec3974804d06979a0c1a1fa5dfe6399b46fd"}) as unknown as TypedDocumentString<DashboardTaskRowQuery, DashboardTaskRowQueryVariables>;
export const DashboardTaskActivityDocument = new TypedDocumentString(`
    subscription DashboardTaskActivity($after: String) {
  events(
    after: $after
    types: ["task_queued", "task_started", "task_progress", "task_completed", "task_failed", "task_cancelled", "task_retry_scheduled", "task_waiting", "task_resumed"]
  ) {
    cursor
    type
    taskId
    payload
  }
}
    `, {"hash":"sha256:dda65a51f6bd48d692800951b56c3a4474799824ecf25a5bc0e6b6867b12f6e1"}) as unknown as TypedDocumentString<DashboardTaskActivitySubscription, DashboardTaskActivitySubscriptionVariables>;
export const DashboardWorkflowRunsDocument = new TypedDocumentString(`
    query DashboardWorkflowRuns {
  workflowRuns(first: 50) {
    edges {
      node {
        id
        status
        progress
        createdAt
        steps {
          id
        }
      }
    }
  }
}
    `, {"hash":"sha256:4a8db13d7543950cf1770441981abd22a625c33bc2e85f3a7eff805f50c092fe"}) as unknown as TypedDocumentString<DashboardWorkflowRunsQuery, DashboardWorkflowRunsQueryVariables>;
export const DashboardWorkflowRunDocument = new TypedDocumentString(`
    query DashboardWorkflowRun($id: ID!) {
  workflowRun(id: $id) {
    ...DashboardRun
  }
}
    fragment DashboardRun on WorkflowRun {
  id
  status
  progress
  createdAt
  finishedAt
  steps {
    id
    agentId
    action
    dependsOn
    status
    itemsDone
    itemsTotal
    task {
      id
    }
  }
}`, {"hash":"sha256:8ffba77458d3070f57b41282ce48e2e4e4754f9e8787bbccd700b92311c20ba3"}) as unknown as TypedDocumentString<DashboardWorkflowRunQuery, DashboardWorkflowRunQueryVariables>;
export const DashboardWorkflowRunUpdatedDocument = new TypedDocumentString(`
    subscription DashboardWorkflowRunUpdated($id: ID!) {
  workflowRunUpdated(id: $id) {
    ...DashboardRun
  }
}
    fragment DashboardRun on WorkflowRun {
  id
  status
  progress
  createdAt
  finishedAt
  steps {
    id
    agentId
    action
    dependsOn
    status
    itemsDone
    itemsTotal
    task {
      id
    }
  }
}`, {"hash":"sha256:6c6fffdf2c8db0b4a50c1969ae6277f1ae8c7aa3ffcef5e2ed0f85c659f28911"}) as unknown as TypedDocumentString<DashboardWorkflowRunUpdatedSubscription, DashboardWorkflowRunUpdatedSubscriptionVariables>;