import { z } from 'zod';
import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toDateOrNull, toNumber } from '../../db/rows.js';
import { jsonObject } from '../../validation.js';

/** One version of an agent's state. Only the newest is active; reset deactivates it. */
export interface AgentState {
  agentId: string;
  version: number;
  data: Record<string, unknown>;
  isActive: boolean;
  userId: string | null;
  /** When this version was written. */
  updatedAt: Date;
  deactivatedAt: Date | null;
}

export const updateStateInput = z.object({
  data: jsonObject,
  /** The active version the caller read; 0 means "no state yet". */
  expectedVersion: z.number().int().min(0).nullish(),
});

interface StateRow {
  agent_id: string;
  version: unknown;
  config: Record<string, unknown>;
  is_active: boolean;
  user_id: string | null;
  created_at: unknown;
  deactivated_at: unknown;
}

const stateFromRow = (row: StateRow): AgentState => ({
  agentId: row.agent_id,
  version: toNumber(row.version),
  data: row.config,
  isActive: row.is_active,
  userId: row.user_id,
  updatedAt: toDate(row.created_at),
  deactivatedAt: toDateOrNull(row.deactivated_at),
});

export function stateStore(sql: SqlFunctions) {
  return {
    async update(
      agentId: string,
      input: z.output<typeof updateStateInput>,
      userId?: string,
    ): Promise<AgentState> {
      const [row] = await sql.rows<StateRow>('cas_update_agent_state', {
        p_agent_id: agentId,
        p_data: json(input.data),
        p_expected_version: input.expectedVersion ?? null,
        p_user_id: userId ?? null,
      });
      return stateFromRow(row!);
    },
    /** Deactivates the active version; false when there was none. */
    reset: (agentId: string, userId?: string) =>
      sql.value<boolean>('cas_reset_agent_state', { p_agent_id: agentId, p_user_id: userId ?? null }),
    /** Active states of the given agents (agents without one are absent). */
    async active(agentIds: readonly string[]): Promise<AgentState[]> {
      const rows = await sql.rows<StateRow>('cas_get_agent_states', { p_agent_ids: [...agentIds] });
      return rows.map(stateFromRow);
    },
    /** The newest `limit` versions of each agent, newest first, grouped in the order asked. */
    async histories(agentIds: readonly string[], limit: number): Promise<AgentState[][]> {
      const rows = await sql.rows<StateRow>('cas_agent_state_histories', {
        p_agent_ids: [...agentIds],
        p_limit: limit,
      });
      const byAgent = new Map<string, AgentState[]>(agentIds.map((id) => [id, []]));
      for (const row of rows) byAgent.get(row.agent_id)?.push(stateFromRow(row));
      return agentIds.map((id) => byAgent.get(id) ?? []);
    },
    /** Every version, newest first. */
    async history(agentId: string, limit: number): Promise<AgentState[]> {
      const rows = await sql.rows<StateRow>('cas_agent_state_history', {
        p_agent_id: agentId,
        p_limit: limit,
      });
      return rows.map(stateFromRow);
    },
  };
}
export type StateStore = ReturnType<typeof stateStore>;
