// Ctrl-C for long jobs: the first one asks the job to stop at its next safe point (it then writes
// its checkpoint), a second one quits at once with status 130.

export interface Interrupt {
  readonly signal: AbortSignal;
  /** Stops listening for Ctrl-C. */
  release(): void;
}

/** Listens for Ctrl-C until released; `stopping` says what the job does before it exits. */
export function listenForInterrupt(stopping: string): Interrupt {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    process.stderr.write(`\nmoco: ${stopping} (Ctrl-C again to quit now)\n`);
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, release: () => process.off("SIGINT", onSigint) };
}
