// The env:// convention of torch.distributed (and torchrun, SLURM or Kubernetes wrappers): a
// process learns its place in the job from MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK.
import { MocoError } from "../errors.js";

export interface DistEnv {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  /** This process's index on its machine (selects cuda:LOCAL_RANK); 0 when unset. */
  localRank: number;
  /** Processes on this machine (LOCAL_WORLD_SIZE), used to split the cores; null when unset. */
  localWorldSize: number | null;
  /** GLOO_SOCKET_IFNAME: the network interface Gloo uses, or null for the default. */
  socketInterface: string | null;
}

export class DistEnvError extends MocoError {
  override name = "DistEnvError";
  constructor(message: string) {
    super("ERR_DIST_ENV", message);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** True when the environment describes a distributed job (WORLD_SIZE or RANK is set). */
export function isDistributedEnv(env: Env = process.env): boolean {
  return env["WORLD_SIZE"] !== undefined || env["RANK"] !== undefined;
}

function integer(env: Env, name: string, min: number, max: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") {
    if (fallback !== undefined) return fallback;
    throw new DistEnvError(`distributed run: ${name} is not set (env:// needs MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)`);
  }
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new DistEnvError(`distributed run: ${name} must be an integer in [${min}, ${max}], got '${raw}'`);
  }
  return value;
}

/** Reads and checks the env:// variables; throws DistEnvError naming the variable that is wrong. */
export function readDistEnv(env: Env = process.env): DistEnv {
  const masterAddr = env["MASTER_ADDR"];
  if (masterAddr === undefined || masterAddr.trim() === "") {
    throw new DistEnvError("distributed run: MASTER_ADDR is not set (the address of the rank-0 machine)");
  }
  const masterPort = integer(env, "MASTER_PORT", 1, 65535);
  const worldSize = integer(env, "WORLD_SIZE", 1, 65536);
  const rank = integer(env, "RANK", 0, worldSize - 1);
  const localRank = integer(env, "LOCAL_RANK", 0, worldSize - 1, 0);
  const localWorldSize = env["LOCAL_WORLD_SIZE"] === undefined ? null : integer(env, "LOCAL_WORLD_SIZE", 1, worldSize);
  const socket = env["GLOO_SOCKET_IFNAME"];
  return {
    masterAddr: masterAddr.trim(),
    masterPort,
    rank,
    worldSize,
    localRank,
    localWorldSize,
    socketInterface: socket === undefined || socket === "" ? null : socket,
  };
}
