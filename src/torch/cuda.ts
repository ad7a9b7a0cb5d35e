// torch.cuda and torch.backends.cudnn, as far as training needs them: whether a GPU is there, waiting
// for its queued work (GPU kernels run asynchronously: a host clock read without a synchronize times
// the launches, not the work), and cuDNN's autotuner.
import { native } from "./native.js";
import type { Tensor } from "./tensor.js";

/** Whether libtorch was built with CUDA and sees at least one GPU (torch.cuda.is_available()). */
export function isCudaAvailable(): boolean {
  return native.buildInfo().cudaAvailable;
}

/** How many GPUs libtorch sees (0 on a build without CUDA). */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

/** The index a device string names: "cuda" → 0, "cuda:3" → 3; null for anything else ("cpu"). */
export function cudaIndex(device: string): number | null {
  if (device === "cuda") return 0;
  const match = /^cuda:(\d+)$/.exec(device);
  return match === null ? null : Number(match[1]);
}

/**
 * Waits until every kernel queued on `device` has run (torch.cuda.synchronize). A no-op for "cpu",
 * whose ops finish before they return.
 */
export function synchronize(device = "cuda"): void {
  if (device === "cpu") return;
  const index = cudaIndex(device);
  if (index === null) throw new RangeError(`synchronize: device must be "cpu", "cuda" or "cuda:N", got ${device}`);
  native.cudaSynchronize(index);
}

/** Whether cuDNN is usable (torch.backends.cudnn.is_available()). */
export function isCudnnAvailable(): boolean {
  return native.cudnnIsAvailable();
}

/**
 * torch.backends.cudnn.benchmark: with it on, cuDNN times its convolution algorithms on each new
 * input shape and keeps the fastest: a cost on the first step of each shape, a gain on every later
 * one, so worth it when the shapes stay fixed, as in pretraining. Returns the previous value.
 */
export function setCudnnBenchmark(enabled: boolean): boolean {
  const previous = native.cudnnBenchmark();
  native.setCudnnBenchmark(enabled);
  return previous;
}

/** Where float32 GPU work may use TF32 (10-bit mantissa) tensor cores: cuDNN convolutions, cuBLAS matmuls. */
export interface Tf32Settings {
  cudnn: boolean;
  matmul: boolean;
}

/**
 * torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32 (libtorch's defaults
 * are PyTorch's: convolutions yes, matmuls no). Returns the previous settings.
 */
export function setAllowTf32(settings: Tf32Settings): Tf32Settings {
  const previous = native.allowTf32();
  native.setAllowTf32(settings.cudnn, settings.matmul);
  return previous;
}

/**
 * A copy of a host batch on `device` as a data loader with pin_memory hands it over: through
 * page-locked memory and a non-blocking copy, so the host goes on (e.g. to the next batch) while the
 * copy engine moves it. The input stays the caller's; for "cpu" it is returned as is.
 */
export function copyToDevice(batch: Tensor, device: string): Tensor {
  if (batch.device === device) return batch;
  if (batch.device !== "cpu" || cudaIndex(device) === null) return batch.toDevice(device);
  const pinned = batch.isPinned ? batch : batch.pinMemory();
  // Freeing the pinned buffer now is safe: libtorch's host allocator holds it until the copy is done.
  const moved = pinned.toDevice(device, { nonBlocking: true });
  if (pinned !== batch) pinned.dispose();
  return moved;
}

/**
 * torch._amp_foreach_non_finite_check_and_unscale_: grads[i] *= invScale in place; foundInf (float32
 * [1]) becomes 1 if any element is not finite. CUDA tensors (libtorch 1.13 has no CPU kernel).
 */
export function ampForeachNonFiniteCheckAndUnscale_(
  grads: readonly Tensor[],
  foundInf: Tensor,
  invScale: Tensor,
): void {
  native.ampUnscale(
    grads.map((g) => g.handle),
    foundInf.handle,
    invScale.handle,
  );
}

/** torch._amp_update_scale_: GradScaler.update's arithmetic on the device, in place. */
export function ampUpdateScale_(
  scale: Tensor,
  growthTracker: Tensor,
  foundInf: Tensor,
  growthFactor: number,
  backoffFactor: number,
  growthInterval: number,
): void {
  native.ampUpdateScale(
    scale.handle,
    growthTracker.handle,
    foundInf.handle,
    growthFactor,
    backoffFactor,
    growthInterval,
  );
}
