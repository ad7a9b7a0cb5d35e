// The one error hierarchy of moco-ts (docs/architecture.md, "Errors"). Every error the library
// throws on purpose is a MocoError: `name` is the class's name (what a stack trace and
// `console.error` show), `code` a stable machine-readable string (what programs branch on, like
// Node's `ERR_*` codes). The CLI maps classes to messages and exit codes in one place.
// This file sits below every layer (it imports nothing), so any layer may throw these.

export interface MocoErrorOptions {
  cause?: unknown;
}

export class MocoError extends Error {
  override name = "MocoError";
  /** Stable and machine-readable, e.g. "ERR_TORCH", "ERR_CONFIG". */
  readonly code: string;
  constructor(code: string, message: string, options?: MocoErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * An error raised by libtorch or by the native layer's argument checks. `op` names the native entry
 * point (e.g. "matmul", "distAllReduce"); the message is "op: libtorch's reason (first line)".
 */
export class TorchError extends MocoError {
  override name = "TorchError";
  readonly op: string;
  constructor(op: string, message: string, options?: MocoErrorOptions) {
    super("ERR_TORCH", message, options);
    this.op = op;
  }
}

/** A mistake on the command line; the message names the flag or argument as the user wrote it. */
export class UsageError extends MocoError {
  override name = "UsageError";
  constructor(message: string) {
    super("ERR_USAGE", message);
  }
}
