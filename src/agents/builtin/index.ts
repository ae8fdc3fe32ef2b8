import type { BUILT_IN_AGENT_IDS } from '../../domains/agent/agent.js';
import type { ActionMap } from '../actions.js';
import {
  developerActions,
  engineerActions,
  marketerActions,
  qaActions,
  testerActions,
} from './model-actions.js';
import { securityActions } from './security.js';

/**
 * The actions of the built-in agents that need nothing of the runtime (analyst and planner are
 * built by the runtime with its reads, see CustomRuntime). Defined in every runtime process (API
 * and workers), so enqueue-time checks and workers agree. An agent in CAS_AGENTS_DIR with the same
 * id replaces actions of the same name.
 */
export const builtInActions: Partial<Record<(typeof BUILT_IN_AGENT_IDS)[number], ActionMap>> = {
  marketer: marketerActions,
  developer: developerActions,
  tester: testerActions,
  qa: qaActions,
  engineer: engineerActions,
  security: securityActions,
};
