/**
 * GraphQL Code Generator: typed documents for the example client, from schema.graphql (no server
 * needed, works offline). `npm run codegen` writes examples/gql/; `npm run codegen:check` writes
 * to a temporary folder and fails when examples/gql/ differs (see scripts/codegen-check.ts).
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

/** Where the client preset writes; scripts/codegen-check.ts points it elsewhere. */
const output = process.env.CAS_CODEGEN_OUT ?? 'examples/gql/';

const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/**/*.ts', '!examples/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    [output]: {
      preset: 'client',
      // persisted-documents.json lists every operation by sha256 (the APQ hash): the server's
      // trusted documents (CAS_TRUSTED_DOCUMENTS, docs/security.md).
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
        skipTypename: true,
        // ESM with NodeNext resolution: relative imports need their .js extension.
        emitLegacyCommonJSImports: false,
      },
    },
  },
};

export default config;
