// The per-call cost of a tiny op: add of two 1-element float32 tensors, the result freed each
// iteration (dispose here; Python frees it when `c` is rebound). Mostly binding overhead: the add
// itself is the same libtorch call on both sides.
import { native } from "../src/torch/native.js";
import * as torch from "../src/torch/index.js";
import { timeRepeats, type BenchEntry } from "./framework.js";

export const opOverhead: BenchEntry = {
  name: "op-overhead",
  description: "add of two 1-element float32 tensors, result freed each call",
  python: "op-overhead.py",
  rounds: 3,
  metrics: [
    { key: "us_per_call", label: "per-call overhead", unit: "µs/call", better: "lower", target: 1.0, digits: 3 },
  ],
  runOurs({ quick }) {
    const n = quick ? 20_000 : 200_000;
    const repeats = quick ? 2 : 5;
    const a = torch.ones([1]);
    const b = torch.ones([1]);
    const perCall = (times: number[]) => (Math.min(...times) * 1e6) / n;
    // What a user writes: a new Tensor per call, disposed at once.
    const disposed = timeRepeats(() => {
      for (let i = 0; i < n; i++) {
        const c = a.add(b);
        c.dispose();
      }
    }, repeats);
    // The hot-path idiom: one scope frees a batch of results.
    const chunk = 1000;
    const scoped = timeRepeats(() => {
      for (let i = 0; i < n; i += chunk) {
        torch.scope(() => {
          for (let k = 0; k < chunk; k++) a.add(b);
        });
      }
    }, repeats);
    // The addon alone, without the Tensor wrapper: where the time goes.
    const raw = timeRepeats(() => {
      for (let i = 0; i < n; i++) native.dispose(native.add(a.handle, b.handle, null));
    }, repeats);
    a.dispose();
    b.dispose();
    return {
      values: { us_per_call: perCall(disposed) },
      details: {
        iterations: n,
        repeats,
        us_per_call_disposed: perCall(disposed),
        us_per_call_scoped: perCall(scoped),
        us_per_call_native_only: perCall(raw),
      },
    };
  },
};
