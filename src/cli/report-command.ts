// `moco report`: one self-contained HTML page about pretraining runs and their evaluations.
import { writeRunReport } from "../report/index.js";
import { UsageError } from "../errors.js";
import { flagHelp, parseCommand, type Flag } from "./flags.js";

const REPORT_FLAGS: readonly Flag[] = [
  { flag: "out", kind: "string", meta: "FILE", help: "the HTML file to write", default: "report.html" },
  { flag: "title", kind: "string", help: "the page's title (default: the run names)" },
  { flag: "sample", kind: "int", help: "held-out images embedded for the map and the neighbours", default: 1000 },
  { flag: "seed", kind: "int", help: "seed of the sample and of UMAP", default: 0 },
  { flag: "neighbours", kind: "int", help: "neighbours per query in the grid (and for precision@k)", default: 8 },
  {
    flag: "embedding",
    kind: "bool",
    help: "embed a sample with each run's checkpoint (map, neighbour grid)",
    default: true,
  },
];

export const REPORT_HELP = `Usage: moco report RUN [EVAL...] [RUN [EVAL...]]... [options]

Writes one HTML file that opens from disk anywhere (charts as inline SVG, images inline, no
network): loss, lr, pretext accuracy and images/s per step; the kNN curve with the random-init and
raw-pixel baselines; linear evaluation; accuracy per class and confusion matrices; a UMAP map of
the embeddings (hover for the image) and a grid of nearest neighbours. Several runs share each
chart. RUN is a moco pretrain folder; kNN (moco knn) and lincls (moco lincls) outputs inside it
(knn.json, knn/, lincls/) are found, others can follow the run they belong to (EVAL: a folder or
a knn.json).

${flagHelp(REPORT_FLAGS)}`;

export async function runReport(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "report",
    flags: REPORT_FLAGS,
    help: REPORT_HELP,
    positionals: { max: Number.POSITIVE_INFINITY, what: "run folders" },
  });
  if (command === null) return 0;
  const { flags, positionals } = command;
  if (positionals.length === 0) throw new UsageError("report needs at least one run folder (see moco report --help)");
  for (const name of ["sample", "neighbours"] as const)
    if (flags.number(name) < 1) throw new UsageError(`--${name} must be >= 1, got ${flags.number(name)}`);
  const title = flags.optionalString("title");
  const report = await writeRunReport(positionals, {
    out: flags.string("out"),
    sample: flags.number("sample"),
    seed: flags.number("seed"),
    neighbours: flags.number("neighbours"),
    embedding: flags.bool("embedding"),
    ...(title === null ? {} : { title }),
    log: (line) => console.error(line),
  });
  console.log(
    `wrote ${report.path} (${report.runs.length} run(s), ${report.charts} charts, ${(report.bytes / 1024).toFixed(0)} KiB)`,
  );
  return 0;
}
