// Prints what the addon was built with and sees (libtorch version, CUDA devices, cuDNN, process
// group backends) as one JSON line: scripts/device-check.sh records it in its report.
import { c10dBackends } from "../src/torch/c10d.js";
import { buildInfo } from "../src/torch/index.js";

console.log(JSON.stringify({ ...buildInfo(), backends: c10dBackends() }));
