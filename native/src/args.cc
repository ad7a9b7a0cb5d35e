#include "args.h"

#include <atomic>
#include <deque>

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

// The JS class native errors are made of (TorchError, set once by src/torch/native.ts at load), per
// env like the slot table: errors arrive as instances of the library's hierarchy without a JS
// wrapper around each op (op overhead is measured against PyTorch's).
thread_local Napi::FunctionReference* errorClass = nullptr;

void freeErrorClass(void* data) {
  auto* ref = static_cast<Napi::FunctionReference*>(data);
  if (errorClass == ref) errorClass = nullptr;
  delete ref;
}

// setErrorClass(ctor): ctor(op, message) must construct the error; undefined/null unsets it.
Napi::Value setErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !(info[0].IsFunction() || info[0].IsNull() || info[0].IsUndefined())) {
    throw Napi::TypeError::New(env, "setErrorClass: expected a constructor, null or undefined");
  }
  if (errorClass == nullptr) {
    errorClass = new Napi::FunctionReference();
    napi_add_env_cleanup_hook(env, freeErrorClass, errorClass);
  }
  if (info[0].IsFunction()) {
    *errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  } else {
    errorClass->Reset();
  }
  return env.Undefined();
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
  throw torchError(info.Env(), entry->name, message);
}

// ---- handles ------------------------------------------------------------------------------------
// A tensor handle is a BigInt naming a slot of this thread's slot table: bits 0-27 the slot index,
// 28-55 the slot's generation (bumped when the slot is freed), 56-63 the table's tag. A stale,
// foreign or forged handle is detected and reported, never dereferenced. Handles carry no
// finalizer and no weak reference, so creating and freeing one costs no GC work (an External with a
// finalizer cost ~0.4 µs per tensor, more than the op itself for small tensors). The GC safety net
// for tensors that are never disposed lives in TypeScript (tensor.ts, a FinalizationRegistry).

struct Slot : Holder {
  uint32_t index = 0;
  uint32_t generation = 0;
};

struct SlotTable {
  std::deque<Slot> slots;  // a deque: slots never move, so Holder pointers stay valid
  std::vector<uint32_t> free;
  uint64_t tag = 0;
};

constexpr uint64_t kIndexBits = 28;       // up to 268M live tensors
constexpr uint64_t kGenerationBits = 28;  // a slot is reused 268M times before a stale handle could alias
constexpr uint64_t kGenerationMask = (uint64_t{1} << kGenerationBits) - 1;

// One table per JS thread (each env runs on one thread); freed with its env.
thread_local SlotTable* table = nullptr;

// What a stale handle (its slot since freed, maybe reused) resolves to: a holder without a tensor.
thread_local Holder disposedHolder;

void freeTable(void* data) {
  auto* t = static_cast<SlotTable*>(data);
  for (auto& slot : t->slots) {
    if (slot.tensor.defined()) --liveTensors;
    slot.tensor.reset();
  }
  if (table == t) table = nullptr;
  delete t;
}

SlotTable& tableFor(Napi::Env env) {
  if (table == nullptr) {
    static std::atomic<uint64_t> nextTag{0x5a};
    table = new SlotTable();
    table->tag = (nextTag++ & 0xff) | 1;  // never 0, so that small integers are never handles
    napi_add_env_cleanup_hook(env, freeTable, table);
  }
  return *table;
}

uint64_t encode(const SlotTable& t, const Slot& slot) {
  return (t.tag << (kIndexBits + kGenerationBits)) | (uint64_t{slot.generation} << kIndexBits) | slot.index;
}

}  // namespace

Napi::Error torchError(Napi::Env env, const char* op, const std::string& message) {
  if (errorClass != nullptr && !errorClass->IsEmpty()) {
    Napi::Object error = errorClass->New({Napi::String::New(env, op), Napi::String::New(env, message)});
    return Napi::Error(env, error);
  }
  // No class registered (the addon used on its own): a plain Error with the same op and code.
  auto error = Napi::Error::New(env, message);
  error.Set("op", Napi::String::New(env, op));
  error.Set("code", Napi::String::New(env, "ERR_TORCH"));
  return error;
}

void registerErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, setErrorClass, "setErrorClass"));
}

void def(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  auto* entry = new OpEntry{name, fn};  // lives as long as the process, like the export itself
  exports.Set(name, Napi::Function::New(env, trampoline, name, entry));
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  SlotTable& tab = tableFor(env);
  Slot* slot;
  if (tab.free.empty()) {
    if (tab.slots.size() >= (uint64_t{1} << kIndexBits) - 1) throw ArgError("too many live tensors");
    slot = &tab.slots.emplace_back();
    slot->index = static_cast<uint32_t>(tab.slots.size() - 1);
  } else {
    slot = &tab.slots[tab.free.back()];
    tab.free.pop_back();
  }
  slot->tensor = std::move(t);
  // Not reported to V8 yet: most tensors are freed by dispose or a scope, and reporting them would
  // make V8 run full collections for memory it cannot free (see accountExternal).
  slot->accountedBytes = 0;
  ++liveTensors;
  napi_value value;
  NAPI_THROW_IF_FAILED(env, napi_create_bigint_uint64(env, encode(tab, *slot), &value), Napi::Value());
  return Napi::Value(env, value);
}

void accountExternal(Napi::Env env, Holder* h) {
  if (!h->tensor.defined() || h->accountedBytes > 0 || !h->tensor.is_cpu()) return;
  h->accountedBytes = static_cast<int64_t>(h->tensor.nbytes());
  if (h->accountedBytes > 0) Napi::MemoryManagement::AdjustExternalMemory(env, h->accountedBytes);
}

void releaseHolder(Napi::Env env, Holder* h) {
  if (!h->tensor.defined()) return;
  h->tensor.reset();
  --liveTensors;
  if (h->accountedBytes > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -h->accountedBytes);
  h->accountedBytes = 0;
  if (h == &disposedHolder || table == nullptr) return;
  auto* slot = static_cast<Slot*>(h);
  slot->generation = (slot->generation + 1) & kGenerationMask;
  table->free.push_back(slot->index);
}

int64_t liveTensorCount() { return liveTensors.load(); }

void Args::fail(size_t i, const std::string& expected) const {
  throw ArgError("argument " + std::to_string(i) + ": expected " + expected);
}

namespace {
napi_valuetype typeOf(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) return napi_undefined;
  napi_valuetype type = napi_undefined;
  napi_typeof(info.Env(), info[i], &type);
  return type;
}
}  // namespace

bool Args::isNullish(size_t i) const {
  napi_valuetype type = typeOf(info_, i);
  return type == napi_null || type == napi_undefined;
}

bool Args::isTensor(size_t i) const { return typeOf(info_, i) == napi_bigint; }

namespace {
// The holder a handle names: its live slot, `disposedHolder` when the slot has been freed since, or
// nullptr when the value is not one of this thread's handles at all (one Node-API call, no typeof).
Holder* resolve(napi_env env, napi_value v) {
  uint64_t bits = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, v, &bits, &lossless) != napi_ok || !lossless || table == nullptr) return nullptr;
  if ((bits >> (kIndexBits + kGenerationBits)) != table->tag) return nullptr;
  uint64_t index = bits & ((uint64_t{1} << kIndexBits) - 1);
  if (index >= table->slots.size()) return nullptr;
  Slot& slot = table->slots[index];
  if (((bits >> kIndexBits) & kGenerationMask) != slot.generation) return &disposedHolder;
  return &slot;
}
}  // namespace

Holder* Args::holder(size_t i) const {
  Holder* h = i < info_.Length() ? resolve(info_.Env(), info_[i]) : nullptr;
  if (h == nullptr) fail(i, isTensor(i) ? "a tensor handle" : "a tensor");
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
    Holder* h = resolve(info_.Env(), v);
    if (h == nullptr) fail(i, "an array of tensor handles");
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
