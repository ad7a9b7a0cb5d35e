// The few lines of Python that build, from torchvision's own parts, a ResNet that
// `torchvision.models.<arch>()` cannot make by itself (a CIFAR stem, another width, other input
// channels), so that a torchvision-format export loads with `load_state_dict(strict=True)`.
// torchvision's ResNet.__init__ hard-codes 64 channels and the 7×7 stem; its blocks and
// `_make_layer` take any width, so the script sets the stem and the width and reuses the rest.
import type { ResNetLayout } from "../encoder/layout.js";

/** Where the script goes: beside the export, `encoder.pth` → `encoder.py`. */
export function builderScriptPath(exportPath: string): string {
  const stem = exportPath.replace(/\.[^./\\]*$/, "");
  // No extension, or an export itself named .py: keep the whole name and add one.
  return stem === exportPath || exportPath.endsWith(".py") ? `${exportPath}.build.py` : `${stem}.py`;
}

/** Python source defining build_model() for `layout` (fc: Identity, or the Linear head when included). */
export function torchvisionBuilderScript(
  layout: ResNetLayout,
  options: { includeHead: boolean; weights: string },
): string {
  const block = layout.block === "bottleneck" ? "Bottleneck" : "BasicBlock";
  const stem = layout.cifarStem
    ? `nn.Conv2d(${layout.inChannels}, ${layout.width}, kernel_size=3, stride=1, padding=1, bias=False)`
    : `nn.Conv2d(${layout.inChannels}, ${layout.width}, kernel_size=7, stride=2, padding=3, bias=False)`;
  const head =
    options.includeHead && layout.head.kind === "linear"
      ? `nn.Linear(${layout.head.inFeatures}, ${layout.head.outFeatures})`
      : "nn.Identity()";
  const w = layout.width;
  return `# Builds the network of ${options.weights} (written by moco export): torchvision's ${layout.arch}
# with ${[
    layout.width === 64 ? null : `width ${layout.width}`,
    layout.inChannels === 3 ? null : `${layout.inChannels} input channel(s)`,
    layout.cifarStem ? "the CIFAR stem (3x3 conv1, no max-pool)" : null,
  ]
    .filter((x) => x !== null)
    .join(", ")}, which torchvision.models.${layout.arch}() cannot make by itself.
#   exec(open("THIS_FILE").read()); model = build_model()
#   model.load_state_dict(torch.load("${options.weights}"))
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


def build_model():
    model = ResNet(${block}, ${JSON.stringify([...layout.layers])})  # torchvision's blocks and layer maker
    model.inplanes = ${w}
    model.conv1 = ${stem}
    model.bn1 = nn.BatchNorm2d(${w})
    model.maxpool = ${layout.cifarStem ? "nn.Identity()" : "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)"}
    model.layer1 = model._make_layer(${block}, ${w}, ${layout.layers[0] ?? 0})
    model.layer2 = model._make_layer(${block}, ${w * 2}, ${layout.layers[1] ?? 0}, stride=2)
    model.layer3 = model._make_layer(${block}, ${w * 4}, ${layout.layers[2] ?? 0}, stride=2)
    model.layer4 = model._make_layer(${block}, ${w * 8}, ${layout.layers[3] ?? 0}, stride=2)
    model.fc = ${head}
    return model
`;
}
