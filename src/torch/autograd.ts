// Gradient recording regions, like torch.no_grad / torch.enable_grad.
import { native } from "./native.js";

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = native.isGradEnabled();
  native.setGradEnabled(enabled);
  try {
    const result = fn();
    if (typeof (result as { then?: unknown } | null)?.then === "function") {
      throw new TypeError("noGrad/enableGrad: the function returned a Promise; grad mode regions are synchronous");
    }
    return result;
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Runs `fn` without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs `fn` with recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
