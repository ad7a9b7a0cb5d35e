// `moco export`: a pretrained backbone in the layouts other tools read — a torchvision state dict
// (.pth, torch.load + load_state_dict), safetensors, or ONNX.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

import { exportBackbone, EXPORT_FORMATS, type ExportFormat } from "../export/backbone.js";
import { ENCODER_FLAGS, encoderFromFlags } from "./encoder-flags.js";
import { THREADS_FLAG, flagHelp, parseCommand, type Flag } from "./flags.js";

const EXPORT_FLAGS: readonly Flag[] = [
  ...ENCODER_FLAGS,
  { flag: "format", kind: "string", choices: EXPORT_FORMATS, help: EXPORT_FORMATS.join(" | ") + " (required)" },
  { flag: "out", kind: "string", meta: "FILE", help: "the file to write (required)" },
  {
    flag: "head",
    kind: "bool",
    help: "include the head (fc): a linear head or classifier; for torchvision, MLP heads do not fit",
    default: false,
  },
  {
    flag: "image-size",
    kind: "nullableInt",
    help: "ONNX: input height and width",
    defaultText: "the pretraining crop size, else 28/32 for the small datasets, 224",
    bounds: { min: 1 },
  },
  { flag: "opset", kind: "int", help: "ONNX operator set", default: 17, bounds: { min: 13, max: 17 } },
  { flag: "fold-bn", kind: "bool", help: "ONNX: fold BatchNorm into the convolutions", default: true },
  THREADS_FLAG,
];

export const EXPORT_HELP = `Usage: moco export --pretrained FILE --format FORMAT --out FILE [options]

Writes the encoder's backbone (and with --head its fc) for transfer:
  torchvision  a state dict with torchvision's ResNet keys (.pth): load it with
               model.fc = torch.nn.Identity(); model.load_state_dict(torch.load(FILE)); a network
               torchvision cannot build itself comes with FILE's name .py, which builds it
  safetensors  the same tensors as safetensors, the architecture and the input in its metadata
  onnx         an ONNX model (input [batch, C, H, W] normalised images, output the features),
               eval-mode BatchNorm folded into the convolutions unless --no-fold-bn; the input
               size, channels, mean and std in its metadata_props
  detectron2   what facebookresearch/moco's convert-pretrain-to-detectron2.py writes (.pkl):
               MODEL.WEIGHTS for detectron2 with the official detection configs

${flagHelp(EXPORT_FLAGS)}`;

export async function runExport(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "export",
    flags: EXPORT_FLAGS,
    help: EXPORT_HELP,
    positionals: { max: 0, what: "nothing" },
  });
  if (command === null) return 0;
  const { flags } = command;
  const format = flags.choice<ExportFormat>("format", EXPORT_FORMATS);
  const out = flags.string("out");
  const log = (line: string) => console.error(line);
  const encoder = encoderFromFlags(flags, log);
  try {
    mkdirSync(dirname(out), { recursive: true });
    const report = exportBackbone(encoder, {
      format,
      path: out,
      includeHead: flags.bool("head"),
      imageSize: flags.optionalNumber("image-size"),
      opset: flags.number("opset"),
      foldBatchNorm: flags.bool("fold-bn"),
    });
    for (const note of report.notes) log(note);
    console.log(
      `wrote ${out} (${format}, ${report.tensors} tensors${report.inputShape === null ? "" : `, input [batch, ${report.inputShape.join(", ")}]`})`,
    );
    return 0;
  } finally {
    encoder.dispose();
  }
}
