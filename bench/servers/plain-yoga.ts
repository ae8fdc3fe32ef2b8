/**
 * The peer for the API's own overhead: plain graphql-yoga with its defaults (no plugins of ours, no
 * database), serving `{ __typename }` at /graphql on node:http. PORT and HOST as for the real server.
 */
import { createServer } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({
  schema: createSchema({ typeDefs: 'type Query { ok: Boolean! }', resolvers: { Query: { ok: () => true } } }),
  graphqlEndpoint: '/graphql',
  logging: false,
});

createServer(yoga).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1', () =>
  console.log(`plain yoga listening on ${process.env.PORT}`),
);
