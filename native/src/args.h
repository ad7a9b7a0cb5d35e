// The protected boundary between JavaScript and libtorch.
//
// Tensors cross as BigInt handles naming a slot of a per-thread table (args.cc). Every op is a
// plain function over an `Args` view of the call; a single trampoline turns every C++ and libtorch exception into a JS Error that names the op,
// so no user input can abort the process. No defaults or policy live here: the TypeScript layer
// validates and fills in arguments, C++ only computes.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace moco {

// One JS-visible reference to an at::Tensor. `tensor` is reset on dispose, and the slot is reused.
struct Holder {
  at::Tensor tensor;
  int64_t accountedBytes = 0;
};

// Thrown for bad arguments detected here; reported like libtorch errors.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}

  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  bool isNullish(size_t i) const;
  bool isTensor(size_t i) const;
  bool isNumber(size_t i) const { return i < info_.Length() && info_[i].IsNumber(); }

  const at::Tensor& t(size_t i) const;
  at::Tensor optT(size_t i) const;  // undefined tensor for null/undefined
  std::vector<at::Tensor> tensors(size_t i) const;
  int64_t i64(size_t i) const;
  c10::optional<int64_t> optI64(size_t i) const;
  double f64(size_t i) const;
  c10::optional<double> optF64(size_t i) const;
  bool b(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  at::Scalar scalar(size_t i) const;
  c10::optional<at::Scalar> optScalar(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  c10::optional<at::ScalarType> optDtype(size_t i) const;
  // dtype at i, device at i + 1 (both optional).
  at::TensorOptions options(size_t i) const;
  Holder* holder(size_t i) const;
  // The bytes a Uint8Array views (not copied; valid during the call).
  std::pair<const uint8_t*, size_t> bytes(size_t i) const;

  Napi::Value ret(at::Tensor t) const;
  Napi::Value ret(const std::vector<at::Tensor>& ts) const;
  Napi::Value ret(const std::tuple<at::Tensor, at::Tensor>& pair) const;
  Napi::Value undefined() const { return info_.Env().Undefined(); }

  [[noreturn]] void fail(size_t i, const std::string& expected) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

using OpFn = Napi::Value (*)(Args&);

// The error every entry point throws: an instance of the class given to setErrorClass (TorchError),
// constructed as new C(op, message); a plain Error with `op` and `code` "ERR_TORCH" when unset.
Napi::Error torchError(Napi::Env env, const char* op, const std::string& message);
// Exports setErrorClass.
void registerErrors(Napi::Env env, Napi::Object exports);

// Registers `fn` as exports[name], wrapped by the exception-converting trampoline.
void def(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

// Wraps a result tensor as a new JS handle (counted, with external-memory accounting).
Napi::Value wrap(Napi::Env env, at::Tensor t);
// Reports the tensor's bytes to V8 as external memory, so that tensors left to the garbage
// collector (the FinalizationRegistry safety net) make V8 collect; once per tensor.
void accountExternal(Napi::Env env, Holder* h);
void releaseHolder(Napi::Env env, Holder* h);
int64_t liveTensorCount();

void registerCreation(Napi::Env env, Napi::Object exports);
void registerShape(Napi::Env env, Napi::Object exports);
void registerMath(Napi::Env env, Napi::Object exports);
void registerReduce(Napi::Env env, Napi::Object exports);
void registerNn(Napi::Env env, Napi::Object exports);
void registerAutograd(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerDist(Napi::Env env, Napi::Object exports);
void registerAutocast(Napi::Env env, Napi::Object exports);
void registerForeach(Napi::Env env, Napi::Object exports);
void registerCuda(Napi::Env env, Napi::Object exports);

}  // namespace moco
