// `moco embed`: embeddings of a dataset or an image folder, as .npy + ids.json and safetensors.
import type { FeatureKind } from "../encoder/encoder.js";
import { INDEX_FILES, writeEmbeddingIndex } from "../search/store.js";
import { DATA_FLAGS, openEvalData } from "./eval-data.js";
import { ENCODER_FLAGS, encoderFromFlags, precisionPolicy } from "./encoder-flags.js";
import {
  CHANNELS_LAST_FLAG,
  DEVICE_FLAG,
  PRECISION_FLAG,
  UsageError,
  flagHelp,
  parseCommand,
  type Flag,
} from "./flags.js";

const EMBED_FLAGS: readonly Flag[] = [
  ...ENCODER_FLAGS,
  ...DATA_FLAGS,
  DEVICE_FLAG,
  PRECISION_FLAG,
  CHANNELS_LAST_FLAG,
  {
    flag: "split",
    kind: "string",
    choices: ["train", "test"],
    help: "train | test (folders without train/: the whole folder)",
    default: "train",
  },
  { flag: "features", kind: "string", choices: ["backbone", "head"], help: "backbone | head", default: "backbone" },
  { flag: "normalize", kind: "bool", help: "L2-normalise the embeddings (cosine = dot product)", default: true },
  {
    flag: "batch-size",
    short: "b",
    kind: "int",
    help: "images per forward pass",
    default: 256,
    bounds: { min: 1 },
  },
  { flag: "out", kind: "string", meta: "DIR", help: "the index folder", default: "runs/embeddings" },
];

export const EMBED_HELP = `Usage: moco embed --pretrained FILE [DATA] [options]

Embeds every image of a dataset split or an image folder (DATA) with a pretrained encoder, streaming
batch by batch. Writes into --out: ${INDEX_FILES.npy} (float32 [N, D]), ${INDEX_FILES.safetensors}
("embeddings"), ${INDEX_FILES.ids} (file paths or dataset ids, in row order), ${INDEX_FILES.labels} when
labeled, and ${INDEX_FILES.meta} (how they were made; moco search reads it).

${flagHelp(EMBED_FLAGS)}`;

export async function runEmbed(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "embed",
    flags: EMBED_FLAGS,
    help: EMBED_HELP,
    positionals: { max: 1, what: "one data folder" },
  });
  if (command === null) return 0;
  const { flags, positionals } = command;
  const features = flags.choice<FeatureKind>("features", ["backbone", "head"]);
  const split = flags.choice("split", ["train", "test"] as const);
  const log = (line: string) => console.error(line);
  const encoder = encoderFromFlags(flags, log);
  const policy = precisionPolicy(flags, log);
  try {
    if (features === "head" && !encoder.hasHead)
      throw new UsageError(`${encoder.info.path} has no head: --features backbone`);
    const dataDir = positionals[0];
    const data = await openEvalData(flags, encoder, dataDir, [split], log);
    try {
      const dataset = data.splits.get(split);
      if (dataset === undefined) throw new Error(`embed: no ${split} split`);
      const out = flags.string("out");
      const started = performance.now();
      let lastReport = 0;
      const meta = await writeEmbeddingIndex(encoder, dataset, {
        dir: out,
        features,
        normalize: flags.bool("normalize"),
        size: data.imageSize,
        batchSize: flags.number("batch-size"),
        device: flags.optionalString("device") ?? "cpu",
        ...policy,
        datasetInfo: { kind: data.kind, name: dataset.name, root: data.root, split: data.hasSplits ? split : null },
        onNote: log,
        onProgress: (done, total) => {
          const now = performance.now();
          if (now - lastReport < 2000 && done < total) return;
          lastReport = now;
          const rate = done / ((now - started) / 1000);
          log(`embedded ${done}/${total} images (${rate.toFixed(0)} images/s)`);
        },
      });
      console.log(`wrote ${meta.count} embeddings of dimension ${meta.dim} to ${out}`);
      return 0;
    } finally {
      data.dispose();
    }
  } finally {
    encoder.dispose();
  }
}
