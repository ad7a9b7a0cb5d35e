// The one flag framework of the `moco` command. Each command declares a table of flags; the table
// makes the parser, the checks and the help text, so they cannot disagree. Parsing is strict where
// it must be (decimal numbers only, bounds, choices: every value is checked before any work starts)
// and forgiving where it can be (main_moco.py's spellings as aliases, negative numbers as values,
// "did you mean" for typos).
import { availableParallelism } from "node:os";

import { UsageError } from "../errors.js";
import {
  CHANNELS_LAST_SETTINGS,
  PRECISION_SETTINGS,
  type ChannelsLastSetting,
  type PrecisionOptions,
  type PrecisionSetting,
} from "../torch/index.js";
import { closest } from "../train/config.js";

export { UsageError };

export type FlagKind = "int" | "float" | "bool" | "string" | "list" | "nullableInt";

export interface Bounds {
  min?: number;
  /** min is excluded (> min). */
  minExclusive?: boolean;
  max?: number;
  /** Said after the bound in the message, e.g. "(4 × the 2 cores here)". */
  maxWhy?: string;
}

export interface Flag {
  flag: string;
  kind: FlagKind;
  help: string;
  /** Shown once in the help as "(default: ...)"; absent: no default. */
  default?: string | number | boolean | null | readonly number[];
  /** The default in words when it is not a value ("all cores"); shown instead of `default`. */
  defaultText?: string;
  short?: string;
  /** Other long spellings accepted (the official main_moco.py / main_lincls.py names). */
  aliases?: readonly string[];
  /** The value's name in the help (default: N for integers, X for floats, LIST, NAME). */
  meta?: string;
  /** Numbers (each element of a list): the allowed range. */
  bounds?: Bounds;
  /** Strings: the allowed values. */
  choices?: readonly string[];
  /** Strings: a check returning what is wrong, or null. */
  check?: (value: string) => string | null;
  /** pretrain: the configuration key the flag sets. */
  key?: string;
}

export type FlagValue = string | number | boolean | null | number[];

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function number(spec: Flag, text: string, display: string, integer: boolean): number {
  // Number() also reads 0x20, 0b1, "1e3" and " 7 "; a typo should not silently mean something else.
  if (integer ? !INTEGER.test(text) : !DECIMAL.test(text))
    throw new UsageError(
      `${display} expects a number, got '${text}' (${integer ? "a decimal integer" : "decimal, e.g. 0.03 or 1e-4"})`,
    );
  const n = Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n)))
    throw new UsageError(`${display} is out of range, got '${text}'`);
  const b = spec.bounds;
  if (b !== undefined) {
    if (b.min !== undefined && (b.minExclusive === true ? n <= b.min : n < b.min))
      throw new UsageError(`${display} must be ${b.minExclusive === true ? ">" : ">="} ${b.min}, got ${n}`);
    if (b.max !== undefined && n > b.max)
      throw new UsageError(`${display} must be <= ${b.max}${b.maxWhy === undefined ? "" : ` ${b.maxWhy}`}, got ${n}`);
  }
  return n;
}

/** A raw command-line value converted and checked; `display` is the flag as the user wrote it. */
export function convertFlag(spec: Flag, raw: string, display = `--${spec.flag}`): FlagValue {
  switch (spec.kind) {
    case "int":
      return number(spec, raw, display, true);
    case "float":
      return number(spec, raw, display, false);
    case "nullableInt":
      return raw === "none" ? null : number(spec, raw, display, true);
    case "list":
      return raw
        .split(",")
        .filter((part) => part.trim() !== "")
        .map((part) => number(spec, part.trim(), display, false));
    case "bool":
      if (raw === "true") return true;
      if (raw === "false") return false;
      throw new UsageError(`${display} is a switch (true or false), got '${raw}'`);
    case "string":
      if (spec.choices !== undefined && !spec.choices.includes(raw))
        throw new UsageError(`${display} must be one of ${spec.choices.join(", ")}, got '${raw}'`);
      {
        const problem = spec.check?.(raw) ?? null;
        if (problem !== null) throw new UsageError(`${display} ${problem}, got '${raw}'`);
      }
      return raw;
  }
}

export interface ParsedFlags {
  /** Values given on the command line, by flag name; the table's default otherwise (when it has one). */
  values: Map<string, FlagValue>;
  /** Flags given on the command line (not defaulted), by flag name. */
  given: Set<string>;
  /** How each given flag was written ("--learning-rate", "-b"), by flag name. */
  spelled: Map<string, string>;
  positionals: string[];
  help: boolean;
}

/** main_moco.py / main_lincls.py flags that have no one-to-one counterpart here: what to use instead. */
const OFFICIAL_HINTS: Readonly<Record<string, string>> = {
  j: "only moco pretrain has loader workers (--workers); here images decode on libuv's thread pool (UV_THREADPOOL_SIZE) and --threads sets libtorch's threads",
  workers:
    "only moco pretrain has loader workers (--workers); here images decode on libuv's thread pool (UV_THREADPOOL_SIZE) and --threads sets libtorch's threads",
  gpu: "use --device cuda:N",
  "start-epoch": "use --resume CHECKPOINT (the epoch is read from it)",
  "dist-url": "several processes: --nproc-per-node, --nnodes, --node-rank, --master-addr, --master-port",
  "dist-backend": "several processes: --nproc-per-node, --nnodes, --node-rank, --master-addr, --master-port",
  "world-size": "several processes: --nproc-per-node, --nnodes, --node-rank, --master-addr, --master-port",
  rank: "several processes: --nproc-per-node, --nnodes, --node-rank, --master-addr, --master-port",
  "multiprocessing-distributed": "several processes: --nproc-per-node (like torchrun)",
};

interface Lookup {
  spec: Flag;
  negated: boolean;
}

function lookupTable(table: readonly Flag[]): { long: Map<string, Lookup>; short: Map<string, Flag> } {
  const long = new Map<string, Lookup>();
  const short = new Map<string, Flag>();
  const add = (name: string, entry: Lookup) => {
    if (long.has(name)) throw new Error(`flag table: --${name} twice`);
    long.set(name, entry);
  };
  for (const spec of table) {
    for (const name of [spec.flag, ...(spec.aliases ?? [])]) {
      add(name, { spec, negated: false });
      if (spec.kind === "bool") add(`no-${name}`, { spec, negated: true });
    }
    if (spec.short !== undefined) short.set(spec.short, spec);
  }
  return { long, short };
}

/** Parses argv against the table; every value is converted and checked here. */
export function parseFlags(argv: readonly string[], table: readonly Flag[], command = "moco"): ParsedFlags {
  const { long, short } = lookupTable(table);
  const values = new Map<string, FlagValue>();
  const given = new Set<string>();
  const spelled = new Map<string, string>();
  const positionals: string[] = [];
  let help = false;
  const negatedGiven = new Map<string, boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    let spec: Flag | undefined;
    let display: string;
    let inline: string | undefined;
    let negated = false;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      display = `--${name}`;
      const found = long.get(name) ?? long.get(name.replace(/_/g, "-"));
      if (found === undefined) {
        const hint = OFFICIAL_HINTS[name.replace(/_/g, "-")];
        const guess = hint === undefined ? closest(name, long.keys()) : null;
        throw new UsageError(
          `unknown option '--${name}'` +
            (hint === undefined ? "" : `: ${hint}`) +
            (guess === null ? "" : ` (did you mean --${guess}?)`) +
            ` (see moco ${command} --help)`,
        );
      }
      spec = found.spec;
      negated = found.negated;
    } else if (arg.startsWith("-") && arg.length > 1 && !/^-[\d.]/.test(arg)) {
      const letter = arg[1] as string;
      display = `-${letter}`;
      spec = short.get(letter);
      if (spec === undefined) {
        const hint = OFFICIAL_HINTS[letter];
        throw new UsageError(
          `unknown option '-${letter}'${hint === undefined ? "" : `: ${hint}`} (see moco ${command} --help)`,
        );
      }
      if (arg.length > 2) inline = arg.slice(arg[2] === "=" ? 3 : 2);
    } else {
      positionals.push(arg);
      continue;
    }
    if (spec.kind === "bool") {
      if (inline !== undefined && negated) throw new UsageError(`${display} takes no value, got '${inline}'`);
      const value = inline === undefined ? !negated : (convertFlag(spec, inline, display) as boolean);
      const before = negatedGiven.get(spec.flag);
      if (before !== undefined && before !== value)
        throw new UsageError(`--${spec.flag} and --no-${spec.flag} both given`);
      negatedGiven.set(spec.flag, value);
      values.set(spec.flag, value);
    } else {
      let raw = inline;
      if (raw === undefined) {
        // The next argument is the value whatever it looks like: `--lr -1` is the number -1.
        raw = argv[i + 1];
        if (raw === undefined) throw new UsageError(`${display} needs a value`);
        // `--out --lr 3` forgot the value; `--lr -1` did not (a single dash is a value's sign).
        if (raw.startsWith("--") && raw.length > 2)
          throw new UsageError(`${display} needs a value, got the option '${raw}'`);
        i++;
      }
      values.set(spec.flag, convertFlag(spec, raw, display));
    }
    given.add(spec.flag);
    spelled.set(spec.flag, display);
  }
  for (const spec of table) {
    if (values.has(spec.flag) || spec.default === undefined) continue;
    values.set(spec.flag, Array.isArray(spec.default) ? [...(spec.default as number[])] : (spec.default as FlagValue));
  }
  return { values, given, spelled, positionals, help };
}

function showDefault(value: Flag["default"]): string {
  if (value === null) return "none";
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.join(",");
  return String(value);
}

function metaOf(spec: Flag): string {
  if (spec.meta !== undefined) return spec.meta;
  switch (spec.kind) {
    case "int":
    case "nullableInt":
      return "N";
    case "float":
      return "X";
    case "list":
      return "LIST";
    default:
      return "NAME";
  }
}

/**
 * Help lines: each flag once, its default once. `defaults` overrides the table's defaults (pretrain
 * shows the chosen preset's values).
 */
export function flagHelp(
  table: readonly Flag[],
  defaults?: (spec: Flag) => { value: Flag["default"] } | undefined,
): string {
  return table
    .map((spec) => {
      const value = defaults === undefined ? spec.default : (defaults(spec) ?? { value: spec.default }).value;
      const long = spec.kind === "bool" ? `--[no-]${spec.flag}` : `--${spec.flag} ${metaOf(spec)}`;
      const name = `${spec.short === undefined ? "    " : `-${spec.short}, `}${long}`;
      const aliases =
        spec.aliases === undefined || spec.aliases.length === 0
          ? ""
          : ` (also ${spec.aliases.map((a) => `--${a}`).join(", ")})`;
      const shown =
        spec.defaultText !== undefined
          ? ` (default: ${spec.defaultText})`
          : value === undefined
            ? ""
            : ` (default: ${showDefault(value)})`;
      const line = `  ${name.padEnd(30)} ${spec.help}${aliases}${shown}`;
      return line;
    })
    .join("\n");
}

/** Typed access to parsed values, with clear errors for a missing required flag. */
export class FlagReader {
  constructor(readonly parsed: ParsedFlags) {}

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
  /** One of `choices` (already checked by the parser when the table lists them). */
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
export function parseCommand(
  argv: readonly string[],
  spec: CommandSpec,
): { flags: FlagReader; positionals: string[] } | null {
  // --help wins over any other mistake on the line: `moco knn --knn-k 0 --help` shows the help.
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(spec.help);
    return null;
  }
  const parsed = parseFlags(argv, spec.flags, spec.name);
  const { max, what } = spec.positionals;
  if (parsed.positionals.length > max)
    throw new UsageError(
      max === 0
        ? `${spec.name} takes no positional arguments, got '${parsed.positionals[0]}'`
        : `${spec.name} takes ${what}, got ${parsed.positionals.length} arguments`,
    );
  return { flags: new FlagReader(parsed), positionals: parsed.positionals };
}

// ---- flags several commands share ------------------------------------------------------------

const CORES = availableParallelism();

/** --threads: more than a few threads per core only slows libtorch down; far more is a typo. */
export const THREADS_FLAG: Flag = {
  flag: "threads",
  kind: "nullableInt",
  help: "intra-op threads",
  defaultText: "all cores",
  bounds: { min: 1, max: 4 * CORES, maxWhy: `(4 × the ${CORES} cores here)` },
};

const DEVICE = /^(cpu|cuda(:\d+)?)$/;

/** --device: where the network runs, named as in PyTorch. */
export const DEVICE_FLAG: Flag = {
  flag: "device",
  kind: "string",
  meta: "DEVICE",
  help: "where the network runs: cpu, cuda or cuda:N",
  default: "cpu",
  check: (value) => (DEVICE.test(value) ? null : "must be cpu, cuda or cuda:N"),
};

/** --precision: the forward pass in bfloat16 autocast or float32 (src/torch/precision.ts decides auto). */
export const PRECISION_FLAG: Flag = {
  flag: "precision",
  kind: "string",
  choices: PRECISION_SETTINGS,
  help: "forward pass: auto (bf16 on a GPU, or where the CPU computes it natively: avx512_bf16 or AMX) | fp32 | bf16 | fp16 (GPU only, with loss scaling)",
  default: "auto",
};

/** --channels-last: activations and conv weights NHWC in memory. */
export const CHANNELS_LAST_FLAG: Flag = {
  flag: "channels-last",
  kind: "string",
  choices: CHANNELS_LAST_SETTINGS,
  help: "channels-last activations and conv weights: auto (with AVX-512) | on | off",
  default: "auto",
};

/** The precision policy a command's --precision and --channels-last ask for (both already checked). */
export function precisionFromFlags(flags: FlagReader): PrecisionOptions {
  return {
    precision: flags.choice<PrecisionSetting>("precision", PRECISION_SETTINGS),
    channelsLast: flags.choice<ChannelsLastSetting>("channels-last", CHANNELS_LAST_SETTINGS),
    device: flags.optionalString("device") ?? "cpu",
  };
}
