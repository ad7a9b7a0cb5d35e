// c10d's process groups and collectives as the tensor layer offers them: tensors in, tensors out.
// The addon names tensors by handles (native.ts), which stay inside src/torch; src/dist builds its
// ProcessGroup (argument checks, reduce-op names, timeouts, errors) on these functions alone. They
// check nothing themselves: a group id is the addon's (a forged one is refused there), and the
// caller validates ranks, ops and timeouts.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

/** How a rank picks the network interface of its Gloo device. */
export type C10dDeviceKind = "interface" | "hostname" | "default";

/** The backends this build of the addon supports ("gloo" always, "nccl" with a CUDA libtorch). */
export function c10dBackends(): string[] {
  return native.distBackends();
}

/** TCPStore rendezvous plus a process group; resolves to the group's id once all ranks joined. */
export function c10dInit(
  host: string,
  port: number,
  rank: number,
  worldSize: number,
  timeoutMs: number,
  backend: string,
  deviceKind: C10dDeviceKind,
  deviceName: string,
): Promise<number> {
  return native.distInit(host, port, rank, worldSize, timeoutMs, backend, deviceKind, deviceName);
}

/** In place; `op` is c10d's ReduceOp code (0 sum, 1 avg, 2 max, 3 min, 4 product). */
export function c10dAllReduce(group: number, tensor: Tensor, op: number, timeoutMs: number): void {
  native.distAllReduce(group, tensor.handle, op, timeoutMs);
}

/** Every rank's `tensor`, in rank order, as new tensors owned by the caller. */
export function c10dAllGather(group: number, tensor: Tensor, timeoutMs: number): Tensor[] {
  return native.distAllGather(group, tensor.handle, timeoutMs).map((handle) => new Tensor(handle));
}

/** In place: every rank's `tensor` becomes `root`'s. */
export function c10dBroadcast(group: number, tensor: Tensor, root: number, timeoutMs: number): void {
  native.distBroadcast(group, tensor.handle, root, timeoutMs);
}

export function c10dBarrier(group: number, timeoutMs: number): void {
  native.distBarrier(group, timeoutMs);
}

/** Closes the group's connections (rank 0 also stops the store). */
export function c10dDispose(group: number): void {
  native.distDispose(group);
}
