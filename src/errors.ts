/**
 * Expected failures carry a code the API turns into `extensions.code`; anything else is a bug
 * and is masked from clients.
 */
export const ErrorCode = {
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  CONFLICT: 'CONFLICT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  UNAVAILABLE: 'UNAVAILABLE',
  /** A subscriber fell too far behind; it resumes from the last cursor it received. */
  SUBSCRIPTION_OVERFLOW: 'SUBSCRIPTION_OVERFLOW',
  /** A cursor points before the history retention kept; start again without a cursor. */
  CURSOR_EXPIRED: 'CURSOR_EXPIRED',
  /** A model-backed action was requested while no model provider is configured (CAS_LLM_*). */
  PROVIDER_NOT_CONFIGURED: 'PROVIDER_NOT_CONFIGURED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CasError extends Error {
  override readonly name = 'CasError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) =>
  new CasError(ErrorCode.NOT_FOUND, `${what} "${id}" was not found`);
export const badInput = (message: string, details?: Record<string, unknown>) =>
  new CasError(ErrorCode.BAD_USER_INPUT, message, details);
export const conflict = (message: string) => new CasError(ErrorCode.CONFLICT, message);
export const notImplemented = (what: string) =>
  new CasError(ErrorCode.NOT_IMPLEMENTED, `${what} is not implemented yet`);

export const isCasError = (error: unknown): error is CasError => error instanceof CasError;
