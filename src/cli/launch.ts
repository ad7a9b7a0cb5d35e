// `moco pretrain --nproc-per-node N`: starts N workers on this machine with the env:// variables
// set, as torchrun does, and supervises them: when one fails, the others get the collective timeout
// to notice and exit with their own message, then whatever is left is killed, and the launcher
// exits with the failure's status. Ctrl-C reaches each worker once.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";

import { portIsFree } from "../dist/index.js";
/** Options of the launcher and of the distributed job; not part of the run's configuration. */
export interface LaunchValues {
  /** Workers to start on this machine; null: run here (one process, or a worker of a job set up by env://). */
  nprocPerNode: number | null;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** Seconds a collective waits for the other processes before the run stops. */
  distTimeout: number;
}

export interface WorkerExit {
  rank: number;
  /** The exit status, or 128 + the signal's number for a worker a signal ended (as a shell reports it). */
  code: number;
  signal?: NodeJS.Signals;
}

export function signalStatus(signal: NodeJS.Signals | null): number {
  const number = signal === null ? undefined : constants.signals[signal];
  return number === undefined ? 1 : 128 + number;
}

/** Added to the collective timeout before the workers left after a failure are killed. */
const GRACE_MS = 10_000;

/** "rank 1 exited with status 2" or "rank 1 was killed by SIGKILL". */
export function describeExit(exit: WorkerExit): string {
  return exit.signal === undefined
    ? `rank ${exit.rank} exited with status ${exit.code}`
    : `rank ${exit.rank} was killed by ${exit.signal}`;
}

export async function launchWorkers(workerArgv: readonly string[], launch: LaunchValues): Promise<number> {
  const perNode = launch.nprocPerNode ?? 1;
  const worldSize = launch.nnodes * perNode;
  const script = process.argv[1];
  if (script === undefined) throw new Error("launcher: cannot tell which script to start the workers with");
  process.stderr.write(
    `moco: starting ${perNode} worker(s) on node ${launch.nodeRank} of ${launch.nnodes} ` +
      `(world size ${worldSize}, master ${launch.masterAddr}:${launch.masterPort})\n`,
  );
  // Rank 0's rendezvous server cannot bind a port another process holds: say so now, rather than
  // after the other workers have waited the whole --dist-timeout for it.
  if (launch.nodeRank === 0 && !(await portIsFree(launch.masterPort))) {
    process.stderr.write(
      `moco: --master-port ${launch.masterPort} is already in use on this machine; choose another port\n`,
    );
    return 1;
  }
  const children: ChildProcess[] = [];
  const exits = Array.from({ length: perNode }, (_, local) => {
    const rank = launch.nodeRank * perNode + local;
    const child = spawn(process.execPath, [...process.execArgv, script, "pretrain", ...workerArgv], {
      stdio: "inherit",
      // Own process group: a Ctrl-C on the terminal reaches the launcher only, which passes it on once.
      detached: true,
      env: {
        ...process.env,
        MASTER_ADDR: launch.masterAddr,
        MASTER_PORT: String(launch.masterPort),
        WORLD_SIZE: String(worldSize),
        RANK: String(rank),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(perNode),
        MOCO_LAUNCHER_PID: String(process.pid),
      },
    });
    children.push(child);
    return new Promise<WorkerExit>((resolve) => {
      child.on("error", (error) => {
        process.stderr.write(`moco: could not start rank ${rank}: ${error.message}\n`);
        resolve({ rank, code: 1 });
      });
      child.on("exit", (code, signal) =>
        resolve({ rank, code: code ?? signalStatus(signal), ...(signal === null ? {} : { signal }) }),
      );
    });
  });

  const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const forward = (signal: NodeJS.Signals) => () => {
    for (const child of alive()) child.kill(signal);
  };
  const onSigint = forward("SIGINT");
  const onSigterm = forward("SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);
  let killTimer: NodeJS.Timeout | undefined;
  let failure: WorkerExit | null = null;
  try {
    const pending = new Map(exits.map((promise, i) => [i, promise.then((result) => ({ i, result }))]));
    while (pending.size > 0) {
      const { i, result } = await Promise.race(pending.values());
      pending.delete(i);
      if (result.code !== 0 && result.code !== 130 && failure === null) {
        failure = result;
        process.stderr.write(
          `moco: ${describeExit(result)}; the other workers stop within the ` +
            `collective timeout (${launch.distTimeout} s) or are killed ${GRACE_MS / 1000} s after it\n`,
        );
        // A hung worker never notices; the others do, within the timeout. Whatever is left is killed.
        killTimer = setTimeout(
          () => {
            for (const child of alive()) child.kill("SIGKILL");
          },
          launch.distTimeout * 1000 + GRACE_MS,
        );
      }
    }
    const codes = await Promise.all(exits);
    if (failure !== null) return failure.code;
    return codes.some((c) => c.code === 130) ? 130 : 0;
  } finally {
    clearTimeout(killTimer);
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
  }
}
