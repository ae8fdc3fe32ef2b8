/**
 * A typed client with nothing but fetch: lists the agents, runs a `ping` task on one and waits for
 * its result. Types come from GraphQL Code Generator (npm run codegen → examples/gql/).
 *
 *   npm start                       # in another terminal
 *   npx tsx examples/run-task.ts [agentId]
 *
 * CAS_API_URL overrides the endpoint (default http://localhost:4000/graphql). CAS_API_TOKEN is sent
 * as `Authorization: Bearer <token>` when the server has authentication on: a Supabase access
 * token or a `cas_` API key of an operator or admin (docs/security.md).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { fileURLToPath } from 'node:url';
import { graphql } from './gql/index.js';

const ListAgents = graphql(`
  query ListAgents {
    agents {
      id
      name
      role
      status
      metrics {
        totalRuns
        successRate
      }
    }
  }
`);

const RunTask = graphql(`
  mutation RunTask($input: ExecuteTaskInput!) {
    executeTask(input: $input) {
      id
      status
      result
      error {
        message
        code
      }
      durationMs
      createdBy
      agent {
        id
      }
    }
  }
`);

/** A GraphQL error as the API sends it: `extensions.code` says what kind. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

interface ResponseBody<Result> {
  data?: Result | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The persisted-document hash codegen embedded in `document` ("sha256:<hex>"), as APQ sends it. */
const persistedHash = (document: TypedDocumentNode<unknown, never>) =>
  (document as { __meta__?: { hash?: string } }).__meta__?.hash?.replace(/^sha256:/, '');

/**
 * Runs one typed operation over HTTP POST; the result and the variables are checked by tsc.
 * It sends the document's hash only (the server knows our documents from persisted-documents.json,
 * and may accept nothing else: CAS_TRUSTED_DOCUMENTS=only); a server that does not know it answers
 * PERSISTED_QUERY_NOT_FOUND, and the full text follows.
 */
export async function request<Result, Variables extends Record<string, unknown>>(
  url: string,
  document: TypedDocumentNode<Result, Variables>,
  ...[variables]: Variables extends Record<string, never> ? [] : [Variables]
): Promise<Result> {
  const post = async (operation: Record<string, unknown>) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...(process.env.CAS_API_TOKEN ? { authorization: `Bearer ${process.env.CAS_API_TOKEN}` } : {}),
      },
      body: JSON.stringify({ ...operation, variables }),
    });
    return { status: response.status, body: (await response.json()) as ResponseBody<Result> };
  };
  const sha256Hash = persistedHash(document as TypedDocumentNode<unknown, never>);
  let { status, body } = sha256Hash
    ? await post({ extensions: { persistedQuery: { version: 1, sha256Hash } } })
    : await post({ query: print(document) });
  if (body.errors?.[0]?.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND') {
    ({ status, body } = await post({ query: print(document) }));
  }
  const [error] = body.errors ?? [];
  if (error) throw new ApiError(error.message, error.extensions?.code);
  if (!body.data) throw new ApiError(`HTTP ${status} without data`, undefined);
  return body.data;
}

/** Lists the agents and pings one; `print` receives each line. */
export async function runExample(
  url: string,
  agentId = 'marketer',
  print: (line: string) => void = console.log,
) {
  const { agents } = await request(url, ListAgents);
  print(`${agents.length} agents:`);
  for (const agent of agents) {
    print(
      `  ${agent.id.padEnd(12)} ${agent.status.padEnd(8)} ${agent.role} (${agent.metrics.totalRuns} runs)`,
    );
  }

  const { executeTask: task } = await request(url, RunTask, {
    input: {
      agentId,
      action: 'ping',
      input: { from: 'examples/run-task.ts' },
      wait: true,
      timeoutMs: 10_000,
    },
  });
  print(`task ${task.id} on ${task.agent.id}: ${task.status} in ${task.durationMs ?? '?'} ms`);
  print(`result: ${JSON.stringify(task.result)}`);
  if (task.error) print(`error: ${task.error.code ?? ''} ${task.error.message}`);
  return task;
}

/** One line for what went wrong; fetch reports an unreachable server as a bare "fetch failed". */
function describeFailure(url: string, error: unknown): string {
  if (error instanceof ApiError) return `${error.code ?? 'ERROR'}: ${error.message}`;
  if (error instanceof TypeError && error.message === 'fetch failed') {
    const cause = (error.cause as { code?: string } | undefined)?.code;
    return `cannot reach ${url}${cause ? ` (${cause})` : ''}: is the server running at ${url}? Start it with \`npm start\`, or set CAS_API_URL`;
  }
  return String(error instanceof Error ? error.message : error);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.env.CAS_API_URL ?? 'http://localhost:4000/graphql';
  runExample(url, process.argv[2]).catch((error: unknown) => {
    console.error(describeFailure(url, error));
    process.exit(1);
  });
}
