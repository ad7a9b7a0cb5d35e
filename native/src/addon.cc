#include "args.h"

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  moco::registerCreation(env, exports);
  moco::registerShape(env, exports);
  moco::registerMath(env, exports);
  moco::registerReduce(env, exports);
  moco::registerNn(env, exports);
  moco::registerAutograd(env, exports);
  moco::registerRuntime(env, exports);
  moco::registerDist(env, exports);
  return exports;
}

NODE_API_MODULE(moco_native, initAddon)
