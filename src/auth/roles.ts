/**
 * Who is calling and what they may do (docs/security.md). Roles are cumulative: an operator may do
 * everything a viewer may, an admin everything an operator may.
 */

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The grant that lifts the "own tasks only" rule for viewers and operators; admins hold it. */
export const TASKS_ALL_GRANT = 'tasks:all';

/** Diagnostic actions only admins may run (`ping` is fine for operators). */
export const ADMIN_ONLY_ACTIONS: readonly string[] = ['wait', 'fail'];

/**
 * The caller of one request or socket.
 * - local: development without authentication configured; the local admin (id null).
 * - user: a verified Supabase Auth JWT; id is its `sub`.
 * - apiKey: a `cas_` API key; id is `apiKey:<key id>`.
 * - anonymous: no credentials while authentication is on; may do nothing.
 */
export interface Viewer {
  kind: 'local' | 'user' | 'apiKey' | 'anonymous';
  id: string | null;
  role: Role | null;
  grants: readonly string[];
}

export const LOCAL_VIEWER: Viewer = Object.freeze({ kind: 'local', id: null, role: 'admin', grants: [] });
export const ANONYMOUS_VIEWER: Viewer = Object.freeze({
  kind: 'anonymous',
  id: null,
  role: null,
  grants: [],
});

/** Whether the viewer's role is `role` or above. */
export function hasRole(viewer: Viewer, role: Role): boolean {
  return viewer.role !== null && ROLES.indexOf(viewer.role) >= ROLES.indexOf(role);
}

/** Admins, and viewers or operators granted tasks:all, see and cancel every caller's tasks. */
export function seesAllTasks(viewer: Viewer): boolean {
  return hasRole(viewer, 'admin') || (viewer.role !== null && viewer.grants.includes(TASKS_ALL_GRANT));
}

/** Whether the viewer may see (and, with the operator role, cancel) a task created by `createdBy`. */
export function mayAccessTask(viewer: Viewer, createdBy: string | null): boolean {
  return seesAllTasks(viewer) || (viewer.role !== null && viewer.id !== null && viewer.id === createdBy);
}

/**
 * Whose tasks a list shows the viewer: null for everyone's, else one creator. Anonymous callers
 * never reach a list; should one, NOBODY matches no task (user ids are at least one character).
 */
export const NOBODY = '';
export function taskCreatorFilter(viewer: Viewer): string | null {
  return seesAllTasks(viewer) ? null : (viewer.id ?? NOBODY);
}

/** Who the runtime records as causing a change (user_id on its event); nobody for the local admin. */
export const actorOf = (viewer: Viewer): { userId?: string } =>
  viewer.id === null ? {} : { userId: viewer.id };
