// c10d process groups: a TCPStore rendezvous, a Gloo process group over it (NCCL when the libtorch
// it is built against has it), and the collectives MoCo needs.
//
// Groups cross to JS as small integer ids into a process-wide table. Collectives are synchronous,
// because a training step is one synchronous scope (the key gather and the shuffle run inside the
// model's forward): each waits on its c10d work object for at most the given timeout and turns a
// timeout or a peer's failure into a JS exception. The rendezvous (connecting the store and the
// group), which can wait for minutes on peers that are still starting, runs on libuv's pool instead
// and returns a Promise, so that timers and signals keep working meanwhile.
//
// A group whose collective failed or timed out is marked broken: its Gloo threads may still be
// blocked inside the failed operation, and ProcessGroupGloo's destructor joins them, so a broken
// group is released without being destroyed (the process is about to exit in that case anyway).
#if !defined(MOCO_WITH_GLOO) && !defined(MOCO_WITH_NCCL)
// Neither Gloo's headers nor NCCL were found at build time: every entry point says so.
#include "args.h"

namespace moco {
namespace {
Napi::Value noBackend(Args& a) {
  throw ArgError("this build of the addon has no process group backend (no Gloo headers, no NCCL)");
}
Napi::Value noBackends(Args& a) { return Napi::Array::New(a.env()); }
}  // namespace
void registerDist(Napi::Env env, Napi::Object exports) {
  for (const char* name : {"distInit", "distAllReduce", "distAllGather", "distBroadcast", "distBarrier", "distDispose"}) {
    def(env, exports, name, noBackend);
  }
  def(env, exports, "distBackends", noBackends);
}
}  // namespace moco
#else
#ifdef MOCO_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef MOCO_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "args.h"

namespace moco {

namespace {

using Millis = std::chrono::milliseconds;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
#ifdef MOCO_WITH_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef MOCO_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0;
  int size = 1;
  std::string backend;
  bool broken = false;
};

std::mutex groupsMutex;
std::unordered_map<uint32_t, std::shared_ptr<Group>> groups;
uint32_t nextGroupId = 1;

std::string firstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// Frees a group: a healthy one is destroyed (its threads joined, sockets closed); a broken one is
// leaked on purpose, see the file comment.
void release(std::shared_ptr<Group> group) {
  if (group->broken) {
#ifdef MOCO_WITH_GLOO
    group->gloo.release();
#endif
#ifdef MOCO_WITH_NCCL
    group->nccl.release();
#endif
    group->store.release();
  }
}

void cleanupGroup(void* data) {
  auto id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
  std::shared_ptr<Group> group;
  {
    std::lock_guard<std::mutex> lock(groupsMutex);
    auto it = groups.find(id);
    if (it == groups.end()) return;
    group = std::move(it->second);
    groups.erase(it);
  }
  release(std::move(group));
}

struct InitSpec {
  std::string host;
  int64_t port = 0;
  int rank = 0;
  int size = 1;
  Millis timeout{0};
  std::string backend;     // "gloo" or "nccl"
  std::string deviceKind;  // "interface", "hostname" or "default"
  std::string deviceName;
};

std::shared_ptr<Group> connect(const InitSpec& spec) {
  auto group = std::make_shared<Group>();
  group->rank = spec.rank;
  group->size = spec.size;
  group->backend = spec.backend;

  c10d::TCPStoreOptions storeOptions;
  storeOptions.port = static_cast<std::uint16_t>(spec.port);
  storeOptions.isServer = spec.rank == 0;
  storeOptions.numWorkers = static_cast<std::size_t>(spec.size);
  storeOptions.waitWorkers = true;
  storeOptions.timeout = spec.timeout;
  group->store = c10::make_intrusive<c10d::TCPStore>(spec.host, storeOptions);

  if (spec.backend == "nccl") {
#ifdef MOCO_WITH_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = spec.timeout;
    group->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, spec.rank, spec.size, options);
    return group;
#else
    throw ArgError("this build has no NCCL (libtorch without CUDA); use the gloo backend");
#endif
  }
#ifdef MOCO_WITH_GLOO
  auto options = c10d::ProcessGroupGloo::Options::create(spec.timeout);
  if (spec.deviceKind == "interface") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(spec.deviceName));
  } else if (spec.deviceKind == "hostname") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(spec.deviceName));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  group->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, spec.rank, spec.size, options);
  return group;
#else
  throw ArgError("this build has no Gloo (its libtorch ships no Gloo headers); use the nccl backend");
#endif
}

Napi::Error jsError(Napi::Env env, const char* op, const std::string& reason) {
  return torchError(env, op, std::string(op) + ": " + reason);
}

class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, InitSpec spec)
      : Napi::AsyncWorker(env, "moco.distInit"), spec_(std::move(spec)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      group_ = connect(spec_);
    } catch (const c10::Error& e) {
      SetError(firstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      SetError(firstLine(e.what()));
    } catch (...) {
      SetError("unknown native error");
    }
  }

  void OnOK() override {
    uint32_t id;
    {
      std::lock_guard<std::mutex> lock(groupsMutex);
      id = nextGroupId++;
      groups.emplace(id, std::move(group_));
    }
    napi_add_env_cleanup_hook(Env(), cleanupGroup, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
    deferred_.Resolve(Napi::Number::New(Env(), id));
  }

  void OnError(const Napi::Error& e) override {
    std::string where = spec_.host + ":" + std::to_string(spec_.port);
    std::string reason = "rank " + std::to_string(spec_.rank) + " of " + std::to_string(spec_.size) +
                         " could not meet the other ranks at " + where + " within " +
                         std::to_string(spec_.timeout.count()) + " ms: " + e.Message();
    deferred_.Reject(jsError(Env(), "distInit", reason).Value());
  }

 private:
  InitSpec spec_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Group> group_;
};

// (host, port, rank, worldSize, timeoutMs, backend, deviceKind, deviceName) → Promise<group id>
Napi::Value distInit(Args& a) {
  InitSpec spec;
  spec.host = a.str(0);
  spec.port = a.i64(1);
  int64_t rank = a.i64(2);
  int64_t size = a.i64(3);
  int64_t timeout = a.i64(4);
  spec.backend = a.str(5);
  spec.deviceKind = a.str(6);
  spec.deviceName = a.str(7);
  if (spec.port < 0 || spec.port > 65535) throw ArgError("port must be in [0, 65535], got " + std::to_string(spec.port));
  if (size < 1 || size > 65536) throw ArgError("world size must be in [1, 65536], got " + std::to_string(size));
  if (rank < 0 || rank >= size) throw ArgError("rank must be in [0, " + std::to_string(size) + "), got " + std::to_string(rank));
  if (timeout < 1) throw ArgError("timeout must be at least 1 ms, got " + std::to_string(timeout));
  if (spec.backend != "gloo" && spec.backend != "nccl") throw ArgError("backend must be 'gloo' or 'nccl', got '" + spec.backend + "'");
  if (spec.deviceKind != "interface" && spec.deviceKind != "hostname" && spec.deviceKind != "default") {
    throw ArgError("device kind must be 'interface', 'hostname' or 'default', got '" + spec.deviceKind + "'");
  }
  spec.rank = static_cast<int>(rank);
  spec.size = static_cast<int>(size);
  spec.timeout = Millis(timeout);
  auto* worker = new InitWorker(a.env(), std::move(spec));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

std::shared_ptr<Group> groupAt(const Args& a, size_t i) {
  int64_t id = a.i64(i);
  std::lock_guard<std::mutex> lock(groupsMutex);
  auto it = groups.find(static_cast<uint32_t>(id));
  if (id < 1 || it == groups.end()) throw ArgError("process group has been disposed");
  if (it->second->broken) {
    throw ArgError("process group is unusable: an earlier collective failed or timed out (rank " +
                   std::to_string(it->second->rank) + " of " + std::to_string(it->second->size) + ")");
  }
  return it->second;
}

Millis timeoutAt(const Args& a, size_t i) {
  int64_t ms = a.i64(i);
  if (ms < 1) throw ArgError("timeout must be at least 1 ms, got " + std::to_string(ms));
  return Millis(ms);
}

template <class F>
auto dispatch(Group& g, F&& f) {
#if defined(MOCO_WITH_NCCL) && defined(MOCO_WITH_GLOO)
  if (g.nccl) return f(*g.nccl);
  return f(*g.gloo);
#elif defined(MOCO_WITH_NCCL)
  return f(*g.nccl);
#else
  return f(*g.gloo);
#endif
}

// Waits for a collective. A timeout or a peer's failure breaks the group (see the file comment).
template <class WorkPtr>
void await(Group& g, const WorkPtr& work, Millis timeout) {
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    g.broken = true;
    std::string where = " (rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + ")";
    if (!work->isCompleted()) {
      throw std::runtime_error("no answer from the other ranks within " + std::to_string(timeout.count()) +
                               " ms" + where + ": a peer has died, hung, or is running a different collective");
    }
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    throw std::runtime_error("collective failed" + where + ": " +
                             firstLine(c10 != nullptr ? c10->what_without_backtrace() : e.what()));
  }
}

void checkTensor(const at::Tensor& t) {
  if (t.layout() != at::kStrided) throw ArgError("expected a dense tensor");
}

// (group, tensor, op, timeoutMs): in place. op: 0 sum, 1 avg, 2 max, 3 min, 4 product.
Napi::Value distAllReduce(Args& a) {
  auto g = groupAt(a, 0);
  at::Tensor t = a.t(1);
  int64_t op = a.i64(2);
  Millis timeout = timeoutAt(a, 3);
  checkTensor(t);
  c10d::ReduceOp reduce;
  switch (op) {
    case 0:
    case 1:
      reduce = c10d::ReduceOp::SUM;
      break;
    case 2:
      reduce = c10d::ReduceOp::MAX;
      break;
    case 3:
      reduce = c10d::ReduceOp::MIN;
      break;
    case 4:
      reduce = c10d::ReduceOp::PRODUCT;
      break;
    default:
      throw ArgError("unknown reduce op code " + std::to_string(op));
  }
  // Gloo has no AVG: the average is the sum divided by the world size.
  if (op == 1 && !at::isFloatingType(t.scalar_type())) {
    throw ArgError("avg needs a floating-point tensor, got " + std::string(c10::toString(t.scalar_type())));
  }
  std::vector<at::Tensor> buffers{t.is_contiguous() ? t : t.contiguous()};
  c10d::AllreduceOptions options;
  options.reduceOp = reduce;
  options.timeout = timeout;
  auto work = dispatch(*g, [&](auto& pg) { return pg.allreduce(buffers, options); });
  await(*g, work, timeout);
  at::NoGradGuard noGrad;
  if (op == 1) buffers[0].div_(g->size);
  if (!buffers[0].is_same(t)) t.copy_(buffers[0]);
  return a.undefined();
}

// (group, tensor, timeoutMs) → one tensor per rank, in rank order. Every rank passes the same shape.
Napi::Value distAllGather(Args& a) {
  auto g = groupAt(a, 0);
  at::Tensor t = a.t(1);
  Millis timeout = timeoutAt(a, 2);
  checkTensor(t);
  std::vector<at::Tensor> inputs{t.detach().contiguous()};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < g->size; ++r) outputs[0].push_back(at::empty_like(inputs[0], at::MemoryFormat::Contiguous));
  c10d::AllgatherOptions options;
  options.timeout = timeout;
  auto work = dispatch(*g, [&](auto& pg) { return pg.allgather(outputs, inputs, options); });
  await(*g, work, timeout);
  return a.ret(outputs[0]);
}

// (group, tensor, root, timeoutMs): in place.
Napi::Value distBroadcast(Args& a) {
  auto g = groupAt(a, 0);
  at::Tensor t = a.t(1);
  int64_t root = a.i64(2);
  Millis timeout = timeoutAt(a, 3);
  checkTensor(t);
  if (root < 0 || root >= g->size) {
    throw ArgError("root must be in [0, " + std::to_string(g->size) + "), got " + std::to_string(root));
  }
  std::vector<at::Tensor> buffers{t.is_contiguous() ? t : t.contiguous()};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  options.timeout = timeout;
  auto work = dispatch(*g, [&](auto& pg) { return pg.broadcast(buffers, options); });
  await(*g, work, timeout);
  at::NoGradGuard noGrad;
  if (!buffers[0].is_same(t)) t.copy_(buffers[0]);
  return a.undefined();
}

// (group, timeoutMs)
Napi::Value distBarrier(Args& a) {
  auto g = groupAt(a, 0);
  Millis timeout = timeoutAt(a, 1);
  c10d::BarrierOptions options;
  options.timeout = timeout;
  auto work = dispatch(*g, [&](auto& pg) { return pg.barrier(options); });
  await(*g, work, timeout);
  return a.undefined();
}

// (group): idempotent.
Napi::Value distDispose(Args& a) {
  int64_t id = a.i64(0);
  std::shared_ptr<Group> group;
  {
    std::lock_guard<std::mutex> lock(groupsMutex);
    auto it = groups.find(static_cast<uint32_t>(id));
    if (it == groups.end()) return a.undefined();
    group = std::move(it->second);
    groups.erase(it);
  }
  napi_remove_env_cleanup_hook(a.env(), cleanupGroup, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  release(std::move(group));
  return a.undefined();
}

Napi::Value distBackends(Args& a) {
  auto list = Napi::Array::New(a.env());
  uint32_t n = 0;
#ifdef MOCO_WITH_GLOO
  list.Set(n++, Napi::String::New(a.env(), "gloo"));
#endif
#ifdef MOCO_WITH_NCCL
  list.Set(n++, Napi::String::New(a.env(), "nccl"));
#endif
  (void)n;
  return list;
}

}  // namespace

void registerDist(Napi::Env env, Napi::Object exports) {
  def(env, exports, "distInit", distInit);
  def(env, exports, "distAllReduce", distAllReduce);
  def(env, exports, "distAllGather", distAllGather);
  def(env, exports, "distBroadcast", distBroadcast);
  def(env, exports, "distBarrier", distBarrier);
  def(env, exports, "distDispose", distDispose);
  def(env, exports, "distBackends", distBackends);
}

}  // namespace moco
#endif  // a process group backend
