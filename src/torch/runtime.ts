// Process-wide settings and counters: RNG seed and state, thread pool size, live native tensors.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

/** Seeds every default generator, as torch.manual_seed. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`manualSeed: seed must be a non-negative integer, got ${seed}`);
  }
  native.manualSeed(seed);
}

/** The CPU generator's state (a uint8 tensor, the bytes of torch.get_rng_state()). */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState());
}

/** Restores a state from getRngState (or torch.get_rng_state()): the random stream continues from there. */
export function setRngState(state: Tensor): void {
  if (!(state instanceof Tensor) || state.dtype !== "uint8") {
    throw new TypeError("setRngState: state must be a uint8 Tensor from getRngState()");
  }
  native.setRngState(state.handle);
}

export function setNumThreads(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected an integer >= 1, got ${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * libtorch's intra-op threads for the ops called from this JS thread only (a worker thread's own
 * count, leaving the process-wide setNumThreads as it is). With libtorch's OpenMP backend (Debian's,
 * pytorch.org's) the count is per calling thread; returns false, changing nothing, with another.
 */
export function setThreadNumThreads(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`setThreadNumThreads: expected an integer >= 1, got ${n}`);
  return native.setThreadNumThreads(n);
}

/** Native tensors not yet freed (disposed or collected). Tests use it to prove nothing leaks. */
export function liveTensors(): number {
  return native.liveTensors();
}

export function buildInfo(): {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  cudnnAvailable: boolean;
} {
  const { torchVersion, cudaAvailable, cudaDeviceCount, cudnnAvailable } = native.buildInfo();
  return { torchVersion, cudaAvailable, cudaDeviceCount, cudnnAvailable };
}
