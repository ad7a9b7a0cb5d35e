// Autocast (automatic mixed precision) state: the switches behind torch.autocast. Which op runs in
// which dtype is libtorch's own decision, made by its Autocast dispatch keys once they are enabled
// here; the TypeScript layer (src/torch/autocast.ts) saves and restores the state around a region
// exactly as torch.autocast's __enter__/__exit__ do. The state is thread-local in libtorch, and every
// op of ours runs on the calling JS thread.
#include <ATen/autocast_mode.h>
#include <torch/csrc/api/include/torch/version.h>

#include "args.h"

// libtorch 2.4 replaced the per-device functions with ones taking a device type; the old names
// remain there as deprecated wrappers. Use the new ones where they exist, the 1.13 ones elsewhere.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MOCO_AUTOCAST_BY_DEVICE 1
#endif

namespace moco {

namespace {

enum class AutocastDevice { Cpu, Cuda };

AutocastDevice deviceArg(Args& a, size_t i) {
  std::string d = a.str(i);
  if (d == "cpu") return AutocastDevice::Cpu;
  if (d == "cuda") return AutocastDevice::Cuda;
  throw ArgError("argument " + std::to_string(i) + ": expected device type \"cpu\" or \"cuda\", got \"" + d + "\"");
}

bool isEnabled(AutocastDevice d) {
#ifdef MOCO_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(d == AutocastDevice::Cpu ? at::kCPU : at::kCUDA);
#else
  return d == AutocastDevice::Cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

at::ScalarType getDtype(AutocastDevice d) {
#ifdef MOCO_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(d == AutocastDevice::Cpu ? at::kCPU : at::kCUDA);
#else
  return d == AutocastDevice::Cpu ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}

// (deviceType) -> { enabled, dtype: scalar type code }
Napi::Value autocastState(Args& a) {
  AutocastDevice d = deviceArg(a, 0);
  auto out = Napi::Object::New(a.env());
  out.Set("enabled", isEnabled(d));
  out.Set("dtype", static_cast<int>(getDtype(d)));
  return out;
}

// (deviceType, enabled, dtype code): what torch.set_autocast_{cpu_,}enabled + set_autocast_{cpu,gpu}_dtype do.
Napi::Value setAutocastState(Args& a) {
  AutocastDevice d = deviceArg(a, 0);
  bool enabled = a.b(1);
  at::ScalarType dtype = a.dtype(2);
#ifdef MOCO_AUTOCAST_BY_DEVICE
  auto type = d == AutocastDevice::Cpu ? at::kCPU : at::kCUDA;
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (d == AutocastDevice::Cpu) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
  return a.undefined();
}

Napi::Value autocastIncrementNesting(Args& a) {
  return Napi::Number::New(a.env(), at::autocast::increment_nesting());
}
Napi::Value autocastDecrementNesting(Args& a) {
  return Napi::Number::New(a.env(), at::autocast::decrement_nesting());
}
// Frees the lower-precision copies of leaf tensors (weights) that autocast caches within a region.
Napi::Value autocastClearCache(Args& a) {
  at::autocast::clear_cache();
  return a.undefined();
}
Napi::Value isAutocastCacheEnabled(Args& a) {
  return Napi::Boolean::New(a.env(), at::autocast::is_autocast_cache_enabled());
}
Napi::Value setAutocastCacheEnabled(Args& a) {
  at::autocast::set_autocast_cache_enabled(a.b(0));
  return a.undefined();
}

}  // namespace

void registerAutocast(Napi::Env env, Napi::Object exports) {
  def(env, exports, "autocastState", autocastState);
  def(env, exports, "setAutocastState", setAutocastState);
  def(env, exports, "autocastIncrementNesting", autocastIncrementNesting);
  def(env, exports, "autocastDecrementNesting", autocastDecrementNesting);
  def(env, exports, "autocastClearCache", autocastClearCache);
  def(env, exports, "isAutocastCacheEnabled", isAutocastCacheEnabled);
  def(env, exports, "setAutocastCacheEnabled", setAutocastCacheEnabled);
}

}  // namespace moco
