// `--pretrained`: start MoCo from existing weights (a torchvision ResNet, an official or moco-ts
// checkpoint, safetensors) instead of a random initialisation. The backbone is loaded into the
// query encoder, the key encoder starts as its copy (as it always does), and the head stays fresh:
// its size is MoCo's `dim`, not the checkpoint's.
import { describeLayout, inferResNetLayout, LayoutError } from "../encoder/layout.js";
import { readEncoderStateDict } from "../encoder/sources.js";
import type { MoCo } from "../moco/index.js";
import { scope, type Tensor } from "../torch/index.js";

/** Loads the backbone of `path` into both encoders of a fresh model; returns what was loaded. */
export function initialiseBackbone(model: MoCo, path: string): string {
  const found = readEncoderStateDict(path);
  try {
    const layout = inferResNetLayout(found.stateDict, path);
    const query = model.encoderQ;
    const ours = `${query.block} blocks [${query.layers.join(", ")}], width ${query.width}, ${query.inChannels} channel(s)${query.cifarStem ? ", CIFAR stem" : ""}`;
    const theirs = `${layout.block} blocks [${layout.layers.join(", ")}], width ${layout.width}, ${layout.inChannels} channel(s)${layout.cifarStem ? ", CIFAR stem" : ""}`;
    if (ours !== theirs)
      throw new LayoutError(`${path}: a checkpoint of another architecture (${theirs}); this run builds ${ours}`);
    const backbone = new Map<string, Tensor>([...found.stateDict].filter(([key]) => !key.startsWith("fc.")));
    const { missingKeys, unexpectedKeys } = query.loadStateDict(backbone, { strict: false });
    const missingBackbone = missingKeys.filter((key) => !key.startsWith("fc."));
    if (missingBackbone.length > 0 || unexpectedKeys.length > 0)
      throw new LayoutError(
        `${path}: backbone keys do not match (missing: ${missingBackbone.join(", ") || "none"}; unexpected: ${unexpectedKeys.join(", ") || "none"})`,
      );
    scope(() => model.encoderK.loadStateDict(query.stateDict()));
    return `${describeLayout({ ...layout, head: { kind: "none" } })} from ${path} (${found.source})`;
  } finally {
    for (const tensor of found.stateDict.values()) tensor.dispose();
    for (const tensor of found.others) tensor.dispose();
  }
}
