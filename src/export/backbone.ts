// A loaded encoder written for other tools: torchvision's ResNet state dict (torch.save format),
// safetensors (same keys, the architecture in the metadata), ONNX, or detectron2's weights pickle.
// Safetensors and ONNX carry the input the encoder expects (size, channels, mean, std, features).
import { writeFileSync } from "node:fs";
import { basename } from "node:path";

import type { Encoder } from "../encoder/encoder.js";
import { inputMetadata } from "../encoder/input.js";
import type { ResNetLayout } from "../encoder/layout.js";
import { encoderInput } from "../encoder/preprocess.js";
import { AtomicFile } from "../util/atomic-file.js";
import { writeSafetensors } from "../io/index.js";
import { save, scope, type Tensor } from "../torch/index.js";
import { detectron2Pickle } from "./detectron2.js";
import { builderScriptPath, torchvisionBuilderScript } from "./torchvision-script.js";
import { exportOnnx, writeOnnx } from "./onnx/export.js";

export const EXPORT_FORMATS = ["torchvision", "safetensors", "onnx", "detectron2"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  format: ExportFormat;
  path: string;
  /** Include the head (`fc.*`); default false: the backbone alone, as transfer uses it. */
  includeHead?: boolean;
  /** ONNX input side (default: the pretraining crop, else the pretraining images', else 224 / 32). */
  imageSize?: number | null;
  opset?: number;
  foldBatchNorm?: boolean;
}

export interface ExportReport {
  tensors: number;
  /** ONNX: [C, H, W] of one input. */
  inputShape: readonly [number, number, number] | null;
  /** What a user must know to load the file (e.g. where it differs from torchvision's model). */
  notes: string[];
  /** torchvision: the Python file that builds a network torchvision cannot make by itself (else absent). */
  script?: string;
}

/** How this layout differs from `torchvision.models.<arch>()`, as advice for loading it there. */
export function torchvisionDifferences(layout: ResNetLayout): string[] {
  const differences: string[] = [];
  if (layout.width !== 64) differences.push(`width ${layout.width} (torchvision: 64)`);
  if (layout.inChannels !== 3) differences.push(`${layout.inChannels} input channel(s) (torchvision: 3)`);
  if (layout.cifarStem)
    differences.push("CIFAR stem: conv1 = nn.Conv2d(C, width, 3, 1, 1, bias=False) and maxpool = nn.Identity()");
  return differences;
}

/** The tensors to write, with torchvision's names: new handles on the encoder's storage, owned by the caller. */
export function exportStateDict(encoder: Encoder, includeHead: boolean): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  for (const [key, tensor] of encoder.model.stateDict()) {
    if (includeHead || !key.startsWith("fc.")) tensors.set(key, tensor);
  }
  return tensors;
}

export function exportBackbone(encoder: Encoder, options: ExportOptions): ExportReport {
  return scope(() => writeExport(encoder, options));
}

function writeExport(encoder: Encoder, options: ExportOptions): ExportReport {
  const layout = encoder.info.layout;
  const includeHead = options.includeHead ?? false;
  if (includeHead && layout.head.kind === "none") throw new RangeError(`${encoder.info.path} has no head to include`);
  const notes: string[] = [];
  const differences = torchvisionDifferences(layout);
  switch (options.format) {
    case "torchvision": {
      if (includeHead && layout.head.kind === "mlp")
        throw new RangeError(
          "torchvision's ResNet has a Linear fc; the MoCo v2 MLP head (fc.0, fc.2) does not fit: export without --head, or as safetensors/onnx",
        );
      const tensors = exportStateDict(encoder, includeHead);
      save(tensors, options.path);
      const fc = includeHead && layout.head.kind === "linear" ? `num_classes=${layout.head.outFeatures}` : "";
      notes.push(
        `load in Python: m = torchvision.models.${layout.arch}(${fc})${includeHead ? "" : "; m.fc = torch.nn.Identity()"}; m.load_state_dict(torch.load(path))`,
      );
      if (differences.length > 0) {
        const script = builderScriptPath(options.path);
        // Overwritten with each export: it describes exactly the weights beside it.
        writeFileSync(script, torchvisionBuilderScript(layout, { includeHead, weights: basename(options.path) }));
        notes.push(`this network differs from torchvision's ${layout.arch}: ${differences.join("; ")}`);
        notes.push(`${script} builds it from torchvision's parts: exec it, then model = build_model()`);
      }
      const script = differences.length > 0 ? { script: builderScriptPath(options.path) } : {};
      return { tensors: tensors.size, inputShape: null, notes, ...script };
    }
    case "safetensors": {
      const tensors = exportStateDict(encoder, includeHead);
      writeSafetensors(options.path, tensors, {
        format: "pt",
        arch: layout.arch,
        width: String(layout.width),
        in_channels: String(layout.inChannels),
        cifar_stem: String(layout.cifarStem),
        head: includeHead ? layout.head.kind : "none",
        source: encoder.info.path,
        ...inputMetadata(encoderInput(encoder), includeHead ? "head" : "backbone"),
      });
      return { tensors: tensors.size, inputShape: null, notes };
    }
    case "detectron2": {
      // As the official convert-pretrain-to-detectron2.py: every tensor of the query encoder, head included.
      if (includeHead) throw new RangeError("detectron2: the official conversion always keeps every key; drop --head");
      const tensors = encoder.model.stateDict();
      const file = AtomicFile.create(options.path, "detectron2 export");
      try {
        file.write(detectron2Pickle(tensors));
        file.commit();
      } catch (error) {
        file.abort();
        throw error;
      }
      notes.push(
        "detectron2: MODEL.WEIGHTS FILE with the official MoCo detection configs (configs/*_moco.yaml: MODEL.PIXEL_MEAN/STD, RESNETS.NORM SyncBN, STRIDE_IN_1X1 False)",
      );
      if (differences.length > 0)
        notes.push(`this network differs from detectron2's standard ResNet: ${differences.join("; ")}`);
      return { tensors: tensors.size, inputShape: null, notes };
    }
    case "onnx": {
      // The size the encoder was trained at (recorded in its checkpoint), unless the caller asks otherwise.
      const input = encoderInput(encoder);
      const size = options.imageSize ?? input.size;
      const inputShape = [layout.inChannels, size, size] as const;
      const bytes = exportOnnx(encoder.model, {
        inputShape,
        includeHead,
        metadata: {
          ...inputMetadata({ ...input, size }, includeHead ? "head" : "backbone"),
          arch: layout.arch,
          source: encoder.info.path,
        },
        ...(options.opset === undefined ? {} : { opset: options.opset }),
        ...(options.foldBatchNorm === undefined ? {} : { foldBatchNorm: options.foldBatchNorm }),
      });
      writeOnnx(options.path, bytes);
      notes.push(
        `ONNX input "input": float images [batch, ${inputShape.join(", ")}], (pixel/255 - mean) / std with mean ${JSON.stringify(input.mean)}, std ${JSON.stringify(input.std)} (also in the file's metadata_props); output "features"`,
      );
      const tensors = encoder.model.stateDictKeys().filter((key) => includeHead || !key.startsWith("fc.")).length;
      return { tensors, inputShape, notes };
    }
  }
}
