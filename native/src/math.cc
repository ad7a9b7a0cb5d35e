// Elementwise arithmetic with broadcasting and scalars, comparisons, logic, products, in-place ops.
#include "args.h"

#include <ATen/ScalarOps.h>

namespace moco {

namespace {

// A number operand of add/sub/mul/div becomes a wrapped-number tensor, as Python's `x * 2` does:
// the same type promotion as a scalar, and the same autograd node (MulBackward0, not ...1).
at::Tensor operand(Args& a, size_t i) {
  return a.isTensor(i) ? a.t(i) : at::native::wrapped_scalar_tensor(a.scalar(i));
}

// Binary ops take (self, other: tensor | number[, alpha]).
Napi::Value add(Args& a) {
  auto alpha = a.isNullish(2) ? at::Scalar(1) : a.scalar(2);
  return a.ret(at::add(a.t(0), operand(a, 1), alpha));
}
Napi::Value sub(Args& a) {
  auto alpha = a.isNullish(2) ? at::Scalar(1) : a.scalar(2);
  return a.ret(at::sub(a.t(0), operand(a, 1), alpha));
}
Napi::Value mul(Args& a) { return a.ret(at::mul(a.t(0), operand(a, 1))); }
Napi::Value div(Args& a) { return a.ret(at::div(a.t(0), operand(a, 1))); }
Napi::Value pow(Args& a) { return a.ret(a.isTensor(1) ? at::pow(a.t(0), a.t(1)) : at::pow(a.t(0), a.scalar(1))); }
Napi::Value remainder(Args& a) {
  return a.ret(a.isTensor(1) ? at::remainder(a.t(0), a.t(1)) : at::remainder(a.t(0), a.scalar(1)));
}
Napi::Value maximum(Args& a) { return a.ret(at::maximum(a.t(0), a.t(1))); }
Napi::Value minimum(Args& a) { return a.ret(at::minimum(a.t(0), a.t(1))); }

Napi::Value neg(Args& a) { return a.ret(at::neg(a.t(0))); }
Napi::Value sqrt(Args& a) { return a.ret(at::sqrt(a.t(0))); }
Napi::Value rsqrt(Args& a) { return a.ret(at::rsqrt(a.t(0))); }
Napi::Value exp(Args& a) { return a.ret(at::exp(a.t(0))); }
Napi::Value log(Args& a) { return a.ret(at::log(a.t(0))); }
Napi::Value abs(Args& a) { return a.ret(at::abs(a.t(0))); }
Napi::Value floor(Args& a) { return a.ret(at::floor(a.t(0))); }
Napi::Value ceil(Args& a) { return a.ret(at::ceil(a.t(0))); }
Napi::Value round(Args& a) { return a.ret(at::round(a.t(0))); }
Napi::Value sin(Args& a) { return a.ret(at::sin(a.t(0))); }
Napi::Value cos(Args& a) { return a.ret(at::cos(a.t(0))); }
Napi::Value tanh(Args& a) { return a.ret(at::tanh(a.t(0))); }
Napi::Value sigmoid(Args& a) { return a.ret(at::sigmoid(a.t(0))); }
Napi::Value sign(Args& a) { return a.ret(at::sign(a.t(0))); }
Napi::Value reciprocal(Args& a) { return a.ret(at::reciprocal(a.t(0))); }
Napi::Value isnan(Args& a) { return a.ret(at::isnan(a.t(0))); }
Napi::Value isfinite(Args& a) { return a.ret(at::isfinite(a.t(0))); }
// (self, min: number | null, max: number | null)
Napi::Value clamp(Args& a) { return a.ret(at::clamp(a.t(0), a.optScalar(1), a.optScalar(2))); }

Napi::Value eq(Args& a) { return a.ret(a.isTensor(1) ? at::eq(a.t(0), a.t(1)) : at::eq(a.t(0), a.scalar(1))); }
Napi::Value ne(Args& a) { return a.ret(a.isTensor(1) ? at::ne(a.t(0), a.t(1)) : at::ne(a.t(0), a.scalar(1))); }
Napi::Value lt(Args& a) { return a.ret(a.isTensor(1) ? at::lt(a.t(0), a.t(1)) : at::lt(a.t(0), a.scalar(1))); }
Napi::Value le(Args& a) { return a.ret(a.isTensor(1) ? at::le(a.t(0), a.t(1)) : at::le(a.t(0), a.scalar(1))); }
Napi::Value gt(Args& a) { return a.ret(a.isTensor(1) ? at::gt(a.t(0), a.t(1)) : at::gt(a.t(0), a.scalar(1))); }
Napi::Value ge(Args& a) { return a.ret(a.isTensor(1) ? at::ge(a.t(0), a.t(1)) : at::ge(a.t(0), a.scalar(1))); }
Napi::Value logicalAnd(Args& a) { return a.ret(at::logical_and(a.t(0), a.t(1))); }
Napi::Value logicalOr(Args& a) { return a.ret(at::logical_or(a.t(0), a.t(1))); }
Napi::Value logicalXor(Args& a) { return a.ret(at::logical_xor(a.t(0), a.t(1))); }
Napi::Value logicalNot(Args& a) { return a.ret(at::logical_not(a.t(0))); }
Napi::Value allclose(Args& a) {
  return Napi::Boolean::New(a.env(), at::allclose(a.t(0), a.t(1), a.f64(2), a.f64(3), a.b(4)));
}
Napi::Value equal(Args& a) { return Napi::Boolean::New(a.env(), at::equal(a.t(0), a.t(1))); }

Napi::Value matmul(Args& a) { return a.ret(at::matmul(a.t(0), a.t(1))); }
Napi::Value mm(Args& a) { return a.ret(at::mm(a.t(0), a.t(1))); }
Napi::Value bmm(Args& a) { return a.ret(at::bmm(a.t(0), a.t(1))); }
Napi::Value einsum(Args& a) { return a.ret(at::einsum(a.str(0), a.tensors(1))); }
Napi::Value outer(Args& a) { return a.ret(at::outer(a.t(0), a.t(1))); }

// In-place ops mutate the tensor behind the handle and return nothing; the TS side returns `this`.
Napi::Value add_(Args& a) {
  at::Tensor self = a.t(0);
  auto alpha = a.isNullish(2) ? at::Scalar(1) : a.scalar(2);
  self.add_(operand(a, 1), alpha);
  return a.undefined();
}
Napi::Value sub_(Args& a) {
  at::Tensor self = a.t(0);
  auto alpha = a.isNullish(2) ? at::Scalar(1) : a.scalar(2);
  self.sub_(operand(a, 1), alpha);
  return a.undefined();
}
Napi::Value mul_(Args& a) {
  at::Tensor self = a.t(0);
  self.mul_(operand(a, 1));
  return a.undefined();
}
Napi::Value div_(Args& a) {
  at::Tensor self = a.t(0);
  self.div_(operand(a, 1));
  return a.undefined();
}
// self += value * t1 * t2, the update of SGD's momentum-free steps and of running averages.
Napi::Value addcmul_(Args& a) {
  at::Tensor self = a.t(0);
  self.addcmul_(a.t(1), a.t(2), a.scalar(3));
  return a.undefined();
}
Napi::Value lerp_(Args& a) {
  at::Tensor self = a.t(0);
  self.lerp_(a.t(1), a.scalar(2));
  return a.undefined();
}
Napi::Value copy_(Args& a) {
  at::Tensor self = a.t(0);
  self.copy_(a.t(1));
  return a.undefined();
}
Napi::Value zero_(Args& a) {
  at::Tensor self = a.t(0);
  self.zero_();
  return a.undefined();
}
Napi::Value fill_(Args& a) {
  at::Tensor self = a.t(0);
  self.fill_(a.scalar(1));
  return a.undefined();
}
Napi::Value clamp_(Args& a) {
  at::Tensor self = a.t(0);
  self.clamp_(a.optScalar(1), a.optScalar(2));
  return a.undefined();
}
Napi::Value relu_(Args& a) {
  at::Tensor self = a.t(0);
  self.relu_();
  return a.undefined();
}
Napi::Value maskedFill_(Args& a) {
  at::Tensor self = a.t(0);
  self.masked_fill_(a.t(1), a.scalar(2));
  return a.undefined();
}

}  // namespace

void registerMath(Napi::Env env, Napi::Object exports) {
  def(env, exports, "add", add);
  def(env, exports, "sub", sub);
  def(env, exports, "mul", mul);
  def(env, exports, "div", div);
  def(env, exports, "pow", pow);
  def(env, exports, "remainder", remainder);
  def(env, exports, "maximum", maximum);
  def(env, exports, "minimum", minimum);
  def(env, exports, "neg", neg);
  def(env, exports, "sqrt", sqrt);
  def(env, exports, "rsqrt", rsqrt);
  def(env, exports, "exp", exp);
  def(env, exports, "log", log);
  def(env, exports, "abs", abs);
  def(env, exports, "floor", floor);
  def(env, exports, "ceil", ceil);
  def(env, exports, "round", round);
  def(env, exports, "sin", sin);
  def(env, exports, "cos", cos);
  def(env, exports, "tanh", tanh);
  def(env, exports, "sigmoid", sigmoid);
  def(env, exports, "sign", sign);
  def(env, exports, "reciprocal", reciprocal);
  def(env, exports, "isnan", isnan);
  def(env, exports, "isfinite", isfinite);
  def(env, exports, "clamp", clamp);
  def(env, exports, "eq", eq);
  def(env, exports, "ne", ne);
  def(env, exports, "lt", lt);
  def(env, exports, "le", le);
  def(env, exports, "gt", gt);
  def(env, exports, "ge", ge);
  def(env, exports, "logicalAnd", logicalAnd);
  def(env, exports, "logicalOr", logicalOr);
  def(env, exports, "logicalXor", logicalXor);
  def(env, exports, "logicalNot", logicalNot);
  def(env, exports, "allclose", allclose);
  def(env, exports, "equal", equal);
  def(env, exports, "matmul", matmul);
  def(env, exports, "mm", mm);
  def(env, exports, "bmm", bmm);
  def(env, exports, "einsum", einsum);
  def(env, exports, "outer", outer);
  def(env, exports, "add_", add_);
  def(env, exports, "sub_", sub_);
  def(env, exports, "mul_", mul_);
  def(env, exports, "div_", div_);
  def(env, exports, "addcmul_", addcmul_);
  def(env, exports, "lerp_", lerp_);
  def(env, exports, "copy_", copy_);
  def(env, exports, "zero_", zero_);
  def(env, exports, "fill_", fill_);
  def(env, exports, "clamp_", clamp_);
  def(env, exports, "relu_", relu_);
  def(env, exports, "maskedFill_", maskedFill_);
}

}  // namespace moco
