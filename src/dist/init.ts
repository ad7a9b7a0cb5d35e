// initDistributed(): the process group of a job described by env:// variables.
import { readDistEnv, type DistEnv } from "./env.js";
import { ProcessGroup, type Backend } from "./process-group.js";

export interface InitOptions {
  /** Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  backend?: Backend;
  /** Rendezvous and collective timeout (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** Joins the job that MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE describe. */
export async function initDistributed(options: InitOptions = {}): Promise<{ group: ProcessGroup; env: DistEnv }> {
  const env = readDistEnv(options.env);
  const group = await ProcessGroup.create({
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    rank: env.rank,
    worldSize: env.worldSize,
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(env.socketInterface === null ? {} : { interface: env.socketInterface }),
  });
  return { group, env };
}
