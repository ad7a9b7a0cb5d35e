#!/usr/bin/env node
// Builds native/ against Debian's libtorch-dev or the libtorch folder in $LIBTORCH, offline.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const libtorch = process.env.LIBTORCH;
const debianConfig = "/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake";

if (libtorch ? !existsSync(join(libtorch, "share/cmake/Torch")) : !existsSync(debianConfig)) {
  console.error(
    libtorch
      ? `moco-ts: LIBTORCH=${libtorch} has no share/cmake/Torch; point it at an unpacked libtorch folder.`
      : "moco-ts: libtorch not found. Install it with: sudo apt-get install -y libtorch-dev libopenblas0-pthread\n" +
          "(or set LIBTORCH=/path/to/libtorch), then run: npm run build:native",
  );
  process.exit(1);
}

const cmakeJs = join(root, "node_modules", "cmake-js", "bin", "cmake-js");
// At most 4 jobs by default (each compile takes ~1 GB); MOCO_BUILD_JOBS for a bigger machine.
const jobs = process.env.MOCO_BUILD_JOBS ?? String(Math.max(1, Math.min(cpus().length, 4)));
const result = spawnSync(
  process.execPath,
  [cmakeJs, "build", "--out", join(root, "native", "build"), "--parallel", jobs],
  { stdio: "inherit", env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } },
);
process.exit(result.status ?? 1);
