/* eslint-disable */
import * as types from './graphql';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query DashboardAgents {\n    eventHead\n    agents {\n      id\n      name\n      role\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n      metrics {\n        totalRuns\n        successRate\n      }\n    }\n  }\n": typeof types.DashboardAgentsDocument,
    "\n  query DashboardDurations($agentId: ID!) {\n    metricSeries(agentId: $agentId, name: \"task_duration_ms\") {\n      start\n      p50\n      p95\n    }\n  }\n": typeof types.DashboardDurationsDocument,
    "\n  subscription DashboardAgentChanged($after: String) {\n    agentStatusChanged(after: $after) {\n      id\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n    }\n  }\n": typeof types.DashboardAgentChangedDocument,
    "\n  query DashboardActions {\n    agents {\n      id\n      name\n      status\n      actions {\n        name\n        description\n        inputSchema\n      }\n    }\n  }\n": typeof types.DashboardActionsDocument,
    "\n  mutation DashboardExecuteTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n": typeof types.DashboardExecuteTaskDocument,
    "\n  query DashboardTask($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      progressMessage\n      input\n      result\n      error {\n        code\n        message\n      }\n      output\n      attempts\n      maxAttempts\n      createdAt\n      startedAt\n      finishedAt\n      durationMs\n      parent {\n        id\n      }\n      children(first: 50) {\n        id\n        agentId\n        action\n        status\n      }\n    }\n  }\n": typeof types.DashboardTaskDocument,
    "\n  subscription DashboardTaskEvents($id: ID!, $after: String) {\n    taskEvents(taskId: $id, after: $after) {\n      cursor\n      type\n      payload\n      createdAt\n    }\n  }\n": typeof types.DashboardTaskEventsDocument,
    "\n  subscription DashboardTaskOutput($id: ID!, $after: String) {\n    taskOutput(taskId: $id, after: $after) {\n      cursor\n      offset\n      text\n    }\n  }\n": typeof types.DashboardTaskOutputDocument,
    "\n  query DashboardTaskLogs($id: ID!) {\n    logs(taskId: $id, last: 50) {\n      edges {\n        node {\n          id\n          level\n          message\n          createdAt\n        }\n      }\n    }\n  }\n": typeof types.DashboardTaskLogsDocument,
    "\n  mutation DashboardCancelTask($id: ID!) {\n    cancelTask(id: $id) {\n      id\n      status\n    }\n  }\n": typeof types.DashboardCancelTaskDocument,
    "\n  mutation DashboardRetryTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n": typeof types.DashboardRetryTaskDocument,
    "\n  query DashboardTasks($agentId: ID, $status: [TaskStatus!]) {\n    eventHead\n    agents {\n      id\n    }\n    tasks(agentId: $agentId, status: $status, first: 50) {\n      totalCount\n      edges {\n        node {\n          id\n          agentId\n          action\n          status\n          progress\n          createdAt\n        }\n      }\n    }\n  }\n": typeof types.DashboardTasksDocument,
    "\n  query DashboardTaskRow($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      createdAt\n    }\n  }\n": typeof types.DashboardTaskRowDocument,
    "\n  subscription DashboardTaskActivity($after: String) {\n    events(\n      after: $after\n      types: [\n        \"task_queued\"\n        \"task_started\"\n        \"task_progress\"\n        \"task_completed\"\n        \"task_failed\"\n        \"task_cancelled\"\n        \"task_retry_scheduled\"\n        \"task_waiting\"\n        \"task_resumed\"\n      ]\n    ) {\n      cursor\n      type\n      taskId\n      payload\n    }\n  }\n": typeof types.DashboardTaskActivityDocument,
    "\n  query DashboardWorkflowRuns {\n    workflowRuns(first: 50) {\n      edges {\n        node {\n          id\n          status\n          progress\n          createdAt\n          steps {\n            id\n          }\n        }\n      }\n    }\n  }\n": typeof types.DashboardWorkflowRunsDocument,
    "\n  query DashboardWorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      ...DashboardRun\n    }\n  }\n": typeof types.DashboardWorkflowRunDocument,
    "\n  fragment DashboardRun on WorkflowRun {\n    id\n    status\n    progress\n    createdAt\n    finishedAt\n    steps {\n      id\n      agentId\n      action\n      dependsOn\n      status\n      itemsDone\n      itemsTotal\n      task {\n        id\n      }\n    }\n  }\n": typeof types.DashboardRunFragmentDoc,
    "\n  subscription DashboardWorkflowRunUpdated($id: ID!) {\n    workflowRunUpdated(id: $id) {\n      ...DashboardRun\n    }\n  }\n": typeof types.DashboardWorkflowRunUpdatedDocument,
};
const documents: Documents = {
    "\n  query DashboardAgents {\n    eventHead\n    agents {\n      id\n      name\n      role\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n      metrics {\n        totalRuns\n        successRate\n      }\n    }\n  }\n": types.DashboardAgentsDocument,
    "\n  query DashboardDurations($agentId: ID!) {\n    metricSeries(agentId: $agentId, name: \"task_duration_ms\") {\n      start\n      p50\n      p95\n    }\n  }\n": types.DashboardDurationsDocument,
    "\n  subscription DashboardAgentChanged($after: String) {\n    agentStatusChanged(after: $after) {\n      id\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n    }\n  }\n": types.DashboardAgentChangedDocument,
    "\n  query DashboardActions {\n    agents {\n      id\n      name\n      status\n      actions {\n        name\n        description\n        inputSchema\n      }\n    }\n  }\n": types.DashboardActionsDocument,
    "\n  mutation DashboardExecuteTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n": types.DashboardExecuteTaskDocument,
    "\n  query DashboardTask($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      progressMessage\n      input\n      result\n      error {\n        code\n        message\n      }\n      output\n      attempts\n      maxAttempts\n      createdAt\n      startedAt\n      finishedAt\n      durationMs\n      parent {\n        id\n      }\n      children(first: 50) {\n        id\n        agentId\n        action\n        status\n      }\n    }\n  }\n": types.DashboardTaskDocument,
    "\n  subscription DashboardTaskEvents($id: ID!, $after: String) {\n    taskEvents(taskId: $id, after: $after) {\n      cursor\n      type\n      payload\n      createdAt\n    }\n  }\n": types.DashboardTaskEventsDocument,
    "\n  subscription DashboardTaskOutput($id: ID!, $after: String) {\n    taskOutput(taskId: $id, after: $after) {\n      cursor\n      offset\n      text\n    }\n  }\n": types.DashboardTaskOutputDocument,
    "\n  query DashboardTaskLogs($id: ID!) {\n    logs(taskId: $id, last: 50) {\n      edges {\n        node {\n          id\n          level\n          message\n          createdAt\n        }\n      }\n    }\n  }\n": types.DashboardTaskLogsDocument,
    "\n  mutation DashboardCancelTask($id: ID!) {\n    cancelTask(id: $id) {\n      id\n      status\n    }\n  }\n": types.DashboardCancelTaskDocument,
    "\n  mutation DashboardRetryTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n": types.DashboardRetryTaskDocument,
    "\n  query DashboardTasks($agentId: ID, $status: [TaskStatus!]) {\n    eventHead\n    agents {\n      id\n    }\n    tasks(agentId: $agentId, status: $status, first: 50) {\n      totalCount\n      edges {\n        node {\n          id\n          agentId\n          action\n          status\n          progress\n          createdAt\n        }\n      }\n    }\n  }\n": types.DashboardTasksDocument,
    "\n  query DashboardTaskRow($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      createdAt\n    }\n  }\n": types.DashboardTaskRowDocument,
    "\n  subscription DashboardTaskActivity($after: String) {\n    events(\n      after: $after\n      types: [\n        \"task_queued\"\n        \"task_started\"\n        \"task_progress\"\n        \"task_completed\"\n        \"task_failed\"\n        \"task_cancelled\"\n        \"task_retry_scheduled\"\n        \"task_waiting\"\n        \"task_resumed\"\n      ]\n    ) {\n      cursor\n      type\n      taskId\n      payload\n    }\n  }\n": types.DashboardTaskActivityDocument,
    "\n  query DashboardWorkflowRuns {\n    workflowRuns(first: 50) {\n      edges {\n        node {\n          id\n          status\n          progress\n          createdAt\n          steps {\n            id\n          }\n        }\n      }\n    }\n  }\n": types.DashboardWorkflowRunsDocument,
    "\n  query DashboardWorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      ...DashboardRun\n    }\n  }\n": types.DashboardWorkflowRunDocument,
    "\n  fragment DashboardRun on WorkflowRun {\n    id\n    status\n    progress\n    createdAt\n    finishedAt\n    steps {\n      id\n      agentId\n      action\n      dependsOn\n      status\n      itemsDone\n      itemsTotal\n      task {\n        id\n      }\n    }\n  }\n": types.DashboardRunFragmentDoc,
    "\n  subscription DashboardWorkflowRunUpdated($id: ID!) {\n    workflowRunUpdated(id: $id) {\n      ...DashboardRun\n    }\n  }\n": types.DashboardWorkflowRunUpdatedDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardAgents {\n    eventHead\n    agents {\n      id\n      name\n      role\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n      metrics {\n        totalRuns\n        successRate\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardAgentsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardDurations($agentId: ID!) {\n    metricSeries(agentId: $agentId, name: \"task_duration_ms\") {\n      start\n      p50\n      p95\n    }\n  }\n"): typeof import('./graphql').DashboardDurationsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardAgentChanged($after: String) {\n    agentStatusChanged(after: $after) {\n      id\n      status\n      runningTasks\n      errorMessage\n      lastActivityAt\n    }\n  }\n"): typeof import('./graphql').DashboardAgentChangedDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardActions {\n    agents {\n      id\n      name\n      status\n      actions {\n        name\n        description\n        inputSchema\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardActionsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardExecuteTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n"): typeof import('./graphql').DashboardExecuteTaskDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardTask($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      progressMessage\n      input\n      result\n      error {\n        code\n        message\n      }\n      output\n      attempts\n      maxAttempts\n      createdAt\n      startedAt\n      finishedAt\n      durationMs\n      parent {\n        id\n      }\n      children(first: 50) {\n        id\n        agentId\n        action\n        status\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardTaskDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardTaskEvents($id: ID!, $after: String) {\n    taskEvents(taskId: $id, after: $after) {\n      cursor\n      type\n      payload\n      createdAt\n    }\n  }\n"): typeof import('./graphql').DashboardTaskEventsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardTaskOutput($id: ID!, $after: String) {\n    taskOutput(taskId: $id, after: $after) {\n      cursor\n      offset\n      text\n    }\n  }\n"): typeof import('./graphql').DashboardTaskOutputDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardTaskLogs($id: ID!) {\n    logs(taskId: $id, last: 50) {\n      edges {\n        node {\n          id\n          level\n          message\n          createdAt\n        }\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardTaskLogsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardCancelTask($id: ID!) {\n    cancelTask(id: $id) {\n      id\n      status\n    }\n  }\n"): typeof import('./graphql').DashboardCancelTaskDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DashboardRetryTask($input: ExecuteTaskInput!) {\n    executeTask(input: $input) {\n      id\n    }\n  }\n"): typeof import('./graphql').DashboardRetryTaskDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardTasks($agentId: ID, $status: [TaskStatus!]) {\n    eventHead\n    agents {\n      id\n    }\n    tasks(agentId: $agentId, status: $status, first: 50) {\n      totalCount\n      edges {\n        node {\n          id\n          agentId\n          action\n          status\n          progress\n          createdAt\n        }\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardTasksDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardTaskRow($id: ID!) {\n    task(id: $id) {\n      id\n      agentId\n      action\n      status\n      progress\n      createdAt\n    }\n  }\n"): typeof import('./graphql').DashboardTaskRowDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardTaskActivity($after: String) {\n    events(\n      after: $after\n      types: [\n        \"task_queued\"\n        \"task_started\"\n        \"task_progress\"\n        \"task_completed\"\n        \"task_failed\"\n        \"task_cancelled\"\n        \"task_retry_scheduled\"\n        \"task_waiting\"\n        \"task_resumed\"\n      ]\n    ) {\n      cursor\n      type\n      taskId\n      payload\n    }\n  }\n"): typeof import('./graphql').DashboardTaskActivityDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardWorkflowRuns {\n    workflowRuns(first: 50) {\n      edges {\n        node {\n          id\n          status\n          progress\n          createdAt\n          steps {\n            id\n          }\n        }\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardWorkflowRunsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DashboardWorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      ...DashboardRun\n    }\n  }\n"): typeof import('./graphql').DashboardWorkflowRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment DashboardRun on WorkflowRun {\n    id\n    status\n    progress\n    createdAt\n    finishedAt\n    steps {\n      id\n      agentId\n      action\n      dependsOn\n      status\n      itemsDone\n      itemsTotal\n      task {\n        id\n      }\n    }\n  }\n"): typeof import('./graphql').DashboardRunFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DashboardWorkflowRunUpdated($id: ID!) {\n    workflowRunUpdated(id: $id) {\n      ...DashboardRun\n    }\n  }\n"): typeof import('./graphql').DashboardWorkflowRunUpdatedDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
