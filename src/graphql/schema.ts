/** Builds the GraphQL schema: imports every domain's types for their side effects. */
import { builder } from './builder.js';
import './types/agent.js';
import './types/api-key.js';
import './types/event.js';
import './types/health.js';
import './types/log.js';
import './types/metric.js';
import './types/state.js';
import './types/task.js';
import './types/workflow.js';

export const schema = builder.toSchema();
