#include "engine/compare.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "engine/clock.h"
#include "engine/reference.h"

namespace mamba {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Tokens per piece of the reference and measuring passes (rounded to whole chunks): bounds their buffers
// and is how often progress is reported and cancel polled.
constexpr int64_t kCompareSegment = 256;
constexpr double kRepeatBelow = 0.2;  // seconds: a timed prefill shorter than this is repeated

void check_cancel(const std::atomic<bool>* c) {
  if (c && c->load()) throw Cancelled("comparison cancelled");
}

void resize_diff(LayerDiff& d, int64_t L, int64_t T) {
  const size_t n = static_cast<size_t>(L * T);
  d.err.assign(n, static_cast<float>(kNaN));
  d.at.assign(n, 0);
  d.a.assign(n, kNaN);
  d.b.assign(n, kNaN);
  d.ssm_err.assign(static_cast<size_t>(L), kNaN);
  d.conv_err.assign(static_cast<size_t>(L), kNaN);
}

// ||a - b|| / ||b|| of one residual row, and the channel where |a - b| is largest.
template <class A, class B>
void diff_cell(const A* a, const B* b, int64_t D, LayerDiff& d, size_t idx) {
  double num = 0, den = 0, worst = -1;
  int64_t at = 0;
  for (int64_t i = 0; i < D; ++i) {
    const double x = double(a[i]), y = double(b[i]), e = x - y;
    num += e * e;
    den += y * y;
    if (std::abs(e) > worst) worst = std::abs(e), at = i;
  }
  d.err[idx] = static_cast<float>(std::sqrt(num / std::max(den, 1e-300)));
  d.at[idx] = static_cast<int32_t>(at);
  d.a[idx] = double(a[at]);
  d.b[idx] = double(b[at]);
}

template <class A, class B>
double rel_err(const A* a, const B* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = double(a[i]) - double(b[i]);
    num += e * e;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

template <class A, class B>
void state_diff(const std::vector<std::vector<A>>& ssm_a, const std::vector<std::vector<A>>& conv_a,
                const std::vector<std::vector<B>>& ssm_b, const std::vector<std::vector<B>>& conv_b, LayerDiff& d) {
  for (size_t l = 0; l < ssm_a.size(); ++l) {
    d.ssm_err[l] = rel_err(ssm_a[l].data(), ssm_b[l].data(), ssm_a[l].size());
    d.conv_err[l] = rel_err(conv_a[l].data(), conv_b[l].data(), conv_a[l].size());
  }
}

struct Split {
  std::vector<std::vector<float>> ssm, conv;
};
Split split(const State& s) {
  Split o;
  for (const auto& l : s.layers) {
    o.ssm.push_back(l.ssm);
    o.conv.push_back(l.conv);
  }
  return o;
}

// Logits of one position against float64: relative error, KL(p64 || p) in nats, arg max agreement.
void logit_stats(const float* l, const double* ref, int64_t V, double& err, double& kl, bool& top1) {
  err = rel_err(l, ref, static_cast<size_t>(V));
  const double mr = *std::max_element(ref, ref + V);
  const float ml = *std::max_element(l, l + V);
  double sr = 0, sl = 0;
  for (int64_t i = 0; i < V; ++i) {
    sr += std::exp(ref[i] - mr);
    sl += std::exp(double(l[i]) - ml);
  }
  const double lser = mr + std::log(sr), lsel = ml + std::log(sl);
  kl = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double lp = ref[i] - lser;
    kl += std::exp(lp) * (lp - (double(l[i]) - lsel));
  }
  kl = std::max(kl, 0.0);
  top1 = std::max_element(l, l + V) - l == std::max_element(ref, ref + V) - ref;
}

// One segment's residuals of every layer: (L, S, D) floats.
struct Capture final : ResidualSink {
  int64_t L = 0, S = 0, D = 0;
  int64_t rows = 0;  // rows received this segment
  std::vector<float> buf;
  void residual(int64_t layer, int64_t, int64_t T, int64_t d, const float* r) override {
    if (d != D || T > S || layer < 0 || layer >= L) return;
    std::memcpy(buf.data() + layer * S * D, r, sizeof(float) * size_t(T * D));
    rows += T;
  }
};

// When each layer finished (a timed CPU run: a clock read per layer, nothing else).
struct Stamps final : ResidualSink {
  std::vector<double> t;
  void residual(int64_t, int64_t, int64_t, int64_t, const float*) override { t.push_back(now_seconds()); }
};

// The sweep's error pass: each layer's output against the stored float64 one, as it arrives.
struct MaxErr final : ResidualSink {
  const double* ref = nullptr;  // (L, T, D)
  int64_t T = 0, D = 0, rows = 0;
  double max = 0;
  void residual(int64_t layer, int64_t first, int64_t n, int64_t d, const float* r) override {
    if (d != D || first + n > T) return;
    for (int64_t t = 0; t < n; ++t) {
      const double e = rel_err(r + t * D, ref + (layer * T + first + t) * D, size_t(D));
      max = std::max(max, std::isnan(e) ? std::numeric_limits<double>::infinity() : e);
    }
    rows += n;
  }
};

uint64_t default_memory_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return uint64_t(4) << 30;
  return uint64_t(pages) * uint64_t(page) / 4;
}

std::string mib(uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; }

// Progress over the planned work, weighted by FLOPs.
struct Progress {
  const CompareOptions& opt;
  double total = 0, done = 0;
  void step(double units, const std::string& what) {
    done += units;
    if (opt.progress) opt.progress(total > 0 ? std::min(1.0, done / total) : 1.0, what);
  }
};

}  // namespace

double LayerDiff::max_err(int64_t layer, int64_t T) const {
  double m = 0;
  for (int64_t t = 0; t < T; ++t) {
    const double e = err[size_t(layer * T + t)];
    if (std::isnan(e)) return kNaN;
    m = std::max(m, e);
  }
  return m;
}

double LayerDiff::mean_err(int64_t layer, int64_t T) const {
  double s = 0;
  for (int64_t t = 0; t < T; ++t) s += err[size_t(layer * T + t)];
  return T > 0 ? s / double(T) : kNaN;
}

double LayerDiff::max_state_err() const {
  double m = 0;
  for (size_t l = 0; l < ssm_err.size(); ++l) m = std::max({m, ssm_err[l], conv_err[l]});
  return m;
}

double RunReport::max_logit_err() const { return logit_err.empty() ? kNaN : *std::max_element(logit_err.begin(), logit_err.end()); }
double RunReport::kl_mean() const {
  double s = 0;
  for (double v : kl) s += v;
  return kl.empty() ? kNaN : s / double(kl.size());
}
double RunReport::top1_agree() const {
  double s = 0;
  for (uint8_t v : top1) s += v;
  return top1.empty() ? kNaN : s / double(top1.size());
}

const PairReport* CompareResult::pair(int a, int b) const {
  for (const auto& p : pairs)
    if (p.a == a && p.b == b) return &p;
  return nullptr;
}

int CompareResult::run_index(const std::string& name) const {
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i].spec.name == name) return static_cast<int>(i);
  return -1;
}

std::vector<CompareRun> default_compare_runs(const std::string& device, const std::vector<std::string>& dtypes) {
  std::vector<CompareRun> runs = {{"chunked", "cpu", "f32", ScanMode::Chunked}, {"recurrent", "cpu", "f32", ScanMode::Recurrent}};
  if (device == "cuda")
    for (const std::string& dt : dtypes.empty() ? std::vector<std::string>{"f32", "bf16", "f16"} : dtypes)
      runs.push_back({"cuda_" + dt, "cuda", dt, ScanMode::Chunked});
  return runs;
}

std::vector<int64_t> power_of_two_sweep(int64_t T) {
  std::vector<int64_t> q;
  for (int64_t v = 1; v < T; v *= 2) q.push_back(v);
  q.push_back(std::max<int64_t>(1, T));
  return q;
}

CompareResult compare(std::shared_ptr<const Model> model, std::span<const int32_t> ids, const CompareOptions& opt) {
  const Config& c = model->config;
  const int64_t T = static_cast<int64_t>(ids.size()), L = c.n_layer, D = c.d_model, V = c.vocab_size;
  if (T == 0) throw Error("compare: no tokens");
  for (int32_t id : ids)
    if (id < 0 || id >= V)
      throw Error("compare: token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
  const int64_t Q = opt.chunk_size > 0 ? opt.chunk_size : c.chunk_size;
  const std::vector<CompareRun> runs = opt.runs.empty() ? default_compare_runs("cpu", {}) : opt.runs;
  std::set<std::string> names;
  for (const auto& r : runs)
    if (r.name.empty() || !names.insert(r.name).second) throw Error("compare: every run needs a name of its own ('" + r.name + "')");
  for (int64_t q : opt.sweep)
    if (q < 1) throw Error("compare: sweep chunk sizes must be >= 1 (got " + std::to_string(q) + ")");
  if (Q > ForwardOptions::kMaxChunk)
    throw Error("compare: chunk size " + std::to_string(Q) + " is over the largest a backend takes (" +
                std::to_string(ForwardOptions::kMaxChunk) + ")");

  const uint64_t ref_bytes = uint64_t(8) * uint64_t(L) * uint64_t(T) * uint64_t(D);
  const uint64_t limit = opt.memory_limit ? opt.memory_limit : default_memory_limit();
  if (ref_bytes > limit)
    throw Error("compare: the float64 layer outputs of " + std::to_string(T) + " tokens (" + std::to_string(L) + " layers x " +
                std::to_string(D) + " channels) need " + mib(ref_bytes) + ", over the limit of " + mib(limit) + "; compare a shorter text");

  BackendMaker maker = opt.make_backend;
  if (!maker)
    maker = [](const std::string& device, std::shared_ptr<const Model> m, const BackendOptions& bo) -> std::unique_ptr<Backend> {
      if (device != "cpu") throw Error("compare: no '" + device + "' backend in this build");
      return make_cpu_backend(std::move(m), bo);
    };
  auto make = [&](const std::string& device, const std::string& dtype) {
    BackendOptions bo;
    bo.threads = opt.threads;
    bo.dtype = dtype;
    return maker(device, model, bo);
  };

  CompareResult res;
  res.ids.assign(ids.begin(), ids.end());
  res.L = L;
  res.T = T;
  res.D = D;
  res.chunk_size = Q;
  res.model_chunk_size = c.chunk_size;

  std::vector<int64_t> sweep;
  for (int64_t q : opt.sweep) sweep.push_back(std::min({q, T, ForwardOptions::kMaxChunk}));

  auto run_flops = [&](ScanMode scan, int64_t q, int64_t rows) { return double(forward_flops(c, T, scan, q, rows).total()); };
  Progress prog{opt};
  prog.total = 4 * run_flops(ScanMode::Recurrent, 0, 1);
  for (const auto& r : runs) prog.total += run_flops(r.scan, Q, T) + run_flops(r.scan, Q, 1);
  for (int64_t q : sweep) prog.total += 2 * run_flops(ScanMode::Chunked, q, 1);
  if (!sweep.empty()) prog.total += 2 * run_flops(ScanMode::Recurrent, 0, 1);

  // 1. The float64 reference (recurrent), every layer's output kept: (L, T, D).
  ReferenceModel ref(model);
  std::vector<double> ref_out(static_cast<size_t>(L * T * D));
  {
    ReferenceOptions ro;
    ro.residual = [&](int64_t l, int64_t first, int64_t n, const double* r) {
      std::copy_n(r, n * D, ref_out.data() + (l * T + first) * D);
    };
    std::vector<double> last(static_cast<size_t>(V));
    for (int64_t t0 = 0; t0 < T; t0 += kCompareSegment) {
      check_cancel(opt.cancel);
      const int64_t n = std::min(kCompareSegment, T - t0);
      const double a = now_seconds();
      ref.forward(ids.subspan(size_t(t0), size_t(n)), ro, t0 + n == T ? last.data() : nullptr);
      res.ref_seconds += now_seconds() - a;
      prog.step(4 * run_flops(ScanMode::Recurrent, 0, 1) * double(n) / double(T), "float64 reference");
    }
    res.ref_flops = forward_flops(c, T, ScanMode::Recurrent, 0, 1);
    res.ref_norm.resize(static_cast<size_t>(L * T));
    for (int64_t i = 0; i < L * T; ++i) {
      double s = 0;
      for (int64_t k = 0; k < D; ++k) s += ref_out[size_t(i * D + k)] * ref_out[size_t(i * D + k)];
      res.ref_norm[size_t(i)] = static_cast<float>(std::sqrt(s));
    }
  }

  // 2. Every run through the text in lockstep, a segment at a time (whole chunks, so the chunked runs
  //    split the text exactly as one prefill would): layer outputs, logits, then the final states.
  const size_t R = runs.size();
  std::vector<std::unique_ptr<Backend>> backends;
  for (const auto& r : runs) {
    check_cancel(opt.cancel);
    backends.push_back(make(r.device, r.dtype));
    RunReport rep;
    rep.spec = r;
    rep.backend = backends.back()->name();
    rep.chunk_size = r.scan == ScanMode::Chunked ? Q : 0;
    resize_diff(rep.vs_ref, L, T);
    rep.norm.assign(size_t(L * T), static_cast<float>(kNaN));
    rep.logit_err.assign(size_t(T), kNaN);
    rep.kl.assign(size_t(T), kNaN);
    rep.top1.assign(size_t(T), 0);
    res.runs.push_back(std::move(rep));
  }
  for (size_t a = 0; a < R; ++a)
    for (size_t b = a + 1; b < R; ++b) {
      PairReport p;
      p.a = int(a);
      p.b = int(b);
      resize_diff(p.diff, L, T);
      res.pairs.push_back(std::move(p));
    }
  {
    const int64_t S = std::min(T, std::max(Q, kCompareSegment / Q * Q));
    std::vector<Capture> cap(R);
    std::vector<std::vector<float>> logits(R, std::vector<float>(size_t(S + 1) * size_t(V)));
    std::vector<double> ref_logits(size_t(S + 1) * size_t(V));
    std::vector<bool> layers_ok(R, true);
    for (auto& k : cap) {
      k.L = L;
      k.S = S + 1;
      k.D = D;
      k.buf.resize(size_t(L * (S + 1) * D));
    }
    for (int64_t t0 = 0; t0 < T;) {
      int64_t n = std::min(S, T - t0);
      if (T - t0 - n == 1) ++n;  // no one-token tail: a chunked forward of one token runs the recurrence
      const auto seg = ids.subspan(size_t(t0), size_t(n));
      for (size_t r = 0; r < R; ++r) {
        check_cancel(opt.cancel);
        ForwardOptions fo;
        fo.scan = runs[r].scan;
        fo.chunk_size = Q;
        fo.all_logits = true;
        fo.residuals = &cap[r];
        fo.cancel = opt.cancel;
        cap[r].rows = 0;
        backends[r]->forward(seg, fo, logits[r].data());
        if (cap[r].rows != L * n) layers_ok[r] = false;
        prog.step(run_flops(runs[r].scan, Q, T) * double(n) / double(T), "measuring " + runs[r].name);
      }
      ref.logits_of(ref_out.data() + ((L - 1) * T + t0) * D, n, ref_logits.data());
      for (size_t r = 0; r < R; ++r) {
        RunReport& rep = res.runs[r];
        for (int64_t t = 0; t < n; ++t) {
          double err, kl;
          bool top1;
          logit_stats(logits[r].data() + t * V, ref_logits.data() + t * V, V, err, kl, top1);
          rep.logit_err[size_t(t0 + t)] = err;
          rep.kl[size_t(t0 + t)] = kl;
          rep.top1[size_t(t0 + t)] = top1;
        }
        if (!layers_ok[r]) continue;
        for (int64_t l = 0; l < L; ++l)
          for (int64_t t = 0; t < n; ++t) {
            const float* row = cap[r].buf.data() + (l * cap[r].S + t) * D;
            const size_t idx = size_t(l * T + t0 + t);
            diff_cell(row, ref_out.data() + idx * D, D, rep.vs_ref, idx);
            double s = 0;
            for (int64_t k = 0; k < D; ++k) s += double(row[k]) * row[k];
            rep.norm[idx] = static_cast<float>(std::sqrt(s));
          }
      }
      for (auto& p : res.pairs) {
        if (!layers_ok[size_t(p.a)] || !layers_ok[size_t(p.b)]) continue;
        const Capture &ca = cap[size_t(p.a)], &cb = cap[size_t(p.b)];
        for (int64_t l = 0; l < L; ++l)
          for (int64_t t = 0; t < n; ++t)
            diff_cell(ca.buf.data() + (l * ca.S + t) * D, cb.buf.data() + (l * cb.S + t) * D, D, p.diff, size_t(l * T + t0 + t));
      }
      t0 += n;
    }
    const ReferenceState& rs = ref.state();
    std::vector<Split> states;
    for (size_t r = 0; r < R; ++r) {
      states.push_back(split(backends[r]->get_state()));
      state_diff(states[r].ssm, states[r].conv, rs.ssm, rs.conv, res.runs[r].vs_ref);
    }
    for (auto& p : res.pairs)
      state_diff(states[size_t(p.a)].ssm, states[size_t(p.a)].conv, states[size_t(p.b)].ssm, states[size_t(p.b)].conv, p.diff);
  }

  // 3. Each run timed as a prefill of the whole text (last logits only), on its warmed-up backend. On the
  //    CPU a clock read per layer splits the time by layer.
  auto timed = [&](Backend& b, ScanMode scan, int64_t q, bool per_layer, std::vector<double>* layer_seconds) {
    double best = std::numeric_limits<double>::infinity();
    const double start = now_seconds();
    for (int rep = 0; rep < std::max(1, opt.max_repeats); ++rep) {
      if (rep > 0 && (best >= kRepeatBelow || now_seconds() - start > 1.0)) break;
      check_cancel(opt.cancel);
      b.reset_state();
      Stamps stamps;
      stamps.t.reserve(size_t(L));
      ForwardOptions fo;
      fo.scan = scan;
      fo.chunk_size = q;
      fo.residuals = per_layer ? &stamps : nullptr;
      fo.cancel = opt.cancel;
      const double a = now_seconds();
      b.forward(ids, fo, nullptr);
      const double z = now_seconds();
      if (z - a < best) {
        best = z - a;
        // the CPU backend runs a long text in segments: each layer's time is summed over them
        if (layer_seconds && !stamps.t.empty() && stamps.t.size() % size_t(L) == 0) {
          layer_seconds->assign(size_t(L + 1), 0.0);
          double prev = a;
          for (size_t i = 0; i < stamps.t.size(); ++i) {
            // (layer 0 of each segment includes that segment's embedding lookup)
            (*layer_seconds)[i % size_t(L)] += stamps.t[i] - prev;
            prev = stamps.t[i];
          }
          (*layer_seconds)[size_t(L)] = z - prev;
        }
      }
    }
    return best;
  };
  for (size_t r = 0; r < R; ++r) {
    RunReport& rep = res.runs[r];
    rep.seconds = timed(*backends[r], runs[r].scan, Q, runs[r].device == "cpu", &rep.layer_seconds);
    rep.flops = forward_flops(c, T, runs[r].scan, Q, 1);
    prog.step(run_flops(runs[r].scan, Q, 1), "timing " + runs[r].name);
  }
  backends.clear();

  // 4. The sweep: per chunk size a timed prefill and an error pass, then the recurrent scan beside them.
  if (!sweep.empty()) {
    auto b = make(opt.sweep_device, opt.sweep_dtype);
    res.sweep_backend = b->name();
    const ReferenceState& rs = ref.state();
    auto point = [&](ScanMode scan, int64_t q) {
      SweepPoint p;
      p.chunk_size = scan == ScanMode::Chunked ? q : 0;
      p.seconds = timed(*b, scan, q, false, nullptr);
      p.flops = forward_flops(c, T, scan, q, 1);
      check_cancel(opt.cancel);
      b->reset_state();
      MaxErr me;
      me.ref = ref_out.data();
      me.T = T;
      me.D = D;
      ForwardOptions fo;
      fo.scan = scan;
      fo.chunk_size = q;
      fo.residuals = &me;
      fo.cancel = opt.cancel;
      b->forward(ids, fo, nullptr);
      p.max_rel_err = me.rows == L * T ? me.max : kNaN;
      const State s = b->get_state();
      for (int64_t l = 0; l < L; ++l)
        p.state_rel_err =
            std::max(p.state_rel_err, rel_err(s.layers[size_t(l)].ssm.data(), rs.ssm[size_t(l)].data(), rs.ssm[size_t(l)].size()));
      const std::string what = scan == ScanMode::Chunked ? "sweep Q = " + std::to_string(q) : "sweep: recurrent";
      prog.step(2 * run_flops(scan, q, 1), what);
      return p;
    };
    for (int64_t q : sweep) res.sweep.push_back(point(ScanMode::Chunked, q));
    res.sweep_recurrent = point(ScanMode::Recurrent, 0);
  }
  return res;
}

nlohmann::json compare_json(const CompareResult& r) {
  using nlohmann::json;
  auto num = [](double v) -> json { return std::isfinite(v) ? json(v) : json(nullptr); };
  json j;
  j["tokens"] = r.T;
  j["chunk_size"] = r.chunk_size;
  j["model_chunk_size"] = r.model_chunk_size;
  json runs = json::array();
  for (const auto& rr : r.runs)
    runs.push_back({{"name", rr.spec.name},
                    {"device", rr.spec.device},
                    {"dtype", rr.spec.dtype},
                    {"scan", scan_name(rr.spec.scan)},
                    {"chunk_size", rr.chunk_size},
                    {"backend", rr.backend}});
  j["runs"] = runs;

  json layers = json::array();
  for (int64_t l = 0; l < r.L; ++l) {
    json e;
    e["layer"] = l;
    for (const auto& rr : r.runs) e[rr.spec.name + "_vs_f64"] = num(rr.vs_ref.max_err(l, r.T));
    for (const auto& p : r.pairs) e[r.runs[size_t(p.a)].spec.name + "_vs_" + r.runs[size_t(p.b)].spec.name] = num(p.diff.max_err(l, r.T));
    layers.push_back(e);
  }
  j["layers"] = layers;

  json state, ssm, conv;
  auto put_state = [&](const std::string& key, const LayerDiff& d) {
    state[key] = num(d.max_state_err());
    ssm[key] = num(d.ssm_err.empty() ? 0 : *std::max_element(d.ssm_err.begin(), d.ssm_err.end()));
    conv[key] = num(d.conv_err.empty() ? 0 : *std::max_element(d.conv_err.begin(), d.conv_err.end()));
  };
  for (const auto& rr : r.runs) put_state(rr.spec.name + "_vs_f64", rr.vs_ref);
  for (const auto& p : r.pairs) put_state(r.runs[size_t(p.a)].spec.name + "_vs_" + r.runs[size_t(p.b)].spec.name, p.diff);
  state["ssm"] = ssm;
  state["conv"] = conv;
  j["state"] = state;

  json logits, timing, flops, layer_time;
  timing["f64"] = r.ref_seconds;
  flops["f64"] = r.ref_flops.total();
  for (const auto& rr : r.runs) {
    logits[rr.spec.name] = {{"max_rel_err", num(rr.max_logit_err())}, {"kl_mean", num(rr.kl_mean())}, {"top1_agree", num(rr.top1_agree())}};
    timing[rr.spec.name] = rr.seconds;
    flops[rr.spec.name] = rr.flops.total();
    if (!rr.layer_seconds.empty()) layer_time[rr.spec.name] = rr.layer_seconds;
  }
  j["logits"] = logits;
  j["timing"] = timing;
  if (!layer_time.empty()) j["timing_layers"] = layer_time;
  j["flops"] = flops;

  auto point = [&](const SweepPoint& p) {
    json e = {
        {"seconds", p.seconds}, {"flops", p.flops.total()}, {"max_rel_err", num(p.max_rel_err)}, {"state_rel_err", num(p.state_rel_err)}};
    if (p.chunk_size > 0) e["chunk_size"] = p.chunk_size;
    return e;
  };
  json sweep = json::array();
  for (const auto& p : r.sweep) sweep.push_back(point(p));
  j["sweep"] = sweep;
  if (!r.sweep.empty()) {
    j["sweep_recurrent"] = point(r.sweep_recurrent);
    j["sweep_backend"] = r.sweep_backend;
  }
  return j;
}

}  // namespace mamba
