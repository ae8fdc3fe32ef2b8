/**
 * Cross-site request forgery: a page on another origin can make a browser send "simple" requests
 * (form posts, GETs, text/plain) with the user's cookies and no CORS preflight. The API runs none of
 * them: POST bodies must be JSON (`application/json`) or `application/graphql`, which browsers only
 * send cross-origin after a preflight the CORS allow-list refuses; requests without such a body (GET)
 * must carry a header a form cannot set (yoga's CSRF prevention plugin).
 */
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

/** Any one of these headers marks a request as sent by a script, not a form (GET requests need one). */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'];

/** POST bodies the API parses. Form encodings and multipart (file uploads: none in this API) are refused. */
export const ACCEPTED_BODY_TYPES = ['application/json', 'application/graphql'];

const mediaType = (contentType: string | null) => contentType?.split(';')[0]?.trim().toLowerCase() ?? '';

/** 415 for POST bodies other than JSON or GraphQL, before yoga's form and multipart parsers see them. */
function useJsonOrGraphQLBodiesOnly(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'POST') return;
      const type = mediaType(request.headers.get('content-type'));
      if (ACCEPTED_BODY_TYPES.includes(type)) return;
      throw createGraphQLError(
        `POST bodies must be ${ACCEPTED_BODY_TYPES.join(' or ')}; "${type || 'none'}" is not accepted`,
        {
          extensions: {
            code: 'UNSUPPORTED_MEDIA_TYPE',
            http: { status: 415, headers: { accept: ACCEPTED_BODY_TYPES.join(', ') } },
          },
        },
      );
    },
  };
}

/** yoga's CSRF check, answering 403 FORBIDDEN with a message that names the headers. */
function useRequiredCsrfHeader(): Plugin {
  const prevention = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      try {
        return prevention.onRequestParse?.(payload);
      } catch {
        throw createGraphQLError(
          `GET requests must carry one of the headers ${CSRF_HEADERS.join(', ')} (CSRF protection)`,
          { extensions: { code: 'FORBIDDEN', http: { status: 403 } } },
        );
      }
    },
  };
}

export const csrfPlugins = (): Plugin[] => [useJsonOrGraphQLBodiesOnly(), useRequiredCsrfHeader()];
