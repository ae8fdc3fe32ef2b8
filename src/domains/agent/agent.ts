import { z } from 'zod';
import type { SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toDateOrNull, toNumber, toNumberOrNull } from '../../db/rows.js';
import { agentId } from '../../validation.js';

export const AGENT_STATUSES = ['idle', 'busy', 'stopped', 'error'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export const BUILT_IN_AGENT_IDS = [
  'marketer',
  'analyst',
  'planner',
  'developer',
  'tester',
  'qa',
  'engineer',
  'security',
] as const;

export interface Agent {
  id: string;
  name: string;
  role: string;
  description: string | null;
  status: AgentStatus;
  registeredAt: Date;
  unregisteredAt: Date | null;
  /** When the agent last became available; null while stopped. */
  startedAt: Date | null;
  lastActivityAt: Date | null;
  errorMessage: string | null;
  runningTasks: number;
  /** Most tasks of this agent running at once over all workers; null for no limit. */
  maxConcurrency: number | null;
}

/** The highest maxConcurrency an agent may have (the column's check). */
export const MAX_AGENT_CONCURRENCY = 10_000;

export const registerAgentInput = z.object({
  id: agentId,
  name: z.string().trim().min(1).max(200),
  role: z.string().trim().min(1).max(100),
  description: z.string().max(2000).nullish(),
  maxConcurrency: z.number().int().min(1).max(MAX_AGENT_CONCURRENCY).nullish(),
});
export type RegisterAgentInput = z.input<typeof registerAgentInput>;

interface AgentRow {
  id: string;
  name: string;
  role: string;
  description: string | null;
  status: AgentStatus;
  registered_at: unknown;
  unregistered_at: unknown;
  started_at: unknown;
  last_activity_at: unknown;
  error_message: string | null;
  running_tasks: unknown;
  max_concurrency: unknown;
}

const agentFromRow = (row: AgentRow): Agent => ({
  id: row.id,
  name: row.name,
  role: row.role,
  description: row.description,
  status: row.status,
  registeredAt: toDate(row.registered_at),
  unregisteredAt: toDateOrNull(row.unregistered_at),
  startedAt: toDateOrNull(row.started_at),
  lastActivityAt: toDateOrNull(row.last_activity_at),
  errorMessage: row.error_message,
  runningTasks: toNumber(row.running_tasks),
  maxConcurrency: toNumberOrNull(row.max_concurrency),
});

export function agentStore(sql: SqlFunctions) {
  return {
    async register(input: z.output<typeof registerAgentInput>, userId?: string): Promise<Agent> {
      const [row] = await sql.rows<AgentRow>('cas_register_agent', {
        p_id: input.id,
        p_name: input.name,
        p_role: input.role,
        p_description: input.description ?? null,
        p_user_id: userId ?? null,
        p_max_concurrency: input.maxConcurrency ?? null,
      });
      return agentFromRow(row!);
    },
    async unregister(id: string, userId?: string): Promise<Agent> {
      const [row] = await sql.rows<AgentRow>('cas_unregister_agent', { p_id: id, p_user_id: userId ?? null });
      return agentFromRow(row!);
    },
    /** All agents ordered by id, or the given ones (missing ids are absent from the result). */
    async list(ids?: readonly string[]): Promise<Agent[]> {
      const rows = await sql.rows<AgentRow>('cas_list_agents', { p_ids: ids ? [...ids] : null });
      return rows.map(agentFromRow);
    },
  };
}
export type AgentStore = ReturnType<typeof agentStore>;
