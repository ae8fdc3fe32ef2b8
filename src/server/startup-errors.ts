/**
 * What a failed start tells a person: one or two lines saying what is wrong and what to do, for
 * the failures people meet (a database that is down, missing or refuses the login, a port in use,
 * a data folder in use, a wrong Supabase URL or key, an agent file that cannot be used). The stack only at LOG_LEVEL=debug.
 */
import { AgentLoadError } from '../agents/loader.js';
import { ConfigError } from '../config.js';
import { DataDirInUseError } from '../db/pglite.js';
import { SupabaseError } from '../db/supabase-error.js';
import { ErrorCode, isCasError } from '../errors.js';

/** What the message may name: where the process listens and which database it uses. */
export interface StartupContext {
  port?: number;
  host?: string;
  databaseUrl?: string;
}

interface ErrorFields {
  code?: unknown;
  syscall?: unknown;
  address?: unknown;
  port?: unknown;
  message: string;
}

/** DATABASE_URL as it may be printed: without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function databaseName(url: string | undefined): string {
  if (!url) return 'the database';
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || 'the database';
  } catch {
    return 'the database';
  }
}

/** The lines for a failure we recognise, or null. */
function knownFailure(error: ErrorFields, context: StartupContext): string | null {
  const url = context.databaseUrl ? redactUrl(context.databaseUrl) : 'the database';
  switch (error.code) {
    case 'EADDRINUSE':
      return `port ${context.port ?? error.port} is already in use on ${context.host ?? error.address} (is another server running?)\nstop it, or set PORT to a free port`;
    case 'EACCES':
      if (error.syscall === 'listen')
        return `not allowed to listen on port ${context.port ?? error.port}\nset PORT to a port above 1023`;
      return null;
    case 'ECONNREFUSED':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach the database at ${url} (${error.code})\nstart PostgreSQL there, or fix DATABASE_URL`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${url} (${error.code})\nfix the host name in DATABASE_URL`;
    // SQLSTATEs: invalid_catalog_name, invalid_password, invalid_authorization_specification.
    case '3D000':
      return `${error.message} (${url})\ncreate it (createdb ${databaseName(context.databaseUrl)}), or fix the database name in DATABASE_URL`;
    case '28P01':
    case '28000':
      return `the database refused the login: ${error.message} (${url})\nfix the user name or password in DATABASE_URL`;
    default:
      return null;
  }
}

/**
 * The lines to print for a failed start. `understood` is false for failures we do not know, whose
 * stack may help: the caller then says how to see it.
 */
export function describeStartupError(
  error: unknown,
  context: StartupContext = {},
): { lines: string; understood: boolean } {
  if (error instanceof ConfigError)
    return { lines: `${error.message}\nsee .env.example for every variable`, understood: true };
  if (error instanceof DataDirInUseError || error instanceof SupabaseError || error instanceof AgentLoadError)
    return { lines: error.message, understood: true };
  if (isCasError(error) && error.code === ErrorCode.UNAVAILABLE)
    return { lines: error.message, understood: true };
  if (error instanceof Error) {
    const known = knownFailure(error as ErrorFields, context);
    if (known) return { lines: known, understood: true };
    return { lines: `failed to start: ${error.message}`, understood: false };
  }
  return { lines: `failed to start: ${String(error)}`, understood: false };
}
