// A loaded encoder written for other tools: torchvision's ResNet state dict (torch.save format),
// safetensors (same keys, the architecture in the metadata), or ONNX.
import type { Encoder } from "../encoder/encoder.js";
import type { ResNetLayout } from "../encoder/layout.js";
import { writeSafetensors } from "../io/index.js";
import { save, scope, type Tensor } from "../torch/index.js";
import { exportOnnx, writeOnnx } from "./onnx/export.js";

export const EXPORT_FORMATS = ["torchvision", "safetensors", "onnx"] as const;
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
}

/** Image side of the small datasets, for encoders pretrained on them at their own size. */
const DATASET_SIZES: Readonly<Record<string, number>> = { "fashion-mnist": 28, mnist: 28, cifar10: 32, cifar100: 32 };

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
      if (differences.length > 0)
        notes.push(`this network differs from torchvision's ${layout.arch}: ${differences.join("; ")}`);
      return { tensors: tensors.size, inputShape: null, notes };
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
      });
      return { tensors: tensors.size, inputShape: null, notes };
    }
    case "onnx": {
      const trainedOn = encoder.info.trainedOn;
      const size =
        options.imageSize ??
        trainedOn?.imageSize ??
        (trainedOn === null ? undefined : DATASET_SIZES[trainedOn.dataset]) ??
        (layout.cifarStem ? 32 : 224);
      const inputShape = [layout.inChannels, size, size] as const;
      const bytes = exportOnnx(encoder.model, {
        inputShape,
        includeHead,
        ...(options.opset === undefined ? {} : { opset: options.opset }),
        ...(options.foldBatchNorm === undefined ? {} : { foldBatchNorm: options.foldBatchNorm }),
      });
      writeOnnx(options.path, bytes);
      notes.push(`ONNX input "input": normalised float images [batch, ${inputShape.join(", ")}]; output "features"`);
      const tensors = encoder.model.stateDictKeys().filter((key) => includeHead || !key.startsWith("fc.")).length;
      return { tensors, inputShape, notes };
    }
  }
}
