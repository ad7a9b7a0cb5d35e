// A c10d process group: a TCPStore rendezvous and a Gloo process group over it (NCCL where the
// libtorch the addon was built against has it), with the collectives MoCo needs.
//
// Collectives block the calling thread for at most the group's timeout: a training step is one
// synchronous scope, and the key gather and the shuffle run inside the model's forward. A timeout
// or a peer's failure throws and leaves the group unusable (every later call throws at once), since
// the ranks can no longer agree on which collective comes next. The rendezvous, which may wait long
// for peers that are still starting, is asynchronous so that timers and signals keep working.
import {
  c10dAllGather,
  c10dAllReduce,
  c10dBackends,
  c10dBarrier,
  c10dBroadcast,
  c10dDispose,
  c10dInit,
} from "../torch/c10d.js";
import { DTYPES, Tensor } from "../torch/index.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

export type Backend = "gloo" | "nccl";
export type ReduceOp = "sum" | "avg" | "max" | "min" | "product";

const REDUCE_CODES: Record<ReduceOp, number> = { sum: 0, avg: 1, max: 2, min: 3, product: 4 };

/** How long a collective or the rendezvous waits for the other ranks before it fails (5 minutes). */
export const DEFAULT_TIMEOUT_MS = 5 * 60 * 1000;

export interface ProcessGroupOptions {
  /** Address of rank 0, which serves the TCPStore. */
  masterAddr: string;
  /** Port of the TCPStore on rank 0. */
  masterPort: number;
  rank: number;
  worldSize: number;
  /** Default "gloo". */
  backend?: Backend;
  /** Rendezvous and collective timeout (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Gloo: the network interface to use, as PyTorch's GLOO_SOCKET_IFNAME (e.g. "eth0"). */
  interface?: string;
  /** Gloo: the hostname or address to bind; default 127.0.0.1 when the master is local, else this host's name. */
  hostname?: string;
}

export interface CollectiveOptions {
  /** Overrides the group's timeout for this call. */
  timeoutMs?: number;
}

export class DistributedError extends MocoError {
  override name = "DistributedError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_DISTRIBUTED", message, options);
  }
}

function checkInt(value: number, name: string, op: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`${op}: ${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function gatherDevice(options: ProcessGroupOptions): { kind: "interface" | "hostname" | "default"; name: string } {
  if (options.interface !== undefined && options.hostname !== undefined) {
    throw new TypeError("ProcessGroup: give either interface or hostname, not both");
  }
  if (options.interface !== undefined) return { kind: "interface", name: options.interface };
  if (options.hostname !== undefined) return { kind: "hostname", name: options.hostname };
  // A local run binds to loopback: a machine's own hostname may resolve to an unreachable address.
  return isLoopback(options.masterAddr) ? { kind: "hostname", name: "127.0.0.1" } : { kind: "default", name: "" };
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  #id: number | null;

  private constructor(id: number, rank: number, worldSize: number, backend: Backend, timeoutMs: number) {
    this.#id = id;
    this.rank = rank;
    this.worldSize = worldSize;
    this.backend = backend;
    this.timeoutMs = timeoutMs;
  }

  /** Backends this build of the addon supports ("gloo" always, "nccl" with a CUDA libtorch). */
  static backends(): Backend[] {
    return c10dBackends() as Backend[];
  }

  /** Meets the other ranks at masterAddr:masterPort; resolves once all `worldSize` ranks are connected. */
  static async create(options: ProcessGroupOptions): Promise<ProcessGroup> {
    const op = "ProcessGroup.create";
    if (typeof options.masterAddr !== "string" || options.masterAddr === "") {
      throw new TypeError(`${op}: masterAddr must be a non-empty host name or address`);
    }
    checkInt(options.masterPort, "masterPort", op, 1, 65535);
    const worldSize = checkInt(options.worldSize, "worldSize", op, 1);
    const rank = checkInt(options.rank, "rank", op, 0, worldSize - 1);
    const timeoutMs = checkInt(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeoutMs", op, 1);
    const backend = options.backend ?? "gloo";
    if (!ProcessGroup.backends().includes(backend)) {
      throw new DistributedError(
        `${op}: backend '${String(backend)}' is not available in this build (available: ${ProcessGroup.backends().join(", ")})`,
      );
    }
    const device = gatherDevice(options);
    const id = await c10dInit(
        options.masterAddr,
        options.masterPort,
        rank,
        worldSize,
        timeoutMs,
        backend,
        device.kind,
        device.name,
      ).catch((error: unknown) => {
        // Rank 0 serves the rendezvous: a port another process holds is known at once, and is
        // not a matter of waiting for the other ranks.
        if (rank === 0 && /errno: 98|Address already in use/.test((error as Error).message)) {
          throw new DistributedError(
            `${op}: rank 0 cannot serve the rendezvous: port ${options.masterPort} is already in use on this machine (choose another MASTER_PORT / --master-port)`,
            { cause: error },
          );
        }
        throw error;
      });
    return new ProcessGroup(id, rank, worldSize, backend, timeoutMs);
  }

  get isDisposed(): boolean {
    return this.#id === null;
  }

  private id(op: string): number {
    if (this.#id === null) throw new DistributedError(`${op}: the process group has been disposed`);
    return this.#id;
  }

  private timeout(options: CollectiveOptions, op: string): number {
    return checkInt(options.timeoutMs ?? this.timeoutMs, "timeoutMs", op, 1);
  }

  /** Reduces `tensor` in place over all ranks ("avg" needs a floating-point tensor). */
  allReduce(tensor: Tensor, reduce: ReduceOp = "sum", options: CollectiveOptions = {}): void {
    const op = "allReduce";
    checkTensor(tensor, op);
    const code = REDUCE_CODES[reduce];
    if (code === undefined) {
      throw new RangeError(`${op}: op must be one of ${Object.keys(REDUCE_CODES).join(", ")}, got '${String(reduce)}'`);
    }
    if (reduce === "avg" && !DTYPES[tensor.dtype].isFloating) {
      throw new TypeError(`${op}: avg needs a floating-point tensor, got ${tensor.dtype}`);
    }
    c10dAllReduce(this.id(op), tensor, code, this.timeout(options, op));
  }

  /** Every rank's `tensor`, in rank order (new tensors; every rank must pass the same shape and dtype). */
  allGather(tensor: Tensor, options: CollectiveOptions = {}): Tensor[] {
    const op = "allGather";
    checkTensor(tensor, op);
    return c10dAllGather(this.id(op), tensor, this.timeout(options, op));
  }

  /** Overwrites `tensor` on every rank with the root's. */
  broadcast(tensor: Tensor, root = 0, options: CollectiveOptions = {}): void {
    const op = "broadcast";
    checkTensor(tensor, op);
    checkInt(root, "root", op, 0, this.worldSize - 1);
    c10dBroadcast(this.id(op), tensor, root, this.timeout(options, op));
  }

  /** Returns once every rank has called it. */
  barrier(options: CollectiveOptions = {}): void {
    const op = "barrier";
    c10dBarrier(this.id(op), this.timeout(options, op));
  }

  /** Closes the group's connections (rank 0 also stops the store). Idempotent. */
  dispose(): void {
    if (this.#id === null) return;
    c10dDispose(this.#id);
    this.#id = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function checkTensor(tensor: Tensor, op: string): void {
  if (!(tensor instanceof Tensor)) throw new TypeError(`${op}: expected a Tensor`);
  if (tensor.isDisposed) throw new TypeError(`${op}: the tensor has been disposed`);
}
