// torch.nn.functional equivalents, forward and gradients, checked against PyTorch.
import * as torch from "../src/torch/index.js";
import { F } from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(4000);
const img = torch.randn([2, 4, 9, 9]);
const w = torch.randn([6, 4, 3, 3]).mul(0.3);
const wg = torch.randn([6, 2, 3, 3]).mul(0.3); // groups = 2
const wdw = torch.randn([4, 1, 3, 3]); // depthwise
const bias = torch.randn([6]);
const bnIn = torch.randn([4, 3, 5, 5]).mul(2).add(0.5);
const bn2d = torch.randn([8, 3]);
const gamma = torch.rand([3]).add(0.5);
const beta = torch.randn([3]);
const runMean = torch.randn([3]).mul(0.1);
const runVar = torch.rand([3]).add(0.5);
const feats = torch.randn([5, 7]);
const feats3d = torch.randn([2, 3, 7]);
const lw = torch.randn([4, 7]).mul(0.4);
const lb = torch.randn([4]);
const small = torch.randn([2, 3, 7, 6]);
const logits = torch.randn([6, 5]).mul(2);
const target = torch.tensor([0, 4, 2, 2, 1, 3]);
const targetIgnored = torch.tensor([0, -100, 2, 2, -100, 3]);
const targetIgnore2 = torch.tensor([0, 4, 2, 2, 1, 3]);
const classWeight = torch.rand([5]).add(0.5);
const probs = torch.randn([6, 5]).softmax(1);
const logits4d = torch.randn([2, 5, 3, 3]);
const target4d = torch.randint(0, 5, [2, 3, 3]);
const gridIn = torch.randn([2, 3, 5, 6]);
const grid = torch.rand([2, 4, 7, 2]).mul(2.4).sub(1.2);
const theta = torch.tensor([
  [
    [0.9, -0.2, 0.1],
    [0.3, 1.1, -0.2],
  ],
  [
    [1.2, 0.0, 0.0],
    [0.1, 0.8, 0.3],
  ],
]);
const seq = torch.randn([2, 3, 8]);

crossCheck("nn: conv2d", [
  op({
    name: "conv2d plain",
    expr: "F.conv2d(x, w, b)",
    inputs: { x: img, w, b: bias },
    ours: ({ x, w, b }) => F.conv2d(x, w, b),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "conv2d stride 2 padding 1",
    expr: "F.conv2d(x, w, b, stride=2, padding=1)",
    inputs: { x: img, w, b: bias },
    ours: ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "conv2d dilation 2 no bias",
    expr: "F.conv2d(x, w, dilation=2, padding=2)",
    inputs: { x: img, w },
    ours: ({ x, w }) => F.conv2d(x, w, null, { dilation: 2, padding: 2 }),
    grad: ["x", "w"],
  }),
  op({
    name: "conv2d groups 2",
    expr: "F.conv2d(x, w, b, groups=2, padding=1)",
    inputs: { x: img, w: wg, b: bias },
    ours: ({ x, w, b }) => F.conv2d(x, w, b, { groups: 2, padding: 1 }),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "conv2d depthwise",
    expr: "F.conv2d(x, w, groups=4, stride=2)",
    inputs: { x: img, w: wdw },
    ours: ({ x, w }) => F.conv2d(x, w, null, { groups: 4, stride: 2 }),
    grad: ["x", "w"],
  }),
  op({
    name: "conv2d asymmetric stride, padding, dilation",
    expr: "F.conv2d(x, w, b, stride=(1, 2), padding=(0, 1), dilation=(2, 1))",
    inputs: { x: img, w, b: bias },
    ours: ({ x, w, b }) => F.conv2d(x, w, b, { stride: [1, 2], padding: [0, 1], dilation: [2, 1] }),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "conv2d channel mismatch throws",
    expr: "F.conv2d(x, w)",
    inputs: { x: img, w: wg },
    ours: ({ x, w }) => F.conv2d(x, w),
    throws: true,
  }),
]);

crossCheck("nn: batch norm", [
  op({
    name: "batchNorm training updates running stats",
    expr: "F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)",
    inputs: { x: bnIn, rm: runMean, rv: runVar, g: gamma, b: beta },
    ours: ({ x, rm, rv, g, b }) => F.batchNorm(x, rm, rv, { weight: g, bias: b, training: true }),
    grad: ["x", "g", "b"],
    after: ["rm", "rv"],
  }),
  op({
    name: "batchNorm training momentum 0.3 eps 1e-3",
    expr: "F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.3, eps=1e-3)",
    inputs: { x: bnIn, rm: runMean, rv: runVar, g: gamma, b: beta },
    ours: ({ x, rm, rv, g, b }) =>
      F.batchNorm(x, rm, rv, { weight: g, bias: b, training: true, momentum: 0.3, eps: 1e-3 }),
    grad: ["x", "g", "b"],
    after: ["rm", "rv"],
  }),
  op({
    name: "batchNorm eval uses running stats",
    expr: "F.batch_norm(x, rm, rv, g, b, training=False, eps=1e-3)",
    inputs: { x: bnIn, rm: runMean, rv: runVar, g: gamma, b: beta },
    ours: ({ x, rm, rv, g, b }) => F.batchNorm(x, rm, rv, { weight: g, bias: b, training: false, eps: 1e-3 }),
    grad: ["x", "g", "b"],
    after: ["rm", "rv"],
  }),
  op({
    name: "batchNorm training without running stats or affine",
    expr: "F.batch_norm(x, None, None, training=True)",
    inputs: { x: bnIn },
    ours: ({ x }) => F.batchNorm(x, null, null, { training: true }),
    grad: ["x"],
  }),
  op({
    name: "batchNorm on (N, C) input",
    expr: "F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.5)",
    inputs: { x: bn2d, rm: runMean, rv: runVar, g: gamma, b: beta },
    ours: ({ x, rm, rv, g, b }) => F.batchNorm(x, rm, rv, { weight: g, bias: b, training: true, momentum: 0.5 }),
    grad: ["x", "g", "b"],
    after: ["rm", "rv"],
  }),
]);

crossCheck("nn: linear, activations, pooling, softmax", [
  op({
    name: "linear",
    expr: "F.linear(x, w, b)",
    inputs: { x: feats, w: lw, b: lb },
    ours: ({ x, w, b }) => F.linear(x, w, b),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "linear no bias",
    expr: "F.linear(x, w)",
    inputs: { x: feats, w: lw },
    ours: ({ x, w }) => F.linear(x, w),
    grad: ["x", "w"],
  }),
  op({
    name: "linear 3-d input",
    expr: "F.linear(x, w, b)",
    inputs: { x: feats3d, w: lw, b: lb },
    ours: ({ x, w, b }) => F.linear(x, w, b),
    grad: ["x", "w", "b"],
  }),
  op({ name: "relu", expr: "F.relu(x)", inputs: { x: small }, ours: ({ x }) => F.relu(x), grad: ["x"] }),
  op({
    name: "maxPool2d 2",
    expr: "F.max_pool2d(x, 2)",
    inputs: { x: small },
    ours: ({ x }) => F.maxPool2d(x, 2),
    grad: ["x"],
  }),
  op({
    name: "maxPool2d 3 stride 2 padding 1",
    expr: "F.max_pool2d(x, 3, stride=2, padding=1)",
    inputs: { x: small },
    ours: ({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
    grad: ["x"],
  }),
  op({
    name: "maxPool2d dilation ceil mode",
    expr: "F.max_pool2d(x, (2, 3), stride=(2, 1), dilation=(1, 2), ceil_mode=True)",
    inputs: { x: small },
    ours: ({ x }) => F.maxPool2d(x, [2, 3], { stride: [2, 1], dilation: [1, 2], ceilMode: true }),
    grad: ["x"],
  }),
  op({
    name: "avgPool2d",
    expr: "(F.avg_pool2d(x, 2), F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True))",
    inputs: { x: small },
    ours: ({ x }) => [
      F.avgPool2d(x, 2),
      F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false, ceilMode: true }),
    ],
    grad: ["x"],
  }),
  op({
    name: "adaptiveAvgPool2d 1",
    expr: "F.adaptive_avg_pool2d(x, 1)",
    inputs: { x: small },
    ours: ({ x }) => F.adaptiveAvgPool2d(x, 1),
    grad: ["x"],
  }),
  op({
    name: "adaptiveAvgPool2d uneven",
    expr: "F.adaptive_avg_pool2d(x, (3, 4))",
    inputs: { x: small },
    ours: ({ x }) => F.adaptiveAvgPool2d(x, [3, 4]),
    grad: ["x"],
  }),
  op({
    name: "softmax dim 1",
    expr: "F.softmax(x, 1)",
    inputs: { x: logits },
    ours: ({ x }) => F.softmax(x, 1),
    grad: ["x"],
  }),
  op({
    name: "softmax dim 0",
    expr: "x.softmax(0)",
    inputs: { x: logits },
    ours: ({ x }) => x.softmax(0),
    grad: ["x"],
  }),
  op({
    name: "logSoftmax",
    expr: "F.log_softmax(x, -1)",
    inputs: { x: small },
    ours: ({ x }) => F.logSoftmax(x, -1),
    grad: ["x"],
  }),
  op({
    name: "logSoftmax large logits",
    expr: "F.log_softmax(x * 50, 1)",
    inputs: { x: logits },
    ours: ({ x }) => F.logSoftmax(x.mul(50), 1),
    grad: ["x"],
  }),
  op({
    name: "dropout after seed",
    setup: "torch.manual_seed(77)",
    expr: "F.dropout(x, 0.3)",
    inputs: { x: small },
    ours: ({ x }) => (torch.manualSeed(77), F.dropout(x, 0.3)),
    grad: ["x"],
  }),
  op({
    name: "dropout eval is identity",
    expr: "F.dropout(x, 0.3, training=False)",
    inputs: { x: small },
    ours: ({ x }) => F.dropout(x, 0.3, false),
    grad: ["x"],
  }),
]);

crossCheck("nn: losses and normalize", [
  op({
    name: "crossEntropy mean",
    expr: "F.cross_entropy(x, t)",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy sum",
    expr: "F.cross_entropy(x, t, reduction='sum')",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t, { reduction: "sum" }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy none",
    expr: "F.cross_entropy(x, t, reduction='none')",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t, { reduction: "none" }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy label smoothing mean",
    expr: "F.cross_entropy(x, t, label_smoothing=0.1)",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.1 }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy label smoothing sum",
    expr: "F.cross_entropy(x, t, label_smoothing=0.25, reduction='sum')",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.25, reduction: "sum" }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy label smoothing none",
    expr: "F.cross_entropy(x, t, label_smoothing=0.2, reduction='none')",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.2, reduction: "none" }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy ignores -100 by default",
    expr: "(F.cross_entropy(x, t), F.cross_entropy(x, t, reduction='none'))",
    inputs: { x: logits, t: targetIgnored },
    ours: ({ x, t }) => [F.crossEntropy(x, t), F.crossEntropy(x, t, { reduction: "none" })],
    grad: ["x"],
  }),
  op({
    name: "crossEntropy ignoreIndex 2",
    expr: "F.cross_entropy(x, t, ignore_index=2)",
    inputs: { x: logits, t: targetIgnore2 },
    ours: ({ x, t }) => F.crossEntropy(x, t, { ignoreIndex: 2 }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy ignoreIndex with label smoothing",
    expr: "(F.cross_entropy(x, t, ignore_index=2, label_smoothing=0.1), F.cross_entropy(x, t, ignore_index=2, label_smoothing=0.1, reduction='sum'))",
    inputs: { x: logits, t: targetIgnore2 },
    ours: ({ x, t }) => [
      F.crossEntropy(x, t, { ignoreIndex: 2, labelSmoothing: 0.1 }),
      F.crossEntropy(x, t, { ignoreIndex: 2, labelSmoothing: 0.1, reduction: "sum" }),
    ],
    grad: ["x"],
  }),
  op({
    name: "crossEntropy class weights",
    expr: "(F.cross_entropy(x, t, weight=cw), F.cross_entropy(x, t, weight=cw, label_smoothing=0.1))",
    inputs: { x: logits, t: target, cw: classWeight },
    ours: ({ x, t, cw }) => [
      F.crossEntropy(x, t, { weight: cw }),
      F.crossEntropy(x, t, { weight: cw, labelSmoothing: 0.1 }),
    ],
    grad: ["x"],
  }),
  op({
    name: "crossEntropy probability targets",
    expr: "(F.cross_entropy(x, p), F.cross_entropy(x, p, label_smoothing=0.1))",
    inputs: { x: logits, p: probs },
    ours: ({ x, p }) => [F.crossEntropy(x, p), F.crossEntropy(x, p, { labelSmoothing: 0.1 })],
    grad: ["x", "p"],
  }),
  op({
    name: "crossEntropy spatial (N, C, H, W)",
    expr: "F.cross_entropy(x, t, label_smoothing=0.05)",
    inputs: { x: logits4d, t: target4d },
    ours: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.05 }),
    grad: ["x"],
  }),
  op({
    name: "crossEntropy target out of range throws",
    expr: "F.cross_entropy(x, t + 5)",
    inputs: { x: logits, t: target },
    ours: ({ x, t }) => F.crossEntropy(x, t.add(5)),
    throws: true,
  }),
  op({
    name: "nllLoss",
    expr: "(F.nll_loss(F.log_softmax(x, 1), t), F.nll_loss(F.log_softmax(x, 1), t, weight=cw, reduction='sum'))",
    inputs: { x: logits, t: targetIgnored, cw: classWeight },
    ours: ({ x, t, cw }) => [
      F.nllLoss(F.logSoftmax(x, 1), t),
      F.nllLoss(F.logSoftmax(x, 1), t, { weight: cw, reduction: "sum" }),
    ],
    grad: ["x"],
  }),
  op({
    name: "mseLoss",
    expr: "(F.mse_loss(x, p), F.mse_loss(x, p, reduction='none'))",
    inputs: { x: logits, p: probs },
    ours: ({ x, p }) => [F.mseLoss(x, p), F.mseLoss(x, p, "none")],
    grad: ["x", "p"],
  }),
  op({ name: "normalize", expr: "F.normalize(x)", inputs: { x: feats }, ours: ({ x }) => F.normalize(x), grad: ["x"] }),
  op({
    name: "normalize p1 dim 0",
    expr: "F.normalize(x, p=1, dim=0)",
    inputs: { x: feats },
    ours: ({ x }) => F.normalize(x, { p: 1, dim: 0 }),
    grad: ["x"],
  }),
  op({
    name: "normalize eps clamps tiny rows",
    expr: "F.normalize(x * torch.tensor([[1.0], [1e-6], [1.0], [0.0], [1.0]]), eps=1e-3)",
    inputs: { x: feats },
    ours: ({ x }) =>
      F.normalize(x.mul(torch.tensor([[1], [1e-6], [1], [0], [1]], { dtype: "float32" })), { eps: 1e-3 }),
    grad: ["x"],
  }),
  op({
    name: "normalize 4-d dim 1",
    expr: "F.normalize(x, dim=1)",
    inputs: { x: small },
    ours: ({ x }) => F.normalize(x, { dim: 1 }),
    grad: ["x"],
  }),
]);

crossCheck("nn: interpolate, gridSample, affineGrid, pad", [
  op({
    name: "interpolate bilinear size",
    expr: "F.interpolate(x, size=(11, 4), mode='bilinear', align_corners=False)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: [11, 4], mode: "bilinear", alignCorners: false }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear size alignCorners",
    expr: "F.interpolate(x, size=(11, 4), mode='bilinear', align_corners=True)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: [11, 4], mode: "bilinear", alignCorners: true }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear default alignCorners",
    expr: "F.interpolate(x, size=5, mode='bilinear')",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: 5, mode: "bilinear" }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear scale 2",
    expr: "F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { scaleFactor: 2, mode: "bilinear", alignCorners: false }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear scale 1.5 alignCorners",
    expr: "F.interpolate(x, scale_factor=1.5, mode='bilinear', align_corners=True)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { scaleFactor: 1.5, mode: "bilinear", alignCorners: true }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear non-integer downscale",
    expr: "F.interpolate(x, scale_factor=(0.7, 0.45), mode='bilinear', align_corners=False)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { scaleFactor: [0.7, 0.45], mode: "bilinear", alignCorners: false }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear antialias, shrinking",
    expr: "F.interpolate(x, size=(3, 2), mode='bilinear', align_corners=False, antialias=True)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: [3, 2], mode: "bilinear", antialias: true }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear antialias, one axis grows, one shrinks",
    expr: "F.interpolate(x, size=(11, 2), mode='bilinear', align_corners=False, antialias=True)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: [11, 2], mode: "bilinear", antialias: true }),
    grad: ["x"],
  }),
  op({
    name: "interpolate bilinear antialias, scale factor",
    expr: "F.interpolate(x, scale_factor=(0.7, 0.45), mode='bilinear', align_corners=False, antialias=True)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { scaleFactor: [0.7, 0.45], mode: "bilinear", antialias: true }),
    grad: ["x"],
  }),
  op({
    name: "interpolate nearest size",
    expr: "F.interpolate(x, size=(10, 4), mode='nearest')",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { size: [10, 4], mode: "nearest" }),
    grad: ["x"],
  }),
  op({
    name: "interpolate nearest scale 1.7",
    expr: "F.interpolate(x, scale_factor=1.7)",
    inputs: { x: small },
    ours: ({ x }) => F.interpolate(x, { scaleFactor: 1.7 }),
    grad: ["x"],
  }),
  op({
    name: "gridSample bilinear zeros",
    expr: "F.grid_sample(x, g, mode='bilinear', padding_mode='zeros', align_corners=False)",
    inputs: { x: gridIn, g: grid },
    ours: ({ x, g }) => F.gridSample(x, g),
    grad: ["x", "g"],
  }),
  op({
    name: "gridSample bilinear alignCorners",
    expr: "F.grid_sample(x, g, align_corners=True)",
    inputs: { x: gridIn, g: grid },
    ours: ({ x, g }) => F.gridSample(x, g, { alignCorners: true }),
    grad: ["x", "g"],
  }),
  op({
    name: "gridSample nearest border",
    expr: "F.grid_sample(x, g, mode='nearest', padding_mode='border', align_corners=False)",
    inputs: { x: gridIn, g: grid },
    ours: ({ x, g }) => F.gridSample(x, g, { mode: "nearest", paddingMode: "border" }),
    grad: ["x", "g"],
  }),
  op({
    name: "gridSample bilinear reflection",
    expr: "F.grid_sample(x, g, padding_mode='reflection', align_corners=True)",
    inputs: { x: gridIn, g: grid },
    ours: ({ x, g }) => F.gridSample(x, g, { paddingMode: "reflection", alignCorners: true }),
    grad: ["x", "g"],
  }),
  op({
    name: "affineGrid",
    expr: "F.affine_grid(t, (2, 3, 4, 5), align_corners=False)",
    inputs: { t: theta },
    ours: ({ t }) => F.affineGrid(t, [2, 3, 4, 5]),
    grad: ["t"],
  }),
  op({
    name: "affineGrid alignCorners",
    expr: "F.affine_grid(t, (2, 3, 6, 3), align_corners=True)",
    inputs: { t: theta },
    ours: ({ t }) => F.affineGrid(t, [2, 3, 6, 3], { alignCorners: true }),
    grad: ["t"],
  }),
  op({
    name: "affineGrid then gridSample",
    expr: "F.grid_sample(x, F.affine_grid(t, (2, 3, 4, 4), align_corners=False), align_corners=False)",
    inputs: { x: gridIn, t: theta },
    ours: ({ x, t }) => F.gridSample(x, F.affineGrid(t, [2, 3, 4, 4])),
    grad: ["x", "t"],
  }),
  op({
    name: "pad constant",
    expr: "F.pad(x, (1, 2))",
    inputs: { x: small },
    ours: ({ x }) => F.pad(x, [1, 2]),
    grad: ["x"],
  }),
  op({
    name: "pad constant value 4 sides",
    expr: "F.pad(x, (1, 1, 2, 0), value=0.5)",
    inputs: { x: small },
    ours: ({ x }) => F.pad(x, [1, 1, 2, 0], { value: 0.5 }),
    grad: ["x"],
  }),
  op({
    name: "pad constant negative crops",
    expr: "F.pad(x, (-1, 2, 0, -2))",
    inputs: { x: small },
    ours: ({ x }) => F.pad(x, [-1, 2, 0, -2]),
    grad: ["x"],
  }),
  op({
    name: "pad reflect 2-d",
    expr: "F.pad(x, (2, 1, 1, 2), mode='reflect')",
    inputs: { x: small },
    ours: ({ x }) => F.pad(x, [2, 1, 1, 2], { mode: "reflect" }),
    grad: ["x"],
  }),
  op({
    name: "pad replicate 2-d",
    expr: "F.pad(x, (3, 0, 1, 2), mode='replicate')",
    inputs: { x: small },
    ours: ({ x }) => F.pad(x, [3, 0, 1, 2], { mode: "replicate" }),
    grad: ["x"],
  }),
  op({
    name: "pad reflect 1-d",
    expr: "F.pad(x, (2, 3), mode='reflect')",
    inputs: { x: seq },
    ours: ({ x }) => F.pad(x, [2, 3], { mode: "reflect" }),
    grad: ["x"],
  }),
  op({
    name: "pad replicate 1-d",
    expr: "F.pad(x, (1, 4), mode='replicate')",
    inputs: { x: seq },
    ours: ({ x }) => F.pad(x, [1, 4], { mode: "replicate" }),
    grad: ["x"],
  }),
  op({
    name: "pad reflect too wide throws",
    expr: "F.pad(x, (8, 0), mode='reflect')",
    inputs: { x: seq },
    ours: ({ x }) => F.pad(x, [8, 0], { mode: "reflect" }),
    throws: true,
  }),
]);
