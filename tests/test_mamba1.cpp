// Mamba-1 on the CPU beyond the reference logits (test_formats.cpp): the two scans against a naive
// float64 recurrence, the hidden-attention matrix against an independent construction, probes against
// values recomputed here, snapshots, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/checkpoint.h"
#include "engine/mamba1_cpu.h"
#include "engine/mamba1_scan.h"
#include "engine/probe_stats.h"
#include "engine/reference.h"
#include "engine/session.h"
#include "engine/snapshot.h"
#include "engine/ssd_matrix.h"
#include "tests/test_util.h"

using namespace mamba;

namespace {

std::string fixture(const std::string& name) { return test::source_dir() + "/tests/fixtures/formats/" + name; }

struct ScanInputs {
  int64_t T, E, N;
  std::vector<float> x, dt, bc, A, D;  // bc: (T, 2N) B | C
  SelectiveScanArgs args(float* y, float* state) const {
    SelectiveScanArgs a;
    a.T = T;
    a.E = E;
    a.N = N;
    a.x = x.data();
    a.ldx = E;
    a.dt = dt.data();
    a.B = bc.data();
    a.C = bc.data() + N;
    a.ldbc = 2 * N;
    a.A = A.data();
    a.D = D.data();
    a.y = y;
    a.state = state;
    return a;
  }
};

ScanInputs random_inputs(int64_t T, int64_t E, int64_t N, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.f, 1.f);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  ScanInputs s{T, E, N, {}, {}, {}, {}, {}};
  for (int64_t i = 0; i < T * E; ++i) s.x.push_back(n01(rng));
  for (int64_t i = 0; i < T * E; ++i) s.dt.push_back(std::exp(std::log(0.01f) + u(rng) * std::log(100.f)));  // 0.01 .. 1
  for (int64_t i = 0; i < T * 2 * N; ++i) s.bc.push_back(n01(rng));
  for (int64_t i = 0; i < E * N; ++i) s.A.push_back(-(0.5f + 7.5f * u(rng)));
  for (int64_t i = 0; i < E; ++i) s.D.push_back(n01(rng));
  return s;
}

// h_t = exp(dt A) h + dt B x; y = h.C + D x, in double, from a zero state. Returns y (T, E); `h` the final state.
std::vector<double> naive_scan(const ScanInputs& s, std::vector<double>* h_out = nullptr, std::vector<double>* sq = nullptr) {
  std::vector<double> h(static_cast<size_t>(s.E * s.N), 0.0), y(static_cast<size_t>(s.T * s.E));
  if (sq) sq->assign(static_cast<size_t>(s.T * s.E), 0.0);
  for (int64_t t = 0; t < s.T; ++t)
    for (int64_t c = 0; c < s.E; ++c) {
      const double dt = s.dt[t * s.E + c], x = s.x[t * s.E + c];
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n) {
        double& hv = h[c * s.N + n];
        hv = std::exp(dt * s.A[c * s.N + n]) * hv + dt * s.bc[t * 2 * s.N + n] * x;
        acc += hv * s.bc[t * 2 * s.N + s.N + n];
        if (sq) (*sq)[t * s.E + c] += hv * hv;
      }
      y[t * s.E + c] = acc + s.D[c] * x;
    }
  if (h_out) *h_out = h;
  return y;
}

double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST(SelectiveScan, RecurrentAndChunkedMatchANaiveRecurrence) {
  for (auto [T, E, N] : {std::tuple{37, 24, 5}, {1, 7, 16}, {64, 130, 16}, {5, 3, 1}}) {
    const ScanInputs s = random_inputs(T, E, N, 11 + T);
    std::vector<double> h_ref, sq;
    const std::vector<double> y_ref = naive_scan(s, &h_ref, &sq);
    std::vector<float> y(static_cast<size_t>(T * E)), h(static_cast<size_t>(E * N), 0.f);
    selective_scan_recurrent(s.args(y.data(), h.data()));
    EXPECT_LT(rel(y, y_ref), 1e-5) << "recurrent T=" << T;
    EXPECT_LT(rel(h, h_ref), 1e-5);
    for (int64_t Q : {1, 4, 7, 64}) {
      std::vector<float> yc(y.size()), hc(h.size(), 0.f), norms(static_cast<size_t>(T));
      SelectiveScanArgs a = s.args(yc.data(), hc.data());
      a.state_norm = norms.data();  // one group: ||h_t|| over all channels
      a.groups = 1;
      selective_scan_chunked(a, Q);
      EXPECT_LT(rel(yc, y_ref), 1e-5) << "chunked T=" << T << " Q=" << Q;
      EXPECT_LT(rel(hc, h_ref), 1e-5) << "final state, Q=" << Q;
      for (int64_t t = 0; t < T; ++t) {
        double s2 = 0;
        for (int64_t c = 0; c < E; ++c) s2 += sq[t * E + c];
        EXPECT_NEAR(norms[t], std::sqrt(s2), 1e-4 * std::sqrt(s2)) << "t=" << t << " Q=" << Q;
      }
    }
  }
}

TEST(SelectiveScan, SplitSequencesCarryTheState) {
  const ScanInputs s = random_inputs(29, 16, 8, 3);
  std::vector<float> y(29 * 16), h(16 * 8, 0.f);
  selective_scan_recurrent(s.args(y.data(), h.data()));
  // The same sequence as 11 + 18 positions, the second part chunked from the first part's state.
  std::vector<float> y2(29 * 16), h2(16 * 8, 0.f);
  SelectiveScanArgs a = s.args(y2.data(), h2.data());
  a.T = 11;
  selective_scan_recurrent(a);
  a.T = 18;
  a.x += 11 * 16;
  a.dt += 11 * 16;
  a.B += 11 * 16;
  a.C += 11 * 16;
  a.y += 11 * 16;
  selective_scan_chunked(a, 5);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y2[i], y[i], 1e-5 * (1 + std::abs(y[i])));
  for (size_t i = 0; i < h.size(); ++i) EXPECT_NEAR(h2[i], h[i], 1e-5 * (1 + std::abs(h[i])));
}

TEST(HiddenAttention, MatchesAnIndependentConstructionAndReproducesTheScan) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  const std::vector<int32_t> ids = test::random_ids(23, ck.model->config.vocab_size, 5);
  const int64_t layer = 1, T = 23;
  const Mamba1LayerTrace tr = trace_mamba1_layer(*ck.model, ids, layer);
  ASSERT_EQ(tr.T, T);
  for (int64_t c : {0L, 17L, tr.E - 1}) {
    const std::vector<double> M = mamba1_layer_attention(*ck.model, ids, layer, c);
    ASSERT_EQ(static_cast<int64_t>(M.size()), T * T);
    // Independent: products of the per-step decays (not an exponential of a sum), in long double.
    double worst = 0, scale = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < T; ++s) {
        long double v = 0;
        if (s <= t)
          for (int64_t n = 0; n < tr.N; ++n) {
            long double decay = 1;
            for (int64_t k = s + 1; k <= t; ++k) decay *= std::exp(static_cast<long double>(tr.dt[k * tr.E + c]) * tr.A[c * tr.N + n]);
            v += static_cast<long double>(tr.C[t * tr.N + n]) * decay * tr.B[s * tr.N + n];
          }
        v *= s <= t ? static_cast<long double>(tr.dt[s * tr.E + c]) : 0;
        worst = std::max(worst, std::abs(double(v) - M[t * T + s]));
        scale = std::max(scale, std::abs(double(v)));
      }
    EXPECT_LT(worst, 1e-12 * std::max(1.0, scale)) << "channel " << c;
    // y[:, c] = M x[:, c] + D x[:, c] is what the layer's scan computed.
    for (int64_t t = 0; t < T; ++t) {
      double y = tr.D[c] * tr.x[t * tr.E + c];
      for (int64_t s = 0; s <= t; ++s) y += M[t * T + s] * tr.x[s * tr.E + c];
      EXPECT_NEAR(tr.y[t * tr.E + c], y, 1e-4 * (1 + std::abs(y))) << "t=" << t << " c=" << c;
    }
  }
  EXPECT_THROW(mamba1_layer_attention(*ck.model, ids, 5, 0), Error);
  EXPECT_THROW(mamba1_layer_attention(*ck.model, ids, 0, tr.E), Error);
  EXPECT_THROW(trace_mamba1_layer(*test::tiny_model(1), ids, 0), Error);
}

TEST(Mamba1Probes, ValuesMatchAnIndependentRecomputation) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  const Config& c = ck.model->config;
  const int64_t S = probe_groups(c), E = c.d_inner, L = c.n_layer;
  ASSERT_EQ(E % S, 0);
  EXPECT_EQ(S, 1);  // 64 channels: one group of 64
  const std::vector<int32_t> ids = test::random_ids(19, c.vocab_size, 9);
  const int64_t T = 19;
  for (ScanMode scan : {ScanMode::Chunked, ScanMode::Recurrent}) {
    ProbeRecorder rec(c, ck.model->weights);
    EXPECT_EQ(rec.heads(), E);
    EXPECT_EQ(rec.groups(), S);
    auto b = make_cpu_backend(ck.model);
    ForwardOptions fo;
    fo.scan = scan;
    fo.chunk_size = 4;
    fo.probes = &rec;
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    b->forward(std::span<const int32_t>(ids.data(), 12), fo, logits.data());
    for (int64_t t = 12; t < T; ++t) b->step(ids[t], logits.data(), &rec);  // decode reports the same hook points
    const ProbeFrames f = rec.frames(0, T);
    ASSERT_EQ(f.count, T);
    ASSERT_EQ(f.S, S);
    for (int64_t l = 0; l < L; ++l) {
      const Mamba1LayerTrace tr = trace_mamba1_layer(*ck.model, ids, l);
      ScanInputs s{T, E, c.d_state, tr.x, tr.dt, {}, tr.A, tr.D};
      for (int64_t t = 0; t < T; ++t) {
        s.bc.insert(s.bc.end(), tr.B.begin() + t * c.d_state, tr.B.begin() + (t + 1) * c.d_state);
        s.bc.insert(s.bc.end(), tr.C.begin() + t * c.d_state, tr.C.begin() + (t + 1) * c.d_state);
      }
      std::vector<double> sq;
      const std::vector<double> y = naive_scan(s, nullptr, &sq);
      const int64_t gs = E / S;
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t e = 0; e < E; ++e) {
          const float dt = f.dt[(t * L + l) * E + e];
          EXPECT_NEAR(dt, tr.dt[t * E + e], 1e-5 * (1 + tr.dt[t * E + e]));
          double meanA = 0;
          for (int64_t n = 0; n < c.d_state; ++n) meanA += tr.A[e * c.d_state + n];
          meanA /= double(c.d_state);
          EXPECT_NEAR(f.decay[(t * L + l) * E + e], std::exp(dt * meanA), 1e-6);
        }
        for (int64_t g = 0; g < S; ++g) {
          double hs = 0, ys = 0;
          for (int64_t e = g * gs; e < (g + 1) * gs; ++e) {
            hs += sq[t * E + e];
            ys += y[t * E + e] * y[t * E + e];
          }
          EXPECT_NEAR(f.state_norm[(t * L + l) * S + g], std::sqrt(hs), 1e-4 * std::sqrt(hs)) << "l=" << l << " t=" << t;
          EXPECT_NEAR(f.y_norm[(t * L + l) * S + g], std::sqrt(ys), 1e-4 * std::sqrt(ys)) << "l=" << l << " t=" << t;
        }
      }
    }
    // Layer 0's residual is the embedding row.
    for (int64_t t = 0; t < T; ++t) {
      double s2 = 0;
      for (int64_t d = 0; d < c.d_model; ++d) s2 += std::pow(ck.model->weights.embedding[ids[t] * c.d_model + d], 2);
      EXPECT_NEAR(f.resid_norm[t * L], std::sqrt(s2), 1e-5 * std::sqrt(s2));
    }
  }
  // Groups of up to 64 channels for real shapes.
  EXPECT_EQ(probe_groups(Config::preset("mamba1-130m")), 1536 / 64);
  EXPECT_EQ(probe_groups(Config::preset("130m")), Config::preset("130m").n_heads);
}

TEST(Mamba1Backend, SnapshotsRestoreExactlyAndBadIdsLeaveTheState) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf_bias"));
  const std::vector<int32_t> ids = test::random_ids(16, ck.model->config.vocab_size, 4);
  auto b = make_cpu_backend(ck.model);
  const int64_t V = ck.model->config.vocab_size;
  std::vector<float> a(static_cast<size_t>(V)), c(static_cast<size_t>(V));
  b->forward(std::span<const int32_t>(ids.data(), 9), {}, a.data());
  const State snap = b->get_state();
  EXPECT_EQ(snap.n_tokens, 9);
  EXPECT_EQ(snap.bytes(), uint64_t(ck.model->config.n_layer * ck.model->config.state_floats_per_layer() * 4));
  b->forward(std::span<const int32_t>(ids.data() + 9, 7), {}, a.data());
  b->set_state(snap);
  ForwardOptions rec;
  rec.scan = ScanMode::Recurrent;
  b->forward(std::span<const int32_t>(ids.data() + 9, 7), rec, c.data());
  EXPECT_LT(test::rel_err(c.data(), a.data(), a.size()), 1e-6);
  // A state of another model is refused.
  EXPECT_THROW(b->set_state(State(test::tiny_config())), Error);
  EXPECT_EQ(test::bad_ids_problem(*b), "");
  // A session's snapshot continues exactly.
  Session s(make_cpu_backend(ck.model));
  GenerateOptions go;
  go.max_new_tokens = 6;
  go.sampling.temperature = 0.9f;
  go.sampling.seed = 4;
  go.stop_at_eos = false;
  s.generate(std::span<const int32_t>(ids.data(), 5), go);
  const State st = s.state();
  const auto tokens = s.tokens();
  const auto pending = s.pending();
  const Sampler sampler = *s.sampler();
  go.reseed = false;
  const auto first = s.generate({}, go).ids;
  s.restore(st, tokens, pending);
  s.set_sampler(sampler);
  EXPECT_EQ(s.generate({}, go).ids, first);
}

TEST(Mamba1Probes, StatisticsReadEachChannelsGroupAndTheWindowIsBounded) {
  ProbeFrames f;
  f.L = 1;
  f.H = 4;  // channels
  f.S = 2;  // groups of 2 channels
  f.count = 1;
  f.dt = {1, 2, 3, 4};
  f.decay = {0.5f, 0.5f, 0.5f, 0.5f};
  f.state_norm = {10, 20};
  f.y_norm = {1, 3};
  f.resid_norm = {7};
  EXPECT_EQ(layer_series(f, ProbeMetric::Dt, 3)[0], 4.f);
  EXPECT_EQ(layer_series(f, ProbeMetric::StateNorm, 0)[0], 10.f);
  EXPECT_EQ(layer_series(f, ProbeMetric::StateNorm, 3)[0], 20.f);
  EXPECT_EQ(layer_series(f, ProbeMetric::YNorm, kMeanOverHeads)[0], 2.f);
  EXPECT_EQ(layer_series(f, ProbeMetric::StateNorm, kMaxOverHeads)[0], 20.f);
  EXPECT_EQ(layer_series(f, ProbeMetric::Dt, kMeanOverHeads)[0], 2.5f);
  // A position of mamba-2.8b's probes is 1.3 MB: the default window keeps the recorder near 512 MiB.
  const Config big = Config::preset("mamba1-2.8b");
  const int64_t w = ProbeRecorder::default_window(big);
  EXPECT_GE(w, ProbeRecorder::kMinWindow);
  const int64_t per = ProbeRecorder::bytes_per_position(big.n_layer, big.n_heads, probe_groups(big));
  EXPECT_GT(per, 1'000'000);
  EXPECT_LE(w * per, std::max(ProbeRecorder::kDefaultBytes, ProbeRecorder::kMinWindow * per));
  EXPECT_EQ(ProbeRecorder::default_window(Config::preset("130m")),
            std::min(ProbeRecorder::kDefaultWindow, ProbeRecorder::kDefaultBytes / ProbeRecorder::bytes_per_position(24, 24, 24)));
}

TEST(Mamba1Backend, LongPromptsRunInSegmentsAndCancelRestoresTheState) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  const int64_t V = ck.model->config.vocab_size;
  const std::vector<int32_t> ids = test::random_ids(2500, V, 6);  // more than one segment of 2048
  auto a = make_cpu_backend(ck.model), b = make_cpu_backend(ck.model);
  std::vector<float> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  int64_t calls = 0, last_done = 0;
  ForwardOptions fo;
  fo.progress = [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 2500);
    EXPECT_GE(done, last_done);
    last_done = done;
  };
  a->forward(ids, fo, la.data());
  EXPECT_EQ(last_done, 2500);
  EXPECT_EQ(calls, 2 * ck.model->config.n_layer);
  ForwardOptions rec;
  rec.scan = ScanMode::Recurrent;
  b->forward(std::span<const int32_t>(ids.data(), 1000), rec, lb.data());
  b->forward(std::span<const int32_t>(ids.data() + 1000, 1500), rec, lb.data());
  EXPECT_LT(test::rel_err(la.data(), lb.data(), la.size()), 1e-4);
  // A cancelled prefill leaves the state as it found it.
  const State before = a->get_state();
  std::atomic<bool> stop{true};
  ForwardOptions cancel;
  cancel.cancel = &stop;
  EXPECT_THROW(a->forward(std::span<const int32_t>(ids.data(), 50), cancel, la.data()), Cancelled);
  const State after = a->get_state();
  EXPECT_EQ(after.n_tokens, before.n_tokens);
  EXPECT_EQ(after.layers[1].ssm, before.layers[1].ssm);
  EXPECT_EQ(after.layers[0].conv, before.layers[0].conv);
  ForwardOptions cap;
  LayerCapture capture;
  cap.capture = &capture;
  EXPECT_THROW(a->forward(std::span<const int32_t>(ids.data(), 5), cap, la.data()), Error);
}

TEST(Mamba1Backend, DtEditsActOnChannelsAndSnapshotsRoundTrip) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  const std::vector<int32_t> ids = test::random_ids(12, ck.model->config.vocab_size, 2);
  // Scaling one channel's dt changes that channel's recorded dt exactly, and the output.
  auto plain = make_cpu_backend(ck.model), edited = make_cpu_backend(ck.model);
  edited->set_dt_edits({DtEdit{1, 5, 0.25f, 0.f, INFINITY}});
  EXPECT_EQ(edited->dt_edits().size(), 1u);
  ProbeRecorder rp(ck.model->config, ck.model->weights), re(ck.model->config, ck.model->weights);
  ForwardOptions fp, fe;
  fp.probes = &rp;
  fe.probes = &re;
  const int64_t V = ck.model->config.vocab_size, E = ck.model->config.d_inner, L = ck.model->config.n_layer;
  std::vector<float> a(static_cast<size_t>(V)), b(static_cast<size_t>(V));
  plain->forward(ids, fp, a.data());
  edited->forward(ids, fe, b.data());
  const ProbeFrames p = rp.frames(0, 12), e = re.frames(0, 12);
  for (int64_t t = 0; t < 12; ++t) {
    EXPECT_FLOAT_EQ(e.dt[(t * L + 1) * E + 5], 0.25f * p.dt[(t * L + 1) * E + 5]);
    EXPECT_FLOAT_EQ(e.dt[(t * L + 1) * E + 6], p.dt[(t * L + 1) * E + 6]);
    EXPECT_FLOAT_EQ(e.dt[(t * L + 0) * E + 5], p.dt[(t * L + 0) * E + 5]);
  }
  EXPECT_GT(test::rel_err(b.data(), a.data(), a.size()), 1e-6);
  EXPECT_THROW(edited->set_dt_edits({DtEdit{0, E, 1.f, 0.f, INFINITY}}), Error);
  // A snapshot of a Mamba-1 session encodes, decodes and fits only its model.
  Session s(make_cpu_backend(ck.model));
  GenerateOptions go;
  go.max_new_tokens = 4;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  s.generate(ids, go);
  const Snapshot snap = s.snapshot();
  const Snapshot back = decode_snapshot(encode_snapshot(snap), "mem");
  EXPECT_EQ(back.state.layers[1].ssm, snap.state.layers[1].ssm);
  EXPECT_EQ(back.model_id, ck.model->identity());
  EXPECT_NO_THROW(check_snapshot_fits(back, *ck.model, "mem"));
  const Checkpoint other = load_checkpoint(fixture("mamba1_hf_bias"));
  EXPECT_THROW(check_snapshot_fits(back, *other.model, "mem"), Error);
  EXPECT_NE(other.model->identity(), ck.model->identity());
}

TEST(Mamba1Backend, TheSsdComparisonRefusesMamba1Clearly) {
  const Checkpoint ck = load_checkpoint(fixture("mamba1_hf"));
  try {
    ReferenceModel ref(ck.model);
    FAIL() << "the float64 SSD reference accepted a Mamba-1 model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Mamba-1"), std::string::npos) << e.what();
  }
  // GGUF stores A itself: A_log is recovered for Mamba-2's reference.
  const Checkpoint g = load_checkpoint(fixture("gguf_mamba2"));
  const auto& l = g.model->weights.layers[0];
  ASSERT_EQ(l.A_log.size(), l.A.size());
  for (size_t h = 0; h < l.A.size(); ++h) EXPECT_NEAR(-std::exp(l.A_log[h]), l.A[h], 1e-6 * std::abs(l.A[h]));
}
