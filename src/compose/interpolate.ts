// Variable interpolation as the compose specification defines it: $VAR, ${VAR},
// ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt},
// defaults that are themselves interpolated, and $$ for a literal $. Pure.

export type Variables = Readonly<Record<string, string | undefined>>;

/** A variable that must be set is not; names the field where it was used. */
export class InterpolationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "InterpolationError";
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** The index of the `}` closing the `${` that starts at `open`, counting nested `${...}`. */
function closingBrace(text: string, open: number, field: string): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "{") {
      depth++;
      i++;
    } else if (text[i] === "}" && --depth === 0) return i;
  }
  throw new InterpolationError(field, `unclosed "\${" in "${text}"`);
}

function expandBraced(body: string, vars: Variables, field: string): string {
  const name = NAME.exec(body)?.[0];
  if (!name) throw new InterpolationError(field, `invalid interpolation "\${${body}}"`);
  const rest = body.slice(name.length);
  const value = vars[name];
  if (rest === "") return value ?? "";
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw new InterpolationError(field, `invalid interpolation "\${${body}}"`);
  const arg = (): string => interpolateString(rest.slice(op.length), vars, field);
  const unset = op.startsWith(":") ? value === undefined || value === "" : value === undefined;
  switch (op.at(-1)) {
    case "-":
      return unset ? arg() : (value ?? "");
    case "+":
      return unset ? "" : arg();
    default:
      if (unset) throw new InterpolationError(field, arg() || `required variable ${name} is missing a value`);
      return value ?? "";
  }
}

/** One string with every reference replaced. */
export function interpolateString(text: string, vars: Variables, field: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== "$") {
      out += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "{") {
      const close = closingBrace(text, i, field);
      out += expandBraced(text.slice(i + 2, close), vars, field);
      i = close;
    } else {
      const name = NAME.exec(text.slice(i + 1))?.[0];
      if (!name) out += "$";
      else {
        out += vars[name] ?? "";
        i += name.length;
      }
    }
  }
  return out;
}

/** Every string value in a parsed YAML tree (keys are left alone), naming fields by their path. */
export function interpolate(value: unknown, vars: Variables, field = ""): unknown {
  if (typeof value === "string") return interpolateString(value, vars, field);
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, vars, `${field}[${i}]`));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, vars, field ? `${field}.${key}` : key)]));
  }
  return value;
}
