/**
 * GraphQL Code Generator: typed documents from schema.graphql (no server needed, works offline),
 * for two clients: the example client (examples/gql/) and the dashboard (web/src/gql/).
 * `npm run codegen` writes both; `npm run codegen:check` writes them under a temporary folder and
 * fails when the committed ones differ (see scripts/codegen-check.ts).
 */
import type { CodegenConfig } from '@graphql-codegen/cli';
import type { Types } from '@graphql-codegen/plugin-helpers';

/** Prefix of both outputs; scripts/codegen-check.ts points it at a temporary folder. */
const outRoot = process.env.CAS_CODEGEN_OUT_ROOT ?? '';

const clientPreset = (documents: string[], config: Record<string, unknown> = {}): Types.ConfiguredOutput => ({
  preset: 'client',
  documents,
  // persisted-documents.json lists every operation by sha256 (the APQ hash): the server's
  // trusted documents (CAS_TRUSTED_DOCUMENTS, docs/security.md).
  presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
    skipTypename: true,
    ...config,
  },
});

const config: CodegenConfig = {
  schema: 'schema.graphql',
  ignoreNoDocuments: false,
  generates: {
    // ESM with NodeNext resolution: relative imports need their .js extension.
    [`${outRoot}examples/gql/`]: clientPreset(['examples/**/*.ts', '!examples/gql/**'], {
      emitLegacyCommonJSImports: false,
    }),
    // The browser bundle: documents as strings (graphql-ws sends strings), so `graphql` itself
    // stays out of the page.
    [`${outRoot}web/src/gql/`]: clientPreset(['web/src/**/*.{ts,tsx}', '!web/src/gql/**'], {
      documentMode: 'string',
    }),
  },
};

export default config;
