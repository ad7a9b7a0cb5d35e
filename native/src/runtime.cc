// Process-wide state: RNG, threads, handle lifetime, build facts.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/cuda.h>
#include <torch/csrc/api/include/torch/version.h>

#include <mutex>

#include "args.h"

// OpenMP's thread count, which belongs to the calling thread: weak, so that a libtorch whose
// parallel backend is not OpenMP (no libgomp loaded) still loads the addon.
extern "C" void omp_set_num_threads(int) __attribute__((weak));

namespace moco {

namespace {

// Seeds every default generator, like torch.manual_seed.
Napi::Value manualSeed(Args& a) {
  double seed = a.f64(0);
  if (!(seed >= 0) || seed != std::floor(seed) || seed > 9007199254740991.0) {
    throw ArgError("seed must be a non-negative safe integer, got " + std::to_string(seed));
  }
  {
    auto g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(static_cast<uint64_t>(seed));
  }
  // Every GPU's default generator (a no-op without CUDA), through the frontend's stable entry point.
  torch::cuda::manual_seed_all(static_cast<uint64_t>(seed));
  return a.undefined();
}

// The CPU generator's full state as a uint8 tensor (the same bytes as torch.get_rng_state()).
Napi::Value getRngState(Args& a) {
  auto g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  return a.ret(g.get_state());
}
Napi::Value setRngState(Args& a) {
  auto g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(a.t(0));
  return a.undefined();
}

Napi::Value setNumThreads(Args& a) {
  int64_t n = a.i64(0);
  if (n < 1) throw ArgError("thread count must be at least 1, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return a.undefined();
}
Napi::Value getNumThreads(Args& a) { return Napi::Number::New(a.env(), at::get_num_threads()); }
// Intra-op threads for the ops this thread calls, and no other thread's (a loader worker thread:
// at::set_num_threads would also set the process-wide count and thread pools while the training
// thread computes). With OpenMP, libtorch's count is the calling thread's OpenMP count once the
// thread has initialised it from the process-wide one, which at::get_num_threads() does first.
// Returns false where that is not so (another parallel backend): nothing changed.
Napi::Value setThreadNumThreads(Args& a) {
  int64_t n = a.i64(0);
  if (n < 1) throw ArgError("thread count must be at least 1, got " + std::to_string(n));
  bool openmp = omp_set_num_threads != nullptr &&
                at::get_parallel_info().find("parallel backend: OpenMP") != std::string::npos;
  if (!openmp) return Napi::Boolean::New(a.env(), false);
  at::get_num_threads();
  omp_set_num_threads(static_cast<int>(n));
  return Napi::Boolean::New(a.env(), true);
}

Napi::Value dispose(Args& a) {
  releaseHolder(a.env(), a.holder(0));
  return a.undefined();
}
Napi::Value accountExternalMemory(Args& a) {
  accountExternal(a.env(), a.holder(0));
  return a.undefined();
}
Napi::Value isDisposed(Args& a) { return Napi::Boolean::New(a.env(), !a.holder(0)->tensor.defined()); }
Napi::Value liveTensors(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(liveTensorCount())); }

Napi::Value buildInfo(Args& a) {
  auto info = Napi::Object::New(a.env());
  info.Set("torchVersion", TORCH_VERSION);
  info.Set("cudaAvailable", torch::cuda::is_available());
  info.Set("cudaDeviceCount", static_cast<double>(torch::cuda::device_count()));
  info.Set("cudnnAvailable", torch::cuda::cudnn_is_available());
  info.Set("parallelInfo", at::get_parallel_info());
  return info;
}

}  // namespace

void registerRuntime(Napi::Env env, Napi::Object exports) {
  def(env, exports, "manualSeed", manualSeed);
  def(env, exports, "accountExternalMemory", accountExternalMemory);
  def(env, exports, "getRngState", getRngState);
  def(env, exports, "setRngState", setRngState);
  def(env, exports, "setNumThreads", setNumThreads);
  def(env, exports, "getNumThreads", getNumThreads);
  def(env, exports, "setThreadNumThreads", setThreadNumThreads);
  def(env, exports, "dispose", dispose);
  def(env, exports, "isDisposed", isDisposed);
  def(env, exports, "liveTensors", liveTensors);
  def(env, exports, "buildInfo", buildInfo);
}

}  // namespace moco
