/**
 * Subscriptions: commit-to-client latency with 1, 100 and 1,000 graphql-ws subscribers, and RSS
 * per idle subscription between two connection counts. Measured only when the schema has
 * subscription fields; otherwise the section says "not measured yet".
 */
import { schema } from '../src/graphql/schema.js';
import { progress } from './lib/progress.js';

export interface SubscriptionSettings {
  subscriberCounts: number[];
  events: number;
  idleConnections: number[];
}

export interface SubscriptionResults {
  measured: boolean;
  note: string;
  fields: string[];
}

export async function runSubscriptions(
  _databaseUrl: string,
  _settings: SubscriptionSettings,
): Promise<SubscriptionResults> {
  const fields = Object.keys(schema.getSubscriptionType()?.getFields() ?? {});
  if (fields.length === 0) {
    const note = 'not measured yet: the schema has no Subscription fields in this commit';
    progress(`subscriptions: ${note}`);
    return { measured: false, note, fields };
  }
  const note = `not measured yet: Subscription fields exist (${fields.join(', ')}) but the benchmark does not drive them yet`;
  progress(`subscriptions: ${note}`);
  return { measured: false, note, fields };
}
