/**
 * Batched fields of a list's objects, loaded by the list's resolver before graphql-js runs them.
 *
 * Each batched field (Agent.metrics, Agent.state, Agent.recentTasks) has its own resolver calling
 * its DataLoader, so `{ agents { metrics { ... } } }` over 200 agents makes 200 promises for each
 * such field, each settled on its own, and graphql-js waits for every agent object through one
 * more promise; the whole half-built result lives through the round trip, long enough to survive
 * the young generation (the 200-agent dashboard spent ~45% of the server's CPU in GC). A list
 * field that knows its objects (Query.agents) instead looks at its own selection, asks each
 * selected field declaring `preloadExtension` which loader its resolver would use with the
 * arguments given, and loads all its objects' keys from it at once (`Loaders.preload`, the same
 * DataLoader batch and shared read as before: round trips do not change). The field resolvers
 * then take the value at hand (`Loaders.now`) and graphql-js completes the list synchronously.
 *
 * Only a speed-up: a field whose loader is not preloaded (another parent, arguments its resolver
 * refuses, a read that failed) loads as before, with the same answer and the same errors.
 */
import type DataLoader from 'dataloader';
import {
  Kind,
  type ArgumentNode,
  type FieldNode,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLResolveInfo,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Loaders } from './loaders.js';

/**
 * The loader the field's resolver would use with `args` (its parsed arguments), or null when it
 * would refuse them (it will say so itself) or loads nothing.
 */
export type Preload = (args: Record<string, unknown>, loaders: Loaders) => DataLoader<string, unknown> | null;

const PRELOAD = 'casPreload';

/** Field `extensions` declaring what the field preloads for a list of its parents. */
export const preloadExtension = (preload: Preload) => ({ [PRELOAD]: preload });

/**
 * Loads, for every key of `keys` (the list's objects, in order), what each field selected on them
 * with `preloadExtension` will read, in one batch per loader. Never throws: whatever cannot be
 * preloaded is left to the field's resolver.
 */
export async function preloadSelected(
  info: GraphQLResolveInfo,
  keys: readonly string[],
  loaders: Loaders,
): Promise<void> {
  if (keys.length === 0) return;
  const loads = new Set<DataLoader<string, unknown>>();
  try {
    const fields = fieldsOf(info);
    if (!fields) return;
    for (const node of info.fieldNodes) {
      if (node.selectionSet) collect(node.selectionSet, info, fields, loaders, loads, new Set());
    }
  } catch {
    return;
  }
  await Promise.all([...loads].map((loader) => loaders.preload(loader, keys)));
}

/** The fields of the object type the list holds, or null when it is not one. */
function fieldsOf(info: GraphQLResolveInfo): Record<string, GraphQLField<unknown, unknown>> | null {
  let type: unknown = info.returnType;
  while (type && typeof type === 'object' && 'ofType' in type) type = type.ofType;
  const withFields = type as { getFields?: () => Record<string, GraphQLField<unknown, unknown>> };
  // Interfaces and unions have fields of other types: only object types (no `resolveType`).
  if (typeof withFields.getFields !== 'function' || 'resolveType' in (type as object)) return null;
  return withFields.getFields();
}

/*
 * Arguments and directives are read here rather than with graphql-js's getArgumentValues: that
 * checks types with `instanceof`, which fails where a process holds two copies of graphql (vitest
 * loads both; see yoga.ts). The document has passed validation and the variables are coerced, so
 * what is left is a scalar literal's parseLiteral; anything else (enums, lists, input objects)
 * throws, and the field is not preloaded.
 */

/** Whether @skip / @include leave `node` in. */
function included(node: SelectionNode, info: GraphQLResolveInfo): boolean {
  for (const directive of node.directives ?? []) {
    const name = directive.name.value;
    if (name !== 'skip' && name !== 'include') continue;
    const value = literalOrVariable(
      directive.arguments?.find((a) => a.name.value === 'if'),
      info,
    );
    if (value === (name === 'skip')) return false;
  }
  return true;
}

/** A boolean literal or a variable's (coerced) value. */
function literalOrVariable(argument: ArgumentNode | undefined, info: GraphQLResolveInfo): unknown {
  const value = argument?.value;
  if (value?.kind === Kind.VARIABLE) return info.variableValues[value.name.value];
  if (value?.kind === Kind.BOOLEAN) return value.value;
  throw new Error('not a boolean');
}

/** The arguments of `node` as the field's resolver gets them. */
function argumentValues(
  field: GraphQLField<unknown, unknown>,
  node: FieldNode,
  info: GraphQLResolveInfo,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const argument of field.args) {
    const given = node.arguments?.find((a) => a.name.value === argument.name)?.value;
    if (given?.kind === Kind.VARIABLE && given.name.value in info.variableValues) {
      values[argument.name] = info.variableValues[given.name.value];
    } else if (given && given.kind !== Kind.VARIABLE) {
      values[argument.name] = given.kind === Kind.NULL ? null : scalarOf(argument).parseLiteral(given);
    } else if (argument.defaultValue !== undefined) {
      values[argument.name] = argument.defaultValue;
    }
  }
  return values;
}

function scalarOf(argument: GraphQLArgument): { parseLiteral: (node: unknown) => unknown } {
  let type: unknown = argument.type;
  while (type && typeof type === 'object' && 'ofType' in type) type = type.ofType;
  const named = type as { parseLiteral?: unknown; getValues?: unknown; getFields?: unknown };
  if (typeof named.parseLiteral !== 'function' || named.getValues || named.getFields) {
    throw new Error('not a scalar argument');
  }
  return named as { parseLiteral: (node: unknown) => unknown };
}

function collect(
  selectionSet: SelectionSetNode,
  info: GraphQLResolveInfo,
  fields: Record<string, GraphQLField<unknown, unknown>>,
  loaders: Loaders,
  loads: Set<DataLoader<string, unknown>>,
  visitedFragments: Set<string>,
): void {
  for (const selection of selectionSet.selections) {
    if (!included(selection, info)) continue;
    if (selection.kind === Kind.FIELD) {
      preloadField(selection, info, fields, loaders, loads);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      collect(selection.selectionSet, info, fields, loaders, loads, visitedFragments);
    } else {
      const name = selection.name.value;
      const fragment = info.fragments[name];
      if (!fragment || visitedFragments.has(name)) continue;
      visitedFragments.add(name);
      collect(fragment.selectionSet, info, fields, loaders, loads, visitedFragments);
    }
  }
}

function preloadField(
  node: FieldNode,
  info: GraphQLResolveInfo,
  fields: Record<string, GraphQLField<unknown, unknown>>,
  loaders: Loaders,
  loads: Set<DataLoader<string, unknown>>,
): void {
  const field = fields[node.name.value];
  const preload = field?.extensions[PRELOAD] as Preload | undefined;
  if (!field || !preload) return;
  let loader: DataLoader<string, unknown> | null;
  try {
    loader = preload(argumentValues(field, node, info), loaders);
  } catch {
    return; // arguments the resolver refuses: it answers with the error itself
  }
  if (loader) loads.add(loader);
}
