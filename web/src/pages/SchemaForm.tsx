/**
 * A form from an action's input JSON Schema: a field per property (strings, numbers, integers,
 * booleans, enums; required ones marked); anything else, or a schema that is not an object, is a
 * JSON text area.
 */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

/** The whole input as JSON, when the schema has no fields of its own. */
export const RAW_JSON = '__json';

const typeOf = (schema: JsonSchema) =>
  Array.isArray(schema.type) ? schema.type.find((type) => type !== 'null') : schema.type;
const isSimple = (schema: JsonSchema) =>
  Boolean(schema.enum) || ['string', 'number', 'integer', 'boolean'].includes(typeOf(schema) ?? '');

/** The object schema of an input (an optional input is `anyOf: [object, null]`), if any. */
function objectSchema(schema: JsonSchema | null): JsonSchema | null {
  if (!schema) return null;
  if (typeOf(schema) === 'object' && schema.properties) return schema;
  const branches = (schema.anyOf ?? schema.oneOf ?? []).filter((branch) => typeOf(branch) !== 'null');
  return branches.length === 1 ? objectSchema(branches[0]!) : null;
}

const fieldsOf = (schema: JsonSchema | null) => {
  const object = objectSchema(schema);
  return object ? Object.entries(object.properties!) : null;
};

export function initialValues(schema: JsonSchema | null): Record<string, string | boolean> {
  const fields = fieldsOf(schema);
  if (!fields) return { [RAW_JSON]: '{}' };
  return Object.fromEntries(
    fields.map(([name, field]) => {
      if (!isSimple(field)) return [name, field.default === undefined ? '' : JSON.stringify(field.default)];
      if (typeOf(field) === 'boolean') return [name, field.default === true];
      return [name, field.default === undefined ? '' : String(field.default)];
    }),
  );
}

/** The form's values as the action's input; throws with a message on a value that does not parse. */
export function valuesToInput(schema: JsonSchema | null, values: Record<string, string | boolean>): unknown {
  const fields = fieldsOf(schema);
  if (!fields) return JSON.parse(String(values[RAW_JSON] || '{}')) as unknown;
  const input: Record<string, unknown> = {};
  for (const [name, field] of fields) {
    const value = values[name];
    if (value === '' || value === undefined) continue;
    const type = typeOf(field);
    if (typeof value === 'boolean') input[name] = value;
    else if (type === 'number' || type === 'integer') input[name] = Number(value);
    else if (isSimple(field)) input[name] = value;
    else input[name] = JSON.parse(value) as unknown;
  }
  return input;
}

export function SchemaForm({
  schema,
  values,
  onChange,
}: {
  schema: JsonSchema | null;
  values: Record<string, string | boolean>;
  onChange: (name: string, value: string | boolean) => void;
}) {
  const fields = fieldsOf(schema);
  if (!fields) {
    return (
      <label>
        Input (JSON)
        <textarea
          name={RAW_JSON}
          rows={6}
          value={String(values[RAW_JSON] ?? '{}')}
          onChange={(event) => onChange(RAW_JSON, event.target.value)}
        />
      </label>
    );
  }
  if (fields.length === 0) return <p className="muted">This action takes no input.</p>;
  return (
    <>
      {fields.map(([name, field]) => {
        const required = objectSchema(schema)?.required?.includes(name) ?? false;
        const label = (
          <>
            {name}
            {required && <span aria-hidden="true"> *</span>}
            {field.description && <span className="muted"> {field.description}</span>}
          </>
        );
        const type = typeOf(field);
        if (field.enum) {
          return (
            <label key={name}>
              {label}
              <select
                name={name}
                required={required}
                value={String(values[name] ?? '')}
                onChange={(event) => onChange(name, event.target.value)}
              >
                {!required && <option value="">(none)</option>}
                {field.enum.map((option) => (
                  <option key={String(option)} value={String(option)}>
                    {String(option)}
                  </option>
                ))}
              </select>
            </label>
          );
        }
        if (type === 'boolean') {
          return (
            <label key={name} className="checkbox">
              <input
                type="checkbox"
                name={name}
                checked={values[name] === true}
                onChange={(event) => onChange(name, event.target.checked)}
              />
              {label}
            </label>
          );
        }
        if (type === 'number' || type === 'integer' || type === 'string') {
          return (
            <label key={name}>
              {label}
              <input
                name={name}
                type={type === 'string' ? 'text' : 'number'}
                step={type === 'integer' ? 1 : 'any'}
                min={field.minimum}
                max={field.maximum}
                required={required}
                value={String(values[name] ?? '')}
                onChange={(event) => onChange(name, event.target.value)}
              />
            </label>
          );
        }
        return (
          <label key={name}>
            {label} (JSON)
            <textarea
              name={name}
              rows={3}
              required={required}
              value={String(values[name] ?? '')}
              onChange={(event) => onChange(name, event.target.value)}
            />
          </label>
        );
      })}
    </>
  );
}
