// Multi-tensor ops (libtorch's _foreach_*): one call updates a whole list of tensors, so an optimizer
// step or MoCo's momentum update crosses the JS/C++ boundary a few times instead of a few times per
// parameter. Each computes, per tensor, exactly what the single-tensor op does (on CPU libtorch
// loops over the single-tensor kernels; on CUDA its fused kernels use the same arithmetic).
#include <ATen/ATen.h>

#include "args.h"

namespace moco {

namespace {

void checkSameLength(Args& a, const std::vector<at::Tensor>& self, const std::vector<at::Tensor>& other) {
  if (self.size() != other.size()) {
    throw ArgError("the tensor lists differ in length: " + std::to_string(self.size()) + " and " +
                   std::to_string(other.size()));
  }
}

// self[i] *= scalar
Napi::Value foreachMul_(Args& a) {
  auto self = a.tensors(0);
  if (!self.empty()) at::_foreach_mul_(self, a.scalar(1));
  return a.undefined();
}
// self[i] += alpha * other[i]
Napi::Value foreachAdd_(Args& a) {
  auto self = a.tensors(0);
  auto other = a.tensors(1);
  checkSameLength(a, self, other);
  if (!self.empty()) at::_foreach_add_(self, other, a.scalar(2));
  return a.undefined();
}
// [self[i] + alpha * other[i]]
Napi::Value foreachAdd(Args& a) {
  auto self = a.tensors(0);
  auto other = a.tensors(1);
  checkSameLength(a, self, other);
  if (self.empty()) return a.ret(std::vector<at::Tensor>{});
  return a.ret(at::_foreach_add(self, other, a.scalar(2)));
}
// [-self[i]]
Napi::Value foreachNeg(Args& a) {
  auto self = a.tensors(0);
  if (self.empty()) return a.ret(std::vector<at::Tensor>{});
  return a.ret(at::_foreach_neg(self));
}

// The gradients of a list of tensors (null where there is none), in one call.
Napi::Value grads(Args& a) {
  auto self = a.tensors(0);
  auto arr = Napi::Array::New(a.env(), self.size());
  for (uint32_t k = 0; k < self.size(); ++k) arr.Set(k, wrap(a.env(), self[k].grad()));
  return arr;
}

}  // namespace

void registerForeach(Napi::Env env, Napi::Object exports) {
  def(env, exports, "foreachMul_", foreachMul_);
  def(env, exports, "foreachAdd_", foreachAdd_);
  def(env, exports, "foreachAdd", foreachAdd);
  def(env, exports, "foreachNeg", foreachNeg);
  def(env, exports, "grads", grads);
}

}  // namespace moco
