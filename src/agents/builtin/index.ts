import type { BUILT_IN_AGENT_IDS } from '../../domains/agent/agent.js';
import type { ActionMap } from '../actions.js';
import {
  developerActions,
  engineerActions,
  marketerActions,
  plannerActions,
  qaActions,
  testerActions,
} from './model-actions.js';
import { securityActions } from './security.js';

/**
 * The actions of the eight built-in agents, defined in every runtime process (API and workers), so
 * enqueue-time checks and workers agree. An agent in CAS_AGENTS_DIR with the same id replaces
 * actions of the same name.
 */
export const builtInActions: Partial<Record<(typeof BUILT_IN_AGENT_IDS)[number], ActionMap>> = {
  marketer: marketerActions,
  planner: plannerActions,
  developer: developerActions,
  tester: testerActions,
  qa: qaActions,
  engineer: engineerActions,
  security: securityActions,
};
