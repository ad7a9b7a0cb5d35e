// The `moco` command: parses, validates, calls the library.
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { MoCoSettingsError } from "../moco/index.js";
import { readCheckpoint, disposeCheckpoint } from "../train/checkpoint.js";
import {
  ConfigError,
  PRESETS,
  readConfigFile,
  resolveConfig,
  type PresetName,
  type PretrainConfig,
} from "../train/config.js";
import { CHECKPOINT_FILE, pretrain, rankLayout, type PretrainResult } from "../train/pretrain.js";
import { progressReporter } from "../train/progress.js";
import { runSmoke } from "../train/smoke.js";
import { buildInfo, setNumThreads } from "../torch/index.js";
import { explainFailure, joinJob } from "./distributed.js";
import { launchWorkers } from "./launch.js";
import {
  FlagError,
  flagHelp,
  flagValues,
  launchHelp,
  launchParseOptions,
  launchValues,
  parseArgsOptions,
  stripLaunchFlags,
} from "./pretrain-options.js";
import { runEmbed } from "./embed-command.js";
import { runExport } from "./export-command.js";
import { UsageError } from "./flags.js";
import { listenForInterrupt } from "./interrupt.js";
import { runKnn } from "./knn-command.js";
import { runLincls } from "./lincls-command.js";
import { runReport } from "./report-command.js";
import { runSearch } from "./search-command.js";
import { runServe } from "./serve-command.js";

const HELP = `moco — MoCo (Momentum Contrast) self-supervised pretraining on libtorch

Usage: moco <command> [options]

Commands:
  pretrain [DATA]  MoCo pretraining (default: the quick Fashion-MNIST preset on Debian's data);
                   DATA is the data folder (an image folder unless --dataset says otherwise)
  lincls [DATA]    linear evaluation of a pretrained encoder (the paper's protocol)
  knn [DATA]       weighted kNN evaluation of a checkpoint, per class and confusion matrix
  embed [DATA]     embeddings of a dataset or image folder (.npy, safetensors, ids.json)
  search QUERY...  the most similar images of an embedding index (JSON and an HTML page)
  export           the backbone as a torchvision state dict, safetensors, ONNX or detectron2 weights
  report RUN...    one self-contained HTML page of runs: curves, per class, embedding map, neighbours
  serve            an embedding index over HTTP: embed, search, add images; a search page
  doctor           check the engine (libtorch, BLAS, threads, default data) and run a short
                   real training job (softmax regression on Fashion-MNIST)

Run \`moco <command> --help\` for its options.
  -h, --help       show this help
  -v, --version    show the version
`;

const SUBCOMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  lincls: runLincls,
  knn: runKnn,
  embed: runEmbed,
  search: runSearch,
  export: runExport,
  report: runReport,
  serve: runServe,
};

/** The package's version; package.json sits two folders up from the sources, three from dist/. */
function version(): string {
  const candidates = ["../../package.json", "../../../package.json"].map((p) => new URL(p, import.meta.url));
  const found = candidates.find((url) => existsSync(url));
  if (found === undefined) return "unknown";
  return (JSON.parse(readFileSync(found, "utf8")) as { version: string }).version;
}

function pretrainHelp(preset: PresetName): string {
  return `Usage: moco pretrain [DATA] [options]

MoCo v1/v2 pretraining. Writes the run folder (--out): config.json, metrics.jsonl (one JSON object
per line: steps, epochs, kNN), checkpoint.pth.tar (official MoCo layout, loads in torch.load) and
summary.json. Ctrl-C writes a checkpoint; --resume continues it exactly.

  --preset NAME                  ${Object.keys(PRESETS).join(" | ")} (default: fashion-mnist)
  --config FILE                  JSON or YAML file of options (camelCase keys, as in config.json);
                                 flags override it, it overrides the preset
  --resume CHECKPOINT            continue a run (its configuration, overridden by flags given here)
${flagHelp({ ...PRESETS[preset], out: `runs/${preset}` })}

Several processes (data-parallel; --batch-size is then the global batch; see README "Multi-process runs"):
${launchHelp()}

Defaults shown are the ${preset} preset's.`;
}

function summaryLine(result: PretrainResult, config: PretrainConfig): string {
  const show = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(2)}%`);
  const start = config.pretrained === null ? "at random init" : "at its --pretrained start";
  return (
    `kNN top-1 — trained encoder: ${show(result.knn.trained)} | same network ${start}: ${show(result.knn.random)} | ` +
    `raw pixels: ${show(result.knn.pixels)}`
  );
}

async function runPretrain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...parseArgsOptions(),
      ...launchParseOptions(),
      preset: { type: "string" },
      config: { type: "string" },
      resume: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const presetName = (values.preset ?? "fashion-mnist") as PresetName;
  if (!Object.hasOwn(PRESETS, presetName)) {
    throw new UsageError(`unknown preset '${presetName}' (one of ${Object.keys(PRESETS).join(", ")})`);
  }
  if (values.help === true) {
    console.log(pretrainHelp(presetName));
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`pretrain takes one data folder, got ${positionals.length}`);
  const flags: Record<string, unknown> = flagValues(values as Record<string, string | boolean | undefined>);
  const [dataDir] = positionals;
  if (dataDir !== undefined) {
    flags["data"] = dataDir;
    if (
      flags["dataset"] === undefined &&
      values.resume === undefined &&
      PRESETS[presetName].dataset === "fashion-mnist"
    ) {
      flags["dataset"] = "folder";
    }
  }
  const layers = [
    ...(values.config === undefined ? [] : [{ source: values.config, values: readConfigFile(values.config) }]),
    { source: "command line", values: flags },
  ];
  let config: PretrainConfig;
  if (values.resume !== undefined) {
    const checkpoint = readCheckpoint(values.resume);
    const saved = checkpoint.moco_ts.config;
    disposeCheckpoint(checkpoint);
    config = resolveConfig(presetName, [
      { source: `${values.resume} (saved configuration)`, values: { ...saved } },
      ...layers,
    ]);
  } else {
    config = resolveConfig(presetName, layers);
  }

  const launch = launchValues(values);
  if (launch.nprocPerNode !== null) {
    rankLayout(config, launch.nnodes * launch.nprocPerNode); // refused here, before any worker starts
    return launchWorkers(stripLaunchFlags(argv), launch);
  }
  const worker = await joinJob(launch.distTimeout);
  const lead = (worker?.group.rank ?? 0) === 0;

  const interrupt = listenForInterrupt("stopping after this step and writing a checkpoint");
  try {
    const result = await pretrain(config, {
      progress: progressReporter(process.stderr, config.printFreq),
      signal: interrupt.signal,
      ...(values.resume === undefined ? {} : { resume: values.resume }),
      ...(worker === null ? {} : { parallel: worker.parallel }),
    }).catch((error: unknown) => {
      throw worker === null ? error : explainFailure(error, worker.group, join(config.out, CHECKPOINT_FILE));
    });
    if (!lead) return result.interrupted ? 130 : 0;
    console.log(summaryLine(result, config));
    console.log(
      `run folder: ${result.runDir} (checkpoint ${result.checkpoint}, ${result.steps} steps, ${result.seconds.toFixed(0)} s)`,
    );
    if (result.interrupted) {
      console.log(`interrupted: continue with  moco pretrain --resume ${result.checkpoint}`);
      return 130;
    }
    return 0;
  } finally {
    interrupt.release();
    worker?.dispose();
  }
}

function runDoctor(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { threads: { type: "string" }, epochs: { type: "string" }, data: { type: "string" } },
  });
  const positive = (raw: string | undefined, name: string, fallback: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got '${raw}'`);
    return n;
  };
  setNumThreads(positive(values.threads, "threads", availableParallelism()));
  const info = buildInfo();
  console.log(
    `moco-ts ${version()} on libtorch ${info.torchVersion}, CUDA ${info.cudaAvailable ? `yes (${info.cudaDeviceCount})` : "no"}`,
  );
  const report = runSmoke({
    ...(values.data === undefined ? {} : { dataDir: values.data }),
    epochs: positive(values.epochs, "epochs", 2),
    log: (line) => console.log(line),
  });
  console.log(
    `Fashion-MNIST softmax regression: test accuracy ${(report.testAccuracy * 100).toFixed(1)}% ` +
      `after ${report.epochs} epoch(s) on ${report.trainImages} images (${report.seconds.toFixed(1)} s)`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "-v" || command === "--version") {
    console.log(version());
    return 0;
  }
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === "pretrain") return runPretrain(rest);
  if (command === "doctor") return runDoctor(rest);
  const subcommand = SUBCOMMANDS[command];
  if (subcommand !== undefined) return subcommand(rest);
  throw new UsageError(`unknown command '${command}' (see moco --help)`);
}

function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError || error instanceof FlagError || error instanceof ConfigError) return 2;
  if (error instanceof MoCoSettingsError) return 2;
  if ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") === true) return 2;
  return 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`moco: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = exitCodeFor(error);
}
