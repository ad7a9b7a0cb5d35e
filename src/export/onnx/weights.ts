// Module tensors as the float32 arrays an ONNX file stores, and BatchNorm's eval-mode affine map
// folded into the convolution before it.
import type { BatchNorm2d, Conv2d } from "../../nn/index.js";
import { scope, type Tensor } from "../../torch/index.js";

/** A copy of `t`'s elements as float32, row-major, read on the CPU; frees every handle it makes. */
export function floatData(t: Tensor): Float32Array {
  return scope(() => {
    let c = t.detach();
    if (c.device !== "cpu") c = c.toDevice("cpu");
    if (c.dtype !== "float32") c = c.to("float32");
    return c.contiguous().toTypedArray<"float32">();
  });
}

/** What BatchNorm computes in eval mode: (x - mean) / sqrt(variance + eps) * weight + bias, per channel. */
export interface EvalBatchNorm {
  weight: Float32Array;
  bias: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  eps: number;
}

/** `bn`'s eval-mode parameters (weight 1 and bias 0 without affine); `path` names it in errors. */
export function evalBatchNorm(bn: BatchNorm2d, path: string): EvalBatchNorm {
  const mean = bn.runningMean;
  const variance = bn.runningVar;
  if (mean === null || variance === null) {
    throw new Error(
      `exportOnnx: ${path} (${bn.typeName}) has no running statistics (trackRunningStats: false), so its ` +
        "output depends on the batch and has no eval-mode form to export",
    );
  }
  const n = bn.numFeatures;
  const weight = bn.weight;
  const bias = bn.bias;
  return {
    weight: weight === null ? new Float32Array(n).fill(1) : floatData(weight),
    bias: bias === null ? new Float32Array(n) : floatData(bias),
    mean: floatData(mean),
    variance: floatData(variance),
    eps: bn.eps,
  };
}

/**
 * The weight and bias of one convolution equal to `conv` followed by `bn` in eval mode:
 * W' = W·s and b' = (b - mean)·s + beta per output channel, s = weight / sqrt(variance + eps),
 * computed in double precision and rounded once.
 */
export function foldIntoConv(conv: Conv2d, bn: EvalBatchNorm): { weight: Float32Array; bias: Float32Array } {
  const weight = floatData(conv.weight);
  const convBias = conv.bias === null ? null : floatData(conv.bias);
  const channels = conv.outChannels;
  const perChannel = weight.length / channels;
  const bias = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    const s = (bn.weight[o] as number) / Math.sqrt((bn.variance[o] as number) + bn.eps);
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) weight[i] = (weight[i] as number) * s;
    bias[o] = ((convBias?.[o] ?? 0) - (bn.mean[o] as number)) * s + (bn.bias[o] as number);
  }
  return { weight, bias };
}
