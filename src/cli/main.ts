// The `moco` command: parses, validates, calls the library.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

import { runSmoke } from "../train/smoke.js";
import { buildInfo, setNumThreads } from "../torch/index.js";

const HELP = `moco — MoCo (Momentum Contrast) self-supervised pretraining on libtorch

Usage: moco <command> [options]

Commands:
  doctor           check the engine (libtorch, BLAS, threads, default data) and run a short
                   real training job on Fashion-MNIST (softmax regression) as a smoke test

Options:
  --threads N      intra-op threads (default: all cores, ${availableParallelism()} here)
  --epochs N       doctor: epochs of the smoke job (default 2)
  --data DIR       doctor: MNIST-layout folder (default /usr/share/datasets/fashion-mnist)
  -h, --help       show this help
  -v, --version    show the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

class UsageError extends Error {}

export function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      threads: { type: "string" },
      epochs: { type: "string" },
      data: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
  if (values.version === true) {
    console.log(version());
    return 0;
  }
  const [command] = positionals;
  if (values.help === true || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  setNumThreads(positiveInt(values.threads, "threads", availableParallelism()));
  if (command === "doctor") {
    const info = buildInfo();
    console.log(`moco-ts ${version()} on libtorch ${info.torchVersion}, CUDA ${info.cudaAvailable ? `yes (${info.cudaDeviceCount})` : "no"}`);
    const report = runSmoke({
      ...(values.data === undefined ? {} : { dataDir: values.data }),
      epochs: positiveInt(values.epochs, "epochs", 2),
      log: (line) => console.log(line),
    });
    console.log(
      `Fashion-MNIST softmax regression: test accuracy ${(report.testAccuracy * 100).toFixed(1)}% ` +
        `after ${report.epochs} epoch(s) on ${report.trainImages} images (${report.seconds.toFixed(1)} s)`,
    );
    return 0;
  }
  throw new UsageError(`unknown command '${command}' (see moco --help)`);
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`moco: ${message}`);
  process.exitCode = error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
}
