// Autograd: gradient mode, requires_grad, backward, .grad.
#include <torch/csrc/autograd/function.h>

#include "args.h"

namespace moco {

namespace {

Napi::Value setGradEnabled(Args& a) {
  at::GradMode::set_enabled(a.b(0));
  return a.undefined();
}
Napi::Value isGradEnabled(Args& a) { return Napi::Boolean::New(a.env(), at::GradMode::is_enabled()); }
Napi::Value requiresGrad(Args& a) { return Napi::Boolean::New(a.env(), a.t(0).requires_grad()); }
Napi::Value setRequiresGrad(Args& a) {
  at::Tensor t = a.t(0);
  t.requires_grad_(a.b(1));
  return a.undefined();
}
Napi::Value isLeaf(Args& a) { return Napi::Boolean::New(a.env(), a.t(0).is_leaf()); }
Napi::Value retainGrad(Args& a) {
  a.t(0).retain_grad();
  return a.undefined();
}
Napi::Value grad(Args& a) { return a.ret(a.t(0).grad()); }
Napi::Value setGrad(Args& a) {
  at::Tensor t = a.t(0);
  t.mutable_grad() = a.optT(1);
  return a.undefined();
}
// (self, gradient | null, retainGraph: boolean | null, createGraph)
Napi::Value backward(Args& a) {
  c10::optional<bool> retain;
  if (!a.isNullish(2)) retain = a.b(2);
  a.t(0).backward(a.optT(1), retain, a.b(3));
  return a.undefined();
}
// PyTorch's `t.data = other`: the tensor behind this handle (and every handle that shares it) takes
// other's storage, dtype and layout, keeping its identity, grad and requires_grad. Module.to uses it so
// that optimizers and MoCo's parameter lists keep seeing the converted parameters.
Napi::Value setData(Args& a) {
  at::Tensor self = a.t(0);
  self.set_data(a.t(1));
  return a.undefined();
}
Napi::Value detach(Args& a) { return a.ret(a.t(0).detach()); }
Napi::Value gradFnName(Args& a) {
  const auto& fn = a.t(0).grad_fn();
  if (!fn) return a.env().Null();
  return Napi::String::New(a.env(), fn->name());
}
Napi::Value version(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(a.t(0)._version())); }

}  // namespace

void registerAutograd(Napi::Env env, Napi::Object exports) {
  def(env, exports, "setGradEnabled", setGradEnabled);
  def(env, exports, "isGradEnabled", isGradEnabled);
  def(env, exports, "requiresGrad", requiresGrad);
  def(env, exports, "setRequiresGrad", setRequiresGrad);
  def(env, exports, "isLeaf", isLeaf);
  def(env, exports, "retainGrad", retainGrad);
  def(env, exports, "grad", grad);
  def(env, exports, "setGrad", setGrad);
  def(env, exports, "backward", backward);
  def(env, exports, "setData", setData);
  def(env, exports, "detach", detach);
  def(env, exports, "gradFnName", gradFnName);
  def(env, exports, "version", version);
}

}  // namespace moco
