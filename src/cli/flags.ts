// Flag tables for the evaluation and interop commands: one table per command makes both the parser
// and the help text, so they cannot disagree. Values are checked and converted here; what they mean
// is checked by the library the command calls.
import { parseArgs } from "node:util";

export type FlagKind = "int" | "float" | "bool" | "string" | "list" | "nullableInt";

export interface Flag {
  flag: string;
  kind: FlagKind;
  help: string;
  /** Shown in the help; absent: no default (the flag is optional or required, as the help says). */
  default?: string | number | boolean | null | readonly number[];
  short?: string;
  /** The value's name in the help (default NAME for strings, N for numbers). */
  meta?: string;
}

export class UsageError extends Error {}

export type FlagValue = string | number | boolean | null | number[];

function convert(spec: Flag, raw: string): FlagValue {
  const number = (text: string) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n))
      throw new UsageError(`--${spec.flag} expects a number, got '${raw}'`);
    if ((spec.kind === "int" || spec.kind === "nullableInt") && !Number.isSafeInteger(n))
      throw new UsageError(`--${spec.flag} expects an integer, got '${raw}'`);
    return n;
  };
  switch (spec.kind) {
    case "int":
    case "float":
      return number(raw);
    case "nullableInt":
      return raw === "none" ? null : number(raw);
    case "list":
      return raw
        .split(",")
        .filter((part) => part.trim() !== "")
        .map(number);
    default:
      return raw;
  }
}

export interface ParsedFlags {
  /** Values given on the command line, by flag name; the table's default otherwise (when it has one). */
  values: Map<string, FlagValue>;
  /** Flags given on the command line (not defaulted). */
  given: Set<string>;
  positionals: string[];
  help: boolean;
}

export function parseFlags(argv: string[], table: readonly Flag[]): ParsedFlags {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const spec of table) {
    options[spec.flag] = {
      type: spec.kind === "bool" ? "boolean" : "string",
      ...(spec.short ? { short: spec.short } : {}),
    };
    if (spec.kind === "bool") options[`no-${spec.flag}`] = { type: "boolean" };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  const values = new Map<string, FlagValue>();
  const givenFlags = new Set<string>();
  for (const spec of table) {
    const given = raw[spec.flag];
    if (given !== undefined || raw[`no-${spec.flag}`] !== undefined) givenFlags.add(spec.flag);
    if (spec.kind === "bool") {
      if (given === true && raw[`no-${spec.flag}`] === true)
        throw new UsageError(`--${spec.flag} and --no-${spec.flag} both given`);
      if (given === true) values.set(spec.flag, true);
      else if (raw[`no-${spec.flag}`] === true) values.set(spec.flag, false);
      else if (spec.default !== undefined) values.set(spec.flag, spec.default as boolean);
    } else if (typeof given === "string") {
      values.set(spec.flag, convert(spec, given));
    } else if (spec.default !== undefined) {
      values.set(
        spec.flag,
        Array.isArray(spec.default) ? [...(spec.default as number[])] : (spec.default as FlagValue),
      );
    }
  }
  return { values, given: givenFlags, positionals: parsed.positionals, help: raw["help"] === true };
}

function showDefault(value: Flag["default"]): string {
  if (value === null) return "none";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

export function flagHelp(table: readonly Flag[]): string {
  return table
    .map((spec) => {
      const meta = spec.meta ?? (spec.kind === "string" ? "NAME" : spec.kind === "list" ? "LIST" : "N");
      const name = `${spec.short ? `-${spec.short}, ` : "    "}--${spec.kind === "bool" ? `[no-]${spec.flag}` : `${spec.flag} ${meta}`}`;
      const shown = spec.default === undefined ? "" : ` (default: ${showDefault(spec.default)})`;
      return `  ${name.padEnd(30)} ${spec.help}${shown}`;
    })
    .join("\n");
}

/** Typed access to parsed values, with clear errors for a missing required flag. */
export class FlagReader {
  constructor(private readonly parsed: ParsedFlags) {}

  has(flag: string): boolean {
    return this.parsed.values.has(flag);
  }
  given(flag: string): boolean {
    return this.parsed.given.has(flag);
  }
  string(flag: string): string {
    const value = this.parsed.values.get(flag);
    if (typeof value !== "string") throw new UsageError(`--${flag} is required`);
    return value;
  }
  optionalString(flag: string): string | null {
    const value = this.parsed.values.get(flag);
    return typeof value === "string" ? value : null;
  }
  number(flag: string): number {
    const value = this.parsed.values.get(flag);
    if (typeof value !== "number") throw new UsageError(`--${flag} is required`);
    return value;
  }
  optionalNumber(flag: string): number | null {
    const value = this.parsed.values.get(flag);
    return typeof value === "number" ? value : null;
  }
  bool(flag: string): boolean {
    return this.parsed.values.get(flag) === true;
  }
  list(flag: string): number[] {
    const value = this.parsed.values.get(flag);
    return Array.isArray(value) ? value : [];
  }
  /** One of `choices`, or an error listing them. */
  choice<T extends string>(flag: string, choices: readonly T[]): T {
    const value = this.string(flag);
    if (!(choices as readonly string[]).includes(value))
      throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, got '${value}'`);
    return value as T;
  }
}

export interface CommandSpec {
  name: string;
  flags: readonly Flag[];
  help: string;
  /** The most positional arguments the command takes, and what they are (for the message). */
  positionals: { max: number; what: string };
}

/** Parses a command line; null when --help was asked for (and printed). */
export function parseCommand(argv: string[], spec: CommandSpec): { flags: FlagReader; positionals: string[] } | null {
  const parsed = parseFlags(argv, spec.flags);
  if (parsed.help) {
    console.log(spec.help);
    return null;
  }
  const { max, what } = spec.positionals;
  if (parsed.positionals.length > max)
    throw new UsageError(
      max === 0
        ? `${spec.name} takes no positional arguments, got '${parsed.positionals[0]}'`
        : `${spec.name} takes ${what}, got ${parsed.positionals.length} arguments`,
    );
  return { flags: new FlagReader(parsed), positionals: parsed.positionals };
}
