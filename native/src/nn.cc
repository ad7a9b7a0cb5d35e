// Neural-network functions (torch.nn.functional), same kernels and arguments as PyTorch's.
#include "args.h"

namespace moco {

namespace {

// (input, weight, bias | null, stride, padding, dilation, groups)
Napi::Value conv2d(Args& a) {
  return a.ret(at::conv2d(a.t(0), a.t(1), a.optT(2), a.ints(3), a.ints(4), a.ints(5), a.i64(6)));
}
// (input, weight | null, bias | null, runningMean | null, runningVar | null, training, momentum, eps)
Napi::Value batchNorm(Args& a) {
  return a.ret(at::batch_norm(a.t(0), a.optT(1), a.optT(2), a.optT(3), a.optT(4), a.b(5), a.f64(6), a.f64(7),
                              at::globalContext().userEnabledCuDNN()));
}
Napi::Value linear(Args& a) { return a.ret(at::linear(a.t(0), a.t(1), a.optT(2))); }
Napi::Value relu(Args& a) { return a.ret(at::relu(a.t(0))); }
Napi::Value leakyRelu(Args& a) { return a.ret(at::leaky_relu(a.t(0), a.scalar(1))); }
Napi::Value gelu(Args& a) { return a.ret(at::gelu(a.t(0))); }
// (input, kernel, stride, padding, dilation, ceilMode)
Napi::Value maxPool2d(Args& a) {
  return a.ret(at::max_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.b(5)));
}
// (input, kernel, stride, padding, ceilMode, countIncludePad)
Napi::Value avgPool2d(Args& a) {
  return a.ret(at::avg_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.b(4), a.b(5)));
}
Napi::Value adaptiveAvgPool2d(Args& a) { return a.ret(at::adaptive_avg_pool2d(a.t(0), a.ints(1))); }
Napi::Value softmax(Args& a) { return a.ret(at::softmax(a.t(0), a.i64(1))); }
Napi::Value logSoftmax(Args& a) { return a.ret(at::log_softmax(a.t(0), a.i64(1))); }
// (input, target, weight | null, reduction: 0 none | 1 mean | 2 sum, ignoreIndex, labelSmoothing)
Napi::Value crossEntropy(Args& a) {
  return a.ret(at::cross_entropy_loss(a.t(0), a.t(1), a.optT(2), a.i64(3), a.i64(4), a.f64(5)));
}
Napi::Value nllLoss(Args& a) { return a.ret(at::nll_loss(a.t(0), a.t(1), a.optT(2), a.i64(3), a.i64(4))); }
Napi::Value mseLoss(Args& a) { return a.ret(at::mse_loss(a.t(0), a.t(1), a.i64(2))); }
Napi::Value dropout(Args& a) { return a.ret(at::dropout(a.t(0), a.f64(1), a.b(2))); }
// (input, outH, outW, alignCorners, scaleH | null, scaleW | null)
Napi::Value upsampleBilinear2d(Args& a) {
  std::vector<int64_t> size{a.i64(1), a.i64(2)};
  return a.ret(at::upsample_bilinear2d(a.t(0), size, a.b(3), a.optF64(4), a.optF64(5)));
}
// (input, outH, outW, alignCorners, scaleH | null, scaleW | null): F.interpolate's antialias=True,
// the resampling torchvision matches to PIL's (a triangle filter widened by the factor when shrinking).
Napi::Value upsampleBilinear2dAA(Args& a) {
  std::vector<int64_t> size{a.i64(1), a.i64(2)};
  return a.ret(at::_upsample_bilinear2d_aa(a.t(0), size, a.b(3), a.optF64(4), a.optF64(5)));
}
// (input, outH, outW, scaleH | null, scaleW | null)
Napi::Value upsampleNearest2d(Args& a) {
  std::vector<int64_t> size{a.i64(1), a.i64(2)};
  return a.ret(at::upsample_nearest2d(a.t(0), size, a.optF64(3), a.optF64(4)));
}
// (input, grid, mode: 0 bilinear | 1 nearest | 2 bicubic, padding: 0 zeros | 1 border | 2 reflection, alignCorners)
Napi::Value gridSample(Args& a) { return a.ret(at::grid_sampler(a.t(0), a.t(1), a.i64(2), a.i64(3), a.b(4))); }
Napi::Value affineGrid(Args& a) { return a.ret(at::affine_grid_generator(a.t(0), a.ints(1), a.b(2))); }
Napi::Value constantPad(Args& a) { return a.ret(at::constant_pad_nd(a.t(0), a.ints(1), a.scalar(2))); }
// Reflect and replicate padding of the last two dims (pads = [left, right, top, bottom]) or last dim.
Napi::Value reflectionPad(Args& a) {
  auto pads = a.ints(1);
  if (pads.size() == 2) return a.ret(at::reflection_pad1d(a.t(0), pads));
  if (pads.size() == 4) return a.ret(at::reflection_pad2d(a.t(0), pads));
  throw ArgError("reflect padding takes 2 or 4 pad sizes, got " + std::to_string(pads.size()));
}
Napi::Value replicationPad(Args& a) {
  auto pads = a.ints(1);
  if (pads.size() == 2) return a.ret(at::replication_pad1d(a.t(0), pads));
  if (pads.size() == 4) return a.ret(at::replication_pad2d(a.t(0), pads));
  throw ArgError("replicate padding takes 2 or 4 pad sizes, got " + std::to_string(pads.size()));
}

}  // namespace

void registerNn(Napi::Env env, Napi::Object exports) {
  def(env, exports, "conv2d", conv2d);
  def(env, exports, "batchNorm", batchNorm);
  def(env, exports, "linear", linear);
  def(env, exports, "relu", relu);
  def(env, exports, "leakyRelu", leakyRelu);
  def(env, exports, "gelu", gelu);
  def(env, exports, "maxPool2d", maxPool2d);
  def(env, exports, "avgPool2d", avgPool2d);
  def(env, exports, "adaptiveAvgPool2d", adaptiveAvgPool2d);
  def(env, exports, "softmax", softmax);
  def(env, exports, "logSoftmax", logSoftmax);
  def(env, exports, "crossEntropy", crossEntropy);
  def(env, exports, "nllLoss", nllLoss);
  def(env, exports, "mseLoss", mseLoss);
  def(env, exports, "dropout", dropout);
  def(env, exports, "upsampleBilinear2d", upsampleBilinear2d);
  def(env, exports, "upsampleBilinear2dAA", upsampleBilinear2dAA);
  def(env, exports, "upsampleNearest2d", upsampleNearest2d);
  def(env, exports, "gridSample", gridSample);
  def(env, exports, "affineGrid", affineGrid);
  def(env, exports, "constantPad", constantPad);
  def(env, exports, "reflectionPad", reflectionPad);
  def(env, exports, "replicationPad", replicationPad);
}

}  // namespace moco
