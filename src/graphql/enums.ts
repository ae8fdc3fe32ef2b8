/**
 * Domain statuses are lower-case constants; GraphQL shows them UPPER_CASE. Each enum value maps to
 * the domain string, so resolvers pass domain values through unchanged.
 */
import { builder } from './builder.js';

export function upperCaseEnum<const Values extends readonly string[]>(
  name: string,
  values: Values,
  description: string,
) {
  return builder.enumType(name, {
    description,
    values: Object.fromEntries(values.map((value) => [value.toUpperCase(), { value }])) as Record<
      string,
      { value: Values[number] }
    >,
  });
}
