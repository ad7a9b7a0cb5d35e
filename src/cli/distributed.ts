// A `moco pretrain` worker of a distributed job: joins the process group that the env:// variables
// describe (set by our launcher, torchrun-style tools, SLURM or Kubernetes wrappers).
import { TorchError } from "../errors.js";
import { DistributedError, dataParallel, initDistributed, isDistributedEnv, type ProcessGroup } from "../dist/index.js";
import type { DataParallel } from "../train/parallel.js";

export interface Worker {
  parallel: DataParallel;
  group: ProcessGroup;
  dispose(): void;
}

/** Joins the job when the environment describes one; null for a plain one-process run. */
export async function joinJob(timeoutSeconds: number): Promise<Worker | null> {
  if (!isDistributedEnv()) return null;
  const { group, env } = await initDistributed({ timeoutMs: Math.round(timeoutSeconds * 1000) });
  // Started by our launcher: when it dies (even by SIGKILL), this worker must not stay behind.
  const launcher = Number(process.env["MOCO_LAUNCHER_PID"]);
  const watch = Number.isSafeInteger(launcher)
    ? setInterval(() => {
        if (process.ppid !== launcher) {
          process.stderr.write(`moco: rank ${group.rank}: the launcher is gone; exiting\n`);
          process.exit(1);
        }
      }, 1000).unref()
    : undefined;
  return {
    parallel: dataParallel(group, { localWorldSize: env.localWorldSize ?? 1 }),
    group,
    dispose: () => {
      clearInterval(watch);
      group.dispose();
    },
  };
}

/** A collective's failure, said as what it means for the run. */
export function explainFailure(error: unknown, group: ProcessGroup, checkpoint: string): Error {
  if (!(error instanceof TorchError) || !error.op.startsWith("dist")) return error as Error;
  return new DistributedError(
    `rank ${group.rank} of ${group.worldSize} lost the other workers (one died, hung, or was stopped): ` +
      `${error.message}\nThe last checkpoint (${checkpoint}) is intact: continue with --resume ${checkpoint}`,
    { cause: error },
  );
}
