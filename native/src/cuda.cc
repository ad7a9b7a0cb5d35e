// CUDA runtime switches and the pieces of torch.cuda / torch.amp the training loop needs: device
// count, synchronize, the cuDNN autotuner switch, pinned host memory, and the two fused ops behind
// torch.amp.GradScaler. Everything goes through libtorch's device-independent entry points (the C++
// frontend's torch/cuda.h and the dispatcher), so the addon compiles without CUDA's headers and, on a
// libtorch without CUDA, each call reports that instead of failing to load.
#include <ATen/Context.h>
#include <torch/csrc/api/include/torch/cuda.h>

#include "args.h"

namespace moco {

namespace {

void requireCuda(const char* what) {
  if (!torch::cuda::is_available()) {
    throw ArgError(std::string(what) + " needs a CUDA device, and this libtorch " +
                   (at::hasCUDA() ? "sees none" : "was built without CUDA"));
  }
}

Napi::Value cudaDeviceCount(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(torch::cuda::device_count())); }

// (deviceIndex | null): waits for every kernel queued on that device (all devices' current one when null).
Napi::Value cudaSynchronize(Args& a) {
  requireCuda("synchronize");
  auto index = a.optI64(0);
  if (index && (*index < 0 || *index >= static_cast<int64_t>(torch::cuda::device_count()))) {
    throw ArgError("no CUDA device " + std::to_string(*index));
  }
  torch::cuda::synchronize(index ? *index : -1);
  return a.undefined();
}

Napi::Value cudnnIsAvailable(Args& a) { return Napi::Boolean::New(a.env(), torch::cuda::cudnn_is_available()); }
Napi::Value cudnnBenchmark(Args& a) { return Napi::Boolean::New(a.env(), at::globalContext().benchmarkCuDNN()); }
// torch.backends.cudnn.benchmark = flag: cuDNN times its algorithms on each new input shape and keeps the fastest.
Napi::Value setCudnnBenchmark(Args& a) {
  at::globalContext().setBenchmarkCuDNN(a.b(0));
  return a.undefined();
}

// (cudnn, matmul): torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32.
Napi::Value setAllowTf32(Args& a) {
  at::globalContext().setAllowTF32CuDNN(a.b(0));
  at::globalContext().setAllowTF32CuBLAS(a.b(1));
  return a.undefined();
}
Napi::Value allowTf32(Args& a) {
  auto out = Napi::Object::New(a.env());
  out.Set("cudnn", at::globalContext().allowTF32CuDNN());
  out.Set("matmul", at::globalContext().allowTF32CuBLAS());
  return out;
}

// Page-locked copy of a CPU tensor: what DataLoader(pin_memory=True) makes, so that a non-blocking
// copy to the GPU runs on the copy engine while the host goes on.
Napi::Value pinMemory(Args& a) {
  requireCuda("pinMemory");
  return a.ret(a.t(0).pin_memory());
}
Napi::Value isPinned(Args& a) { return Napi::Boolean::New(a.env(), a.t(0).is_pinned()); }

// (grads[], foundInf, invScale): grads *= invScale in place; foundInf becomes 1 if any is not finite.
Napi::Value ampUnscale(Args& a) {
  auto grads = a.tensors(0);
  at::Tensor foundInf = a.t(1);
  at::_amp_foreach_non_finite_check_and_unscale_(grads, foundInf, a.t(2));
  return a.undefined();
}

// (scale, growthTracker, foundInf, growthFactor, backoffFactor, growthInterval): GradScaler.update.
Napi::Value ampUpdateScale(Args& a) {
  at::Tensor scale = a.t(0);
  at::Tensor tracker = a.t(1);
  at::_amp_update_scale_(scale, tracker, a.t(2), a.f64(3), a.f64(4), a.i64(5));
  return a.undefined();
}

}  // namespace

void registerCuda(Napi::Env env, Napi::Object exports) {
  def(env, exports, "cudaDeviceCount", cudaDeviceCount);
  def(env, exports, "cudaSynchronize", cudaSynchronize);
  def(env, exports, "cudnnIsAvailable", cudnnIsAvailable);
  def(env, exports, "cudnnBenchmark", cudnnBenchmark);
  def(env, exports, "setCudnnBenchmark", setCudnnBenchmark);
  def(env, exports, "setAllowTf32", setAllowTf32);
  def(env, exports, "allowTf32", allowTf32);
  def(env, exports, "pinMemory", pinMemory);
  def(env, exports, "isPinned", isPinned);
  def(env, exports, "ampUnscale", ampUnscale);
  def(env, exports, "ampUpdateScale", ampUpdateScale);
}

}  // namespace moco
