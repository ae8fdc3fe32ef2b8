/**
 * The error of a failed Supabase request, apart from the driver so start-up error reporting can
 * recognise it without loading supabase-js.
 */

/** A PostgREST error body, or what postgrest-js makes of a failed fetch (status 0). */
export interface PostgrestErrorBody {
  code?: string;
  message?: string;
  details?: string | null;
  hint?: string | null;
}

/** A request to Supabase that failed for a reason other than the caller's input. */
export class SupabaseError extends Error {
  override readonly name = 'SupabaseError';
  constructor(
    message: string,
    /** HTTP status; 0 when no response arrived. */
    readonly status: number,
    /** SQLSTATE or PostgREST code (PGRSTxxx), when the response had one. */
    readonly code: string | null,
    readonly body?: PostgrestErrorBody,
  ) {
    super(message);
  }
}
