#include "args.h"

#include <atomic>

namespace moco {

namespace {

std::atomic<int64_t> liveTensors{0};

struct OpEntry {
  const char* name;
  OpFn fn;
};

std::string firstLine(const char* what) {
  std::string s(what);
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

Napi::Value trampoline(const Napi::CallbackInfo& info) {
  auto* entry = static_cast<OpEntry*>(info.Data());
  Args args(info, entry->name);
  std::string message;
  try {
    return entry->fn(args);
  } catch (const Napi::Error&) {
    throw;
  } catch (const ArgError& e) {
    message = std::string(entry->name) + ": " + e.what();
  } catch (const c10::Error& e) {
    message = std::string(entry->name) + ": " + firstLine(e.what_without_backtrace());
  } catch (const std::exception& e) {
    message = std::string(entry->name) + ": " + firstLine(e.what());
  } catch (...) {
    message = std::string(entry->name) + ": unknown native error";
  }
  auto error = Napi::Error::New(info.Env(), message);
  error.Set("op", Napi::String::New(info.Env(), entry->name));
  error.Set("code", Napi::String::New(info.Env(), "ERR_TORCH"));
  throw error;
}

void finalizeHolder(Napi::Env env, Holder* h) {
  releaseHolder(env, h);
  delete h;
}

}  // namespace

void def(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  auto* entry = new OpEntry{name, fn};  // lives as long as the process, like the export itself
  exports.Set(name, Napi::Function::New(env, trampoline, name, entry));
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* h = new Holder();
  h->tensor = std::move(t);
  h->accountedBytes = h->tensor.is_cpu() ? static_cast<int64_t>(h->tensor.nbytes()) : 0;
  ++liveTensors;
  if (h->accountedBytes > 0) Napi::MemoryManagement::AdjustExternalMemory(env, h->accountedBytes);
  return Napi::External<Holder>::New(env, h, finalizeHolder);
}

void releaseHolder(Napi::Env env, Holder* h) {
  if (!h->tensor.defined()) return;
  h->tensor.reset();
  --liveTensors;
  if (h->accountedBytes > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -h->accountedBytes);
  h->accountedBytes = 0;
}

int64_t liveTensorCount() { return liveTensors.load(); }

void Args::fail(size_t i, const std::string& expected) const {
  throw ArgError("argument " + std::to_string(i) + ": expected " + expected);
}

bool Args::isNullish(size_t i) const {
  return i >= info_.Length() || info_[i].IsNull() || info_[i].IsUndefined();
}

bool Args::isTensor(size_t i) const { return i < info_.Length() && info_[i].IsExternal(); }

Holder* Args::holder(size_t i) const {
  if (!isTensor(i)) fail(i, "a tensor");
  auto* h = info_[i].As<Napi::External<Holder>>().Data();
  if (h == nullptr || h->magic != Holder::kMagic) fail(i, "a tensor handle");
  return h;
}

const at::Tensor& Args::t(size_t i) const {
  auto* h = holder(i);
  if (!h->tensor.defined()) throw ArgError("argument " + std::to_string(i) + ": tensor has been disposed");
  return h->tensor;
}

at::Tensor Args::optT(size_t i) const { return isNullish(i) ? at::Tensor() : t(i); }

std::vector<at::Tensor> Args::tensors(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsArray()) fail(i, "an array of tensors");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr[k];
    if (!v.IsExternal()) fail(i, "an array of tensors");
    auto* h = v.As<Napi::External<Holder>>().Data();
    if (h == nullptr || h->magic != Holder::kMagic) fail(i, "an array of tensor handles");
    if (!h->tensor.defined()) throw ArgError("argument " + std::to_string(i) + ": tensor has been disposed");
    out.push_back(h->tensor);
  }
  return out;
}

std::pair<const uint8_t*, size_t> Args::bytes(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsTypedArray()) fail(i, "a Uint8Array");
  auto arr = info_[i].As<Napi::Uint8Array>();
  if (arr.TypedArrayType() != napi_uint8_array) fail(i, "a Uint8Array");
  return {arr.Data(), arr.ByteLength()};
}

int64_t Args::i64(size_t i) const {
  if (!isNumber(i)) fail(i, "an integer");
  return info_[i].As<Napi::Number>().Int64Value();
}

c10::optional<int64_t> Args::optI64(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return i64(i);
}

double Args::f64(size_t i) const {
  if (!isNumber(i)) fail(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::optF64(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return f64(i);
}

bool Args::b(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsBoolean()) fail(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsString()) fail(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsArray()) fail(i, "an array of integers");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr[k];
    if (!v.IsNumber()) fail(i, "an array of integers");
    out[k] = v.As<Napi::Number>().Int64Value();
  }
  return out;
}

// A JS number that is integral becomes an integer Scalar, as a Python int would, so that
// `intTensor.add(1)` stays integral and `floatTensor.mul(0.5)` stays floating.
at::Scalar Args::scalar(size_t i) const {
  if (i < info_.Length() && info_[i].IsBoolean()) return at::Scalar(info_[i].As<Napi::Boolean>().Value());
  double v = f64(i);
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

c10::optional<at::Scalar> Args::optScalar(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return scalar(i);
}

at::ScalarType Args::dtype(size_t i) const {
  int64_t code = i64(i);
  switch (static_cast<at::ScalarType>(code)) {
    case at::kByte:
    case at::kChar:
    case at::kShort:
    case at::kInt:
    case at::kLong:
    case at::kHalf:
    case at::kFloat:
    case at::kDouble:
    case at::kBool:
    case at::kBFloat16:
      return static_cast<at::ScalarType>(code);
    default:
      fail(i, "a supported dtype code");
  }
}

c10::optional<at::ScalarType> Args::optDtype(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return dtype(i);
}

at::TensorOptions Args::options(size_t i) const {
  at::TensorOptions o;
  if (!isNullish(i)) o = o.dtype(dtype(i));
  if (!isNullish(i + 1)) o = o.device(c10::Device(str(i + 1)));
  return o;
}

Napi::Value Args::ret(at::Tensor t) const { return wrap(info_.Env(), std::move(t)); }

Napi::Value Args::ret(const std::vector<at::Tensor>& ts) const {
  auto arr = Napi::Array::New(info_.Env(), ts.size());
  for (uint32_t k = 0; k < ts.size(); ++k) arr.Set(k, wrap(info_.Env(), ts[k]));
  return arr;
}

Napi::Value Args::ret(const std::tuple<at::Tensor, at::Tensor>& pair) const {
  auto arr = Napi::Array::New(info_.Env(), 2);
  arr.Set(0u, wrap(info_.Env(), std::get<0>(pair)));
  arr.Set(1u, wrap(info_.Env(), std::get<1>(pair)));
  return arr;
}

}  // namespace moco
