/** Hash routes (#/tasks/<id>): the server serves one page, and every link works offline. */
import { useEffect, useState } from 'react';

export type Route =
  | { page: 'agents' }
  | { page: 'tasks' }
  | { page: 'task'; id: string }
  | { page: 'run'; agentId?: string }
  | { page: 'workflows' }
  | { page: 'workflow'; id: string };

export function parseRoute(hash: string): Route {
  const [page, id] = hash.replace(/^#\/?/, '').split('/');
  if (page === 'tasks' && id) return { page: 'task', id: decodeURIComponent(id) };
  if (page === 'tasks') return { page: 'tasks' };
  if (page === 'run') return { page: 'run', ...(id ? { agentId: decodeURIComponent(id) } : {}) };
  if (page === 'workflows' && id) return { page: 'workflow', id: decodeURIComponent(id) };
  if (page === 'workflows') return { page: 'workflows' };
  return { page: 'agents' };
}

export const taskHref = (id: string) => `#/tasks/${encodeURIComponent(id)}`;
export const workflowHref = (id: string) => `#/workflows/${encodeURIComponent(id)}`;

export function navigate(href: string) {
  location.hash = href;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
