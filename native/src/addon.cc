#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "args.h"

// glibc's malloc by default maps every block above a threshold that it raises as blocks are freed,
// and returns the top of the heap to the kernel once 2 × that threshold is free there. A training
// step frees a few hundred MB of activations at once at its end, so each step gave its memory back
// and the next one page-faulted it in again (~1 M minor faults per 10 ResNet-18 MoCo steps, 5% of
// the step in the kernel). Fixed thresholds keep activation-sized blocks (< 64 MB) in the heap and
// up to 256 MB of free heap in the process. Users who set glibc's own MALLOC_*_ variables, or
// MOCO_MALLOC_TUNING=0, keep glibc's behaviour.
static void tuneMalloc() {
#if defined(__GLIBC__)
  const char* tuning = std::getenv("MOCO_MALLOC_TUNING");
  if (tuning != nullptr && std::string(tuning) == "0") return;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  tuneMalloc();
  moco::registerErrors(env, exports);
  moco::registerCreation(env, exports);
  moco::registerShape(env, exports);
  moco::registerMath(env, exports);
  moco::registerReduce(env, exports);
  moco::registerNn(env, exports);
  moco::registerAutograd(env, exports);
  moco::registerRuntime(env, exports);
  moco::registerDist(env, exports);
  moco::registerAutocast(env, exports);
  moco::registerForeach(env, exports);
  moco::registerCuda(env, exports);
  return exports;
}

NODE_API_MODULE(moco_native, initAddon)
