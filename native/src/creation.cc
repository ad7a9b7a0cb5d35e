// Factories, conversion to and from JS memory, and tensor metadata.
#include <cstring>

#include "args.h"

namespace moco {

namespace {

Napi::Value empty(Args& a) { return a.ret(at::empty(a.ints(0), a.options(1))); }
Napi::Value zeros(Args& a) { return a.ret(at::zeros(a.ints(0), a.options(1))); }
Napi::Value ones(Args& a) { return a.ret(at::ones(a.ints(0), a.options(1))); }
Napi::Value full(Args& a) { return a.ret(at::full(a.ints(0), a.scalar(1), a.options(2))); }
Napi::Value arange(Args& a) { return a.ret(at::arange(a.scalar(0), a.scalar(1), a.scalar(2), a.options(3))); }
Napi::Value linspace(Args& a) { return a.ret(at::linspace(a.scalar(0), a.scalar(1), a.i64(2), a.options(3))); }
Napi::Value rand(Args& a) { return a.ret(at::rand(a.ints(0), a.options(1))); }
Napi::Value randn(Args& a) { return a.ret(at::randn(a.ints(0), a.options(1))); }
Napi::Value randint(Args& a) { return a.ret(at::randint(a.i64(0), a.i64(1), a.ints(2), a.options(3))); }
Napi::Value randperm(Args& a) { return a.ret(at::randperm(a.i64(0), a.options(1))); }
Napi::Value eye(Args& a) { return a.ret(at::eye(a.i64(0), a.i64(1), a.options(2))); }
Napi::Value bernoulli(Args& a) { return a.ret(at::bernoulli(a.t(0))); }
Napi::Value uniform_(Args& a) {
  at::Tensor t = a.t(0);
  t.uniform_(a.f64(1), a.f64(2));
  return a.undefined();
}
Napi::Value normal_(Args& a) {
  at::Tensor t = a.t(0);
  t.normal_(a.f64(1), a.f64(2));
  return a.undefined();
}

// (bytes: Uint8Array, dtype, shape): copies little-endian element data into a new CPU tensor.
Napi::Value fromBytes(Args& a) {
  auto bytes = a.bytes(0);
  at::Tensor out = at::empty(a.ints(2), at::TensorOptions().dtype(a.dtype(1)));
  if (static_cast<size_t>(out.nbytes()) != bytes.second) {
    throw ArgError("expected " + std::to_string(out.nbytes()) + " bytes for shape " + c10::str(out.sizes()) + " of " +
                   c10::toString(out.scalar_type()) + ", got " + std::to_string(bytes.second));
  }
  if (bytes.second > 0) std::memcpy(out.data_ptr(), bytes.first, bytes.second);
  return a.ret(out);
}

// Copies the elements, in row-major order, into a new ArrayBuffer.
Napi::Value toBytes(Args& a) {
  at::Tensor t = a.t(0).detach().to(at::kCPU).contiguous();
  auto buffer = Napi::ArrayBuffer::New(a.env(), t.nbytes());
  if (t.nbytes() > 0) std::memcpy(buffer.Data(), t.data_ptr(), t.nbytes());
  return buffer;
}

Napi::Value clone(Args& a) { return a.ret(a.t(0).clone()); }
// Memory formats by the names the TypeScript layer uses (PyTorch's torch.contiguous_format, ...).
c10::MemoryFormat memoryFormat(Args& a, size_t i) {
  if (a.isNullish(i)) return c10::MemoryFormat::Contiguous;
  std::string f = a.str(i);
  if (f == "contiguous") return c10::MemoryFormat::Contiguous;
  if (f == "channelsLast") return c10::MemoryFormat::ChannelsLast;
  if (f == "channelsLast3d") return c10::MemoryFormat::ChannelsLast3d;
  if (f == "preserve") return c10::MemoryFormat::Preserve;
  throw ArgError("argument " + std::to_string(i) + ": unknown memory format \"" + f + "\"");
}
const char* memoryFormatName(c10::MemoryFormat f) {
  switch (f) {
    case c10::MemoryFormat::ChannelsLast:
      return "channelsLast";
    case c10::MemoryFormat::ChannelsLast3d:
      return "channelsLast3d";
    default:
      return "contiguous";
  }
}

// (self, format | null)
Napi::Value contiguous(Args& a) { return a.ret(a.t(0).contiguous(memoryFormat(a, 1))); }
Napi::Value suggestMemoryFormat(Args& a) {
  return Napi::String::New(a.env(), memoryFormatName(a.t(0).suggest_memory_format()));
}
Napi::Value toDtype(Args& a) { return a.ret(a.t(0).to(a.dtype(1))); }
// (self, device, nonBlocking | null): non-blocking matters from pinned memory to a GPU.
Napi::Value toDevice(Args& a) {
  bool nonBlocking = !a.isNullish(2) && a.b(2);
  return a.ret(a.t(0).to(c10::Device(a.str(1)), nonBlocking));
}

Napi::Value shape(Args& a) {
  auto sizes = a.t(0).sizes();
  auto arr = Napi::Array::New(a.env(), sizes.size());
  for (uint32_t k = 0; k < sizes.size(); ++k) arr.Set(k, Napi::Number::New(a.env(), static_cast<double>(sizes[k])));
  return arr;
}
Napi::Value strides(Args& a) {
  auto st = a.t(0).strides();
  auto arr = Napi::Array::New(a.env(), st.size());
  for (uint32_t k = 0; k < st.size(); ++k) arr.Set(k, Napi::Number::New(a.env(), static_cast<double>(st[k])));
  return arr;
}
Napi::Value storageOffset(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(a.t(0).storage_offset())); }
Napi::Value dtype(Args& a) { return Napi::Number::New(a.env(), static_cast<int>(a.t(0).scalar_type())); }
Napi::Value device(Args& a) { return Napi::String::New(a.env(), a.t(0).device().str()); }
// (self, format | null)
Napi::Value isContiguous(Args& a) {
  return Napi::Boolean::New(a.env(), a.t(0).is_contiguous(memoryFormat(a, 1)));
}
// Identifies the storage so that savers can keep views of one storage together.
Napi::Value storageId(Args& a) {
  const auto& t = a.t(0);
  return Napi::String::New(a.env(), std::to_string(reinterpret_cast<uintptr_t>(t.storage().unsafeGetStorageImpl())));
}

Napi::Value item(Args& a) {
  const auto& t = a.t(0);
  if (t.numel() != 1) throw ArgError("a tensor with one element is required, got " + std::to_string(t.numel()));
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(a.env(), s.toBool());
  return Napi::Number::New(a.env(), s.toDouble());
}

}  // namespace

void registerCreation(Napi::Env env, Napi::Object exports) {
  def(env, exports, "empty", empty);
  def(env, exports, "zeros", zeros);
  def(env, exports, "ones", ones);
  def(env, exports, "full", full);
  def(env, exports, "arange", arange);
  def(env, exports, "linspace", linspace);
  def(env, exports, "rand", rand);
  def(env, exports, "randn", randn);
  def(env, exports, "randint", randint);
  def(env, exports, "randperm", randperm);
  def(env, exports, "eye", eye);
  def(env, exports, "bernoulli", bernoulli);
  def(env, exports, "uniform_", uniform_);
  def(env, exports, "normal_", normal_);
  def(env, exports, "fromBytes", fromBytes);
  def(env, exports, "toBytes", toBytes);
  def(env, exports, "clone", clone);
  def(env, exports, "contiguous", contiguous);
  def(env, exports, "suggestMemoryFormat", suggestMemoryFormat);
  def(env, exports, "toDtype", toDtype);
  def(env, exports, "toDevice", toDevice);
  def(env, exports, "shape", shape);
  def(env, exports, "strides", strides);
  def(env, exports, "storageOffset", storageOffset);
  def(env, exports, "dtype", dtype);
  def(env, exports, "device", device);
  def(env, exports, "isContiguous", isContiguous);
  def(env, exports, "storageId", storageId);
  def(env, exports, "item", item);
}

}  // namespace moco
