// The `moco` command: finds the subcommand, runs it, and reports errors (cli/errors.ts) as one
// message and an exit status. Each command parses, validates and calls the library in its own file.
import { existsSync, readFileSync } from "node:fs";

import { UsageError } from "../errors.js";
import { closest } from "../train/config.js";
import { DOCTOR_HELP, runDoctor } from "./doctor.js";
import { EMBED_HELP, runEmbed } from "./embed-command.js";
import { reportError } from "./errors.js";
import { EXPORT_HELP, runExport } from "./export-command.js";
import { KNN_HELP, runKnn } from "./knn-command.js";
import { LINCLS_HELP, runLincls } from "./lincls-command.js";
import { runPretrain } from "./pretrain-command.js";
import { REPORT_HELP, runReport } from "./report-command.js";
import { SEARCH_HELP, runSearch } from "./search-command.js";
import { SERVE_HELP, runServe } from "./serve-command.js";

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
  help [COMMAND]   this help, or a command's

Run \`moco <command> --help\` (or \`moco help <command>\`) for its options.
  -h, --help       show this help
  -v, --version    show the version
`;

/** The package's version; package.json sits two folders up from the sources, three from dist/. */
function version(): string {
  const candidates = ["../../package.json", "../../../package.json"].map((p) => new URL(p, import.meta.url));
  const found = candidates.find((url) => existsSync(url));
  if (found === undefined) return "unknown";
  return (JSON.parse(readFileSync(found, "utf8")) as { version: string }).version;
}

const COMMANDS: Readonly<Record<string, (argv: string[]) => number | Promise<number>>> = {
  pretrain: runPretrain,
  lincls: runLincls,
  knn: runKnn,
  embed: runEmbed,
  search: runSearch,
  export: runExport,
  report: runReport,
  serve: runServe,
  doctor: (argv) => runDoctor(argv, version()),
};

/** Help texts that need no flags to be shown (pretrain's depends on --preset: run it with --help). */
const HELPS: Readonly<Record<string, string>> = {
  lincls: LINCLS_HELP,
  knn: KNN_HELP,
  embed: EMBED_HELP,
  search: SEARCH_HELP,
  export: EXPORT_HELP,
  report: REPORT_HELP,
  serve: SERVE_HELP,
  doctor: DOCTOR_HELP,
};

function unknownCommand(command: string): UsageError {
  const guess = closest(command, Object.keys(COMMANDS));
  return new UsageError(
    `unknown command '${command}'${guess === null ? "" : ` (did you mean '${guess}'?)`} (see moco --help)`,
  );
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "-v" || command === "--version") {
    console.log(version());
    return 0;
  }
  if (command === undefined || command === "-h" || command === "--help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === "help") {
    const [topic] = rest;
    if (topic === undefined) {
      process.stdout.write(HELP);
      return 0;
    }
    if (topic === "pretrain") return runPretrain(["--help"]);
    const help = HELPS[topic];
    if (help === undefined) throw unknownCommand(topic);
    console.log(help);
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) throw unknownCommand(command);
  return run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.exitCode = reportError(error);
}
