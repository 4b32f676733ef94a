// Snapshots across devices: a CPU snapshot continues on the GPU (and back) with the backends' usual small
// differences; on the GPU itself 10 + 10 = 20; dt edits are refused there with the session untouched.
#include <cstring>

#include "engine/session.h"
#include "engine/snapshot.h"
#include "kernels/cuda_backend.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;

namespace {

std::unique_ptr<Session> session_on(const std::string& device, std::shared_ptr<const Model> m, const char* dtype = "f32") {
  BackendOptions o;
  o.dtype = dtype;
  return std::make_unique<Session>(device == "cuda" ? make_cuda_backend(std::move(m), o) : make_cpu_backend(std::move(m)));
}

GenerateOptions options(int64_t n, float t, bool reseed = true) {
  GenerateOptions go;
  go.max_new_tokens = n;
  go.sampling.temperature = t;
  go.sampling.seed = 7;
  go.stop_at_eos = false;
  go.reseed = reseed;
  return go;
}

std::shared_ptr<const Model> model() {
  Config c;
  c.d_model = 256;
  c.n_layer = 3;
  c.d_state = 128;
  c.head_dim = 64;
  c.expand = 2;
  c.n_heads = 8;
  c.n_groups = 1;
  c.chunk_size = 64;
  c.d_conv = 4;
  c.vocab_size = 515;
  c.tie_embeddings = true;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = 0;
  c.finalize("snapshot");
  return Model::random(c, 21);
}

const std::vector<int32_t> kPrompt = {5, 88, 301, 17, 4, 260, 99, 12, 450, 3};

// Feeds the snapshot's pending token and `more` through both backends; worst relative logit error.
double continuation_error(Backend& a, Backend& b, const Snapshot& s, const std::vector<int32_t>& more) {
  const size_t V = size_t(s.shape.vocab_size);
  std::vector<float> la(V), lb(V);
  double worst = 0;
  std::vector<int32_t> feed = s.pending;
  feed.insert(feed.end(), more.begin(), more.end());
  for (int32_t t : feed) {
    a.step(t, la.data());
    b.step(t, lb.data());
    worst = std::max(worst, rel_err(la.data(), lb.data(), V));
  }
  return worst;
}

}  // namespace

TEST_F(CudaTest, CpuSnapshotLoadsOnGpuAndBack) {
  auto m = model();
  for (const char* dt : {"f32", "bf16"}) {
    const double tol = std::string(dt) == "f32" ? 1e-4 : 3e-2;
    // CPU -> GPU, through the file format
    auto cpu = session_on("cpu", m);
    cpu->generate(kPrompt, options(12, 0.8f));
    const Snapshot snap = decode_snapshot(encode_snapshot(cpu->snapshot()), "cpu.snap");
    EXPECT_EQ(snap.weights_dtype, "f32");
    auto gpu = session_on("cuda", m, dt);
    gpu->restore_snapshot(snap);
    const State back = gpu->state();
    for (size_t l = 0; l < back.layers.size(); ++l)
      EXPECT_LT(rel_err(back.layers[l].ssm.data(), snap.state.layers[l].ssm.data(), back.layers[l].ssm.size()), tol) << dt;
    auto cpu2 = session_on("cpu", m);
    cpu2->restore_snapshot(snap);
    const double err = continuation_error(gpu->backend(), cpu2->backend(), snap, {7, 300, 42, 42, 9});
    std::printf("  cpu snapshot continued on cuda (%s): worst rel logit err %.2e\n", dt, err);
    EXPECT_LT(err, tol) << dt;

    // GPU -> CPU
    auto g = session_on("cuda", m, dt);
    g->generate(kPrompt, options(9, 0.f));
    const Snapshot gs = decode_snapshot(encode_snapshot(g->snapshot()), "gpu.snap");
    EXPECT_EQ(gs.weights_dtype, dt);
    EXPECT_NE(gs.device.find("cuda"), std::string::npos) << gs.device;
    auto c = session_on("cpu", m);
    c->restore_snapshot(gs);
    auto g2 = session_on("cuda", m, dt);
    g2->restore_snapshot(gs);
    EXPECT_LT(continuation_error(c->backend(), g2->backend(), gs, {1, 2, 3}), tol) << dt;
  }
}

TEST_F(CudaTest, TenPlusTenIsTwentyOnTheGpu) {
  auto m = model();
  for (float t : {0.f, 0.8f}) {
    auto whole = session_on("cuda", m, "bf16");
    const auto twenty = whole->generate(kPrompt, options(20, t)).ids;
    auto first = session_on("cuda", m, "bf16");
    auto ids = first->generate(kPrompt, options(10, t)).ids;
    const Snapshot snap = decode_snapshot(encode_snapshot(first->snapshot()), "ten.snap");
    auto second = session_on("cuda", m, "bf16");
    second->restore_snapshot(snap);
    GenerateOptions go = options(10, t, false);
    go.sampling = snap.sampler->params;
    const auto more = second->generate({}, go).ids;
    ids.insert(ids.end(), more.begin(), more.end());
    EXPECT_EQ(ids, twenty) << "temperature " << t;
  }
}

TEST_F(CudaTest, DtEditsAreRefusedWithTheSessionUntouched) {
  auto m = model();
  auto cpu = session_on("cpu", m);
  cpu->generate(kPrompt, options(4, 0.f));
  cpu->set_dt_edits({{1, 2, 0.5f, 0.f, INFINITY}});
  const Snapshot edited = cpu->snapshot();
  auto gpu = session_on("cuda", m, "bf16");
  gpu->generate(kPrompt, options(6, 0.f));
  const State before = gpu->state();
  const auto tokens = gpu->tokens();
  try {
    gpu->restore_snapshot(edited);
    FAIL() << "the CUDA backend took dt edits";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gpu->set_dt_edits({{0, 0, 2.f, 0.f, INFINITY}}), Error);
  EXPECT_EQ(gpu->tokens(), tokens);
  const State after = gpu->state();
  for (size_t l = 0; l < after.layers.size(); ++l) EXPECT_EQ(after.layers[l].ssm, before.layers[l].ssm);
}
