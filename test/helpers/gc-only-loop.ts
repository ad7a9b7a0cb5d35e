// Creates 1 MiB tensors and never frees them, turning the event loop now and then as a program
// would; the GC safety net alone must keep native memory bounded. Prints the peak RSS in MiB.
import { liveTensors, randn } from "../../src/torch/index.js";

const iterations = Number(process.argv[2] ?? 3000);
let peak = 0;
for (let i = 0; i < iterations; i++) {
  randn([256, 1024]); // 1 MiB, dropped at once
  if (i % 50 === 49) {
    await new Promise((resolve) => setImmediate(resolve));
    peak = Math.max(peak, process.memoryUsage().rss / 2 ** 20);
  }
}
console.log(JSON.stringify({ peakMiB: peak, liveTensors: liveTensors(), iterations }));
