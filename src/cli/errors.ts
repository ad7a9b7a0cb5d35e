// The one place where the `moco` command turns an error into what the user sees: a message on
// stderr and an exit status. 2: the command line or configuration is wrong (fix the input and rerun);
// 1: the run failed (data, checkpoint, libtorch, a lost worker); 130 stays the Ctrl-C status.
import { DatasetNameError } from "../data/registry.js";
import { MocoError, UsageError } from "../errors.js";
import { MoCoSettingsError } from "../moco/settings.js";
import { PrecisionError } from "../torch/index.js";
import { ConfigError } from "../train/config.js";

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Classes whose errors mean "the input is wrong", not "the run failed". */
const USAGE_CLASSES: readonly (abstract new (...args: never[]) => MocoError)[] = [
  UsageError,
  ConfigError,
  MoCoSettingsError,
  DatasetNameError,
  PrecisionError,
];

export function exitCodeFor(error: unknown): number {
  return USAGE_CLASSES.some((c) => error instanceof c) ? EXIT_USAGE : EXIT_FAILURE;
}

/** The line(s) printed after "moco: ". Errors of ours carry their whole story in the message; others keep their class name. */
export function messageFor(error: unknown): string {
  if (error instanceof MocoError) return error.message;
  if (error instanceof Error) return error.name === "Error" ? error.message : `${error.name}: ${error.message}`;
  return String(error);
}

/** Reports `error` on stderr and returns the exit status. */
export function reportError(error: unknown, write: (text: string) => void = (t) => process.stderr.write(t)): number {
  write(`moco: ${messageFor(error)}\n`);
  return exitCodeFor(error);
}
