/**
 * Declared in a subscription field's `extensions`: its subscribers without `after` (live only) may
 * share one stream and one execution per event when their documents, variables and viewers are
 * the same. The graphql-ws server reads it (src/server/shared-subscriptions.ts says when and why).
 */
export const SHARE_LIVE_ONLY = { casShare: 'live-only' } as const;
