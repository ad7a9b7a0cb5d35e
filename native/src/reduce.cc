// Reductions, sorting and selection. A null `dims` argument reduces over every element.
#include "args.h"

namespace moco {

namespace {

Napi::Value sum(Args& a) {
  if (a.isNullish(1)) return a.ret(at::sum(a.t(0), a.optDtype(3)));
  auto dims = a.ints(1);
  return a.ret(at::sum(a.t(0), at::IntArrayRef(dims), a.b(2), a.optDtype(3)));
}
Napi::Value mean(Args& a) {
  if (a.isNullish(1)) return a.ret(at::mean(a.t(0), a.optDtype(3)));
  auto dims = a.ints(1);
  return a.ret(at::mean(a.t(0), at::IntArrayRef(dims), a.b(2), a.optDtype(3)));
}
Napi::Value prod(Args& a) {
  if (a.isNullish(1)) return a.ret(at::prod(a.t(0)));
  return a.ret(at::prod(a.t(0), a.i64(1), a.b(2)));
}
// (self, dims | null, unbiased, keepdim)
Napi::Value std_(Args& a) {
  if (a.isNullish(1)) return a.ret(at::std(a.t(0), a.b(2)));
  auto dims = a.ints(1);
  return a.ret(at::std(a.t(0), at::IntArrayRef(dims), a.b(2), a.b(3)));
}
Napi::Value var(Args& a) {
  if (a.isNullish(1)) return a.ret(at::var(a.t(0), a.b(2)));
  auto dims = a.ints(1);
  return a.ret(at::var(a.t(0), at::IntArrayRef(dims), a.b(2), a.b(3)));
}
// (self, p, dims | null, keepdim)
Napi::Value norm(Args& a) {
  if (a.isNullish(2)) return a.ret(at::norm(a.t(0), a.scalar(1)));
  auto dims = a.ints(2);
  return a.ret(at::norm(a.t(0), c10::optional<at::Scalar>(a.scalar(1)), at::IntArrayRef(dims), a.b(3)));
}
Napi::Value logsumexp(Args& a) {
  auto dims = a.ints(1);
  return a.ret(at::logsumexp(a.t(0), at::IntArrayRef(dims), a.b(2)));
}
Napi::Value cumsum(Args& a) { return a.ret(at::cumsum(a.t(0), a.i64(1))); }
Napi::Value maxAll(Args& a) { return a.ret(at::max(a.t(0))); }
Napi::Value minAll(Args& a) { return a.ret(at::min(a.t(0))); }
// (self, dim, keepdim) -> [values, indices]
Napi::Value maxDim(Args& a) { return a.ret(at::max(a.t(0), a.i64(1), a.b(2))); }
Napi::Value minDim(Args& a) { return a.ret(at::min(a.t(0), a.i64(1), a.b(2))); }
Napi::Value argmax(Args& a) { return a.ret(at::argmax(a.t(0), a.optI64(1), a.b(2))); }
Napi::Value argmin(Args& a) { return a.ret(at::argmin(a.t(0), a.optI64(1), a.b(2))); }
// (self, k, dim, largest, sorted) -> [values, indices]
Napi::Value topk(Args& a) { return a.ret(at::topk(a.t(0), a.i64(1), a.i64(2), a.b(3), a.b(4))); }
// (self, dim, descending) -> [values, indices]; stable so that ties keep their order.
Napi::Value sort(Args& a) { return a.ret(at::sort(a.t(0), true, a.i64(1), a.b(2))); }
Napi::Value argsort(Args& a) { return a.ret(std::get<1>(at::sort(a.t(0), true, a.i64(1), a.b(2)))); }
Napi::Value all(Args& a) { return a.ret(a.isNullish(1) ? at::all(a.t(0)) : at::all(a.t(0), a.i64(1), a.b(2))); }
Napi::Value any(Args& a) { return a.ret(a.isNullish(1) ? at::any(a.t(0)) : at::any(a.t(0), a.i64(1), a.b(2))); }
Napi::Value bincount(Args& a) { return a.ret(at::bincount(a.t(0), a.optT(1), a.i64(2))); }

}  // namespace

void registerReduce(Napi::Env env, Napi::Object exports) {
  def(env, exports, "sum", sum);
  def(env, exports, "mean", mean);
  def(env, exports, "prod", prod);
  def(env, exports, "std", std_);
  def(env, exports, "var", var);
  def(env, exports, "norm", norm);
  def(env, exports, "logsumexp", logsumexp);
  def(env, exports, "cumsum", cumsum);
  def(env, exports, "maxAll", maxAll);
  def(env, exports, "minAll", minAll);
  def(env, exports, "maxDim", maxDim);
  def(env, exports, "minDim", minDim);
  def(env, exports, "argmax", argmax);
  def(env, exports, "argmin", argmin);
  def(env, exports, "topk", topk);
  def(env, exports, "sort", sort);
  def(env, exports, "argsort", argsort);
  def(env, exports, "all", all);
  def(env, exports, "any", any);
  def(env, exports, "bincount", bincount);
}

}  // namespace moco
