// Views, reshaping, indexing and joining.
#include "args.h"

namespace moco {

namespace {

Napi::Value view(Args& a) { return a.ret(a.t(0).view(a.ints(1))); }
Napi::Value reshape(Args& a) { return a.ret(a.t(0).reshape(a.ints(1))); }
Napi::Value flatten(Args& a) { return a.ret(a.t(0).flatten(a.i64(1), a.i64(2))); }
Napi::Value squeeze(Args& a) { return a.ret(a.isNullish(1) ? a.t(0).squeeze() : a.t(0).squeeze(a.i64(1))); }
Napi::Value unsqueeze(Args& a) { return a.ret(a.t(0).unsqueeze(a.i64(1))); }
Napi::Value permute(Args& a) { return a.ret(a.t(0).permute(a.ints(1))); }
Napi::Value transpose(Args& a) { return a.ret(a.t(0).transpose(a.i64(1), a.i64(2))); }
Napi::Value expand(Args& a) { return a.ret(a.t(0).expand(a.ints(1))); }
Napi::Value repeat(Args& a) { return a.ret(a.t(0).repeat(a.ints(1))); }
Napi::Value narrow(Args& a) { return a.ret(a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3))); }
Napi::Value slice(Args& a) { return a.ret(a.t(0).slice(a.i64(1), a.optI64(2), a.optI64(3), a.i64(4))); }
Napi::Value select(Args& a) { return a.ret(a.t(0).select(a.i64(1), a.i64(2))); }
Napi::Value asStrided(Args& a) { return a.ret(a.t(0).as_strided(a.ints(1), a.ints(2), a.i64(3))); }
Napi::Value indexSelect(Args& a) { return a.ret(a.t(0).index_select(a.i64(1), a.t(2))); }
Napi::Value gather(Args& a) { return a.ret(a.t(0).gather(a.i64(1), a.t(2))); }
// (self, dim, index, src: tensor | number)
Napi::Value scatter(Args& a) {
  return a.ret(a.isTensor(3) ? a.t(0).scatter(a.i64(1), a.t(2), a.t(3)) : a.t(0).scatter(a.i64(1), a.t(2), a.scalar(3)));
}
// (self, dim, index, source): out-of-place index_copy, whole slices copied (scatter goes element by element).
Napi::Value indexCopy(Args& a) { return a.ret(a.t(0).index_copy(a.i64(1), a.t(2), a.t(3))); }
Napi::Value indexCopy_(Args& a) {
  at::Tensor self = a.t(0);
  self.index_copy_(a.i64(1), a.t(2), a.t(3));
  return a.undefined();
}
Napi::Value scatterAdd(Args& a) { return a.ret(a.t(0).scatter_add(a.i64(1), a.t(2), a.t(3))); }
Napi::Value maskedFill(Args& a) {
  return a.ret(a.isTensor(2) ? a.t(0).masked_fill(a.t(1), a.t(2)) : a.t(0).masked_fill(a.t(1), a.scalar(2)));
}
Napi::Value maskedSelect(Args& a) { return a.ret(a.t(0).masked_select(a.t(1))); }
// (condition, x: tensor | number, y: tensor | number)
Napi::Value where(Args& a) {
  const auto& c = a.t(0);
  if (a.isTensor(1) && a.isTensor(2)) return a.ret(at::where(c, a.t(1), a.t(2)));
  if (a.isTensor(1)) return a.ret(at::where(c, a.t(1), a.scalar(2)));
  if (a.isTensor(2)) return a.ret(at::where(c, a.scalar(1), a.t(2)));
  return a.ret(at::where(c, a.scalar(1), a.scalar(2)));
}
Napi::Value cat(Args& a) { return a.ret(at::cat(a.tensors(0), a.i64(1))); }
Napi::Value stack(Args& a) { return a.ret(at::stack(a.tensors(0), a.i64(1))); }
// (self, sizeOrSizes: number | number[], dim)
Napi::Value split(Args& a) {
  if (a.isNumber(1)) return a.ret(a.t(0).split(a.i64(1), a.i64(2)));
  return a.ret(a.t(0).split_with_sizes(a.ints(1), a.i64(2)));
}
Napi::Value chunk(Args& a) { return a.ret(a.t(0).chunk(a.i64(1), a.i64(2))); }
Napi::Value flip(Args& a) { return a.ret(a.t(0).flip(a.ints(1))); }
Napi::Value roll(Args& a) { return a.ret(a.t(0).roll(a.ints(1), a.ints(2))); }
Napi::Value tril(Args& a) { return a.ret(a.t(0).tril(a.i64(1))); }
Napi::Value triu(Args& a) { return a.ret(a.t(0).triu(a.i64(1))); }
Napi::Value nonzero(Args& a) { return a.ret(a.t(0).nonzero()); }
Napi::Value oneHot(Args& a) { return a.ret(at::one_hot(a.t(0), a.i64(1))); }

}  // namespace

void registerShape(Napi::Env env, Napi::Object exports) {
  def(env, exports, "view", view);
  def(env, exports, "reshape", reshape);
  def(env, exports, "flatten", flatten);
  def(env, exports, "squeeze", squeeze);
  def(env, exports, "unsqueeze", unsqueeze);
  def(env, exports, "permute", permute);
  def(env, exports, "transpose", transpose);
  def(env, exports, "expand", expand);
  def(env, exports, "repeat", repeat);
  def(env, exports, "narrow", narrow);
  def(env, exports, "slice", slice);
  def(env, exports, "select", select);
  def(env, exports, "asStrided", asStrided);
  def(env, exports, "indexSelect", indexSelect);
  def(env, exports, "gather", gather);
  def(env, exports, "scatter", scatter);
  def(env, exports, "indexCopy", indexCopy);
  def(env, exports, "indexCopy_", indexCopy_);
  def(env, exports, "scatterAdd", scatterAdd);
  def(env, exports, "maskedFill", maskedFill);
  def(env, exports, "maskedSelect", maskedSelect);
  def(env, exports, "where", where);
  def(env, exports, "cat", cat);
  def(env, exports, "stack", stack);
  def(env, exports, "split", split);
  def(env, exports, "chunk", chunk);
  def(env, exports, "flip", flip);
  def(env, exports, "roll", roll);
  def(env, exports, "tril", tril);
  def(env, exports, "triu", triu);
  def(env, exports, "nonzero", nonzero);
  def(env, exports, "oneHot", oneHot);
}

}  // namespace moco
