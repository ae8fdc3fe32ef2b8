/**
 * The authorization scopes every Query, Mutation and Subscription field declares (`authScopes`),
 * checked by @pothos/plugin-scope-auth before the resolver runs. Roles and grants: src/auth/roles.ts;
 * the table per operation: docs/security.md.
 */
import type { AuthFailure } from '@pothos/plugin-scope-auth';
import { ADMIN_ONLY_ACTIONS, hasRole, mayAccessTask, seesAllTasks } from '../auth/roles.js';
import { CasError, ErrorCode } from '../errors.js';
import type { GraphQLContext } from './context.js';

export interface AuthScopes {
  /** Any authenticated caller (role viewer or above). */
  viewer: boolean;
  /** Runs and cancels tasks, writes agent state. */
  operator: boolean;
  /** Registers agents, manages API keys, runs the diagnostic actions wait and fail. */
  admin: boolean;
  /** Sees every caller's tasks, their events and logs (admins; others with the tasks:all grant). */
  allTasks: boolean;
  /** May see (and, as an operator, cancel) the task with this id; an unknown id passes (NOT_FOUND follows). */
  task: string;
  /** May see a task created by this user id (null: created without a caller). */
  taskCreatedBy: string | null;
  /** May run this action in executeTask. */
  action: string;
}

export function authScopes(context: GraphQLContext) {
  const { viewer } = context;
  const operator = hasRole(viewer, 'operator');
  const admin = hasRole(viewer, 'admin');
  return {
    viewer: hasRole(viewer, 'viewer'),
    operator,
    admin,
    allTasks: seesAllTasks(viewer),
    task: async (id: string) => {
      if (seesAllTasks(viewer)) return true;
      if (!hasRole(viewer, 'viewer')) return false;
      const task = await context.loaders.tasks.load(id);
      return task === null || mayAccessTask(viewer, task.userId);
    },
    taskCreatedBy: (createdBy: string | null) => mayAccessTask(viewer, createdBy),
    action: (name: string) => (ADMIN_ONLY_ACTIONS.includes(name) ? admin : operator),
  };
}

/** Refusals: UNAUTHENTICATED without credentials, FORBIDDEN with credentials that do not suffice. */
export function unauthorizedError(
  _parent: unknown,
  context: GraphQLContext,
  _info: unknown,
  result: { message: string; failure: AuthFailure },
): Error {
  if (context.viewer.kind === 'anonymous') {
    return new CasError(
      ErrorCode.UNAUTHENTICATED,
      'this operation needs credentials: Authorization: Bearer <token>',
    );
  }
  return new CasError(ErrorCode.FORBIDDEN, `${result.message} (role ${context.viewer.role ?? 'none'})`);
}
