// mamba-cuda-profile (lab build): where the GPU time goes, on a random model of a preset shape.
//   mamba-cuda-profile --config 130m [--dtype bf16] [--prompt-len 8192] [--steps 128] [--variants ...]
// Prints the prefill and decode breakdowns by op (event timer, ops serialised), then decode variants
// (graph replay with and without PDL and next-layer L2 prefetch, the %globaltimer decode timeline, device
// sampling, decode with probes) against the bandwidth floor. Variants are lists of NAME=VALUE settings, the
// lab switches of kernels/lab/cuda_backend_lab.cpp (MAMBA_CUDA_LAYER_FUSED=0: the three-kernel decode).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/error.h"
#include "engine/probes.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_backend_impl.h"
#include "kernels/lab/profiler.h"

using namespace mamba;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void print_breakdown(const char* title, const OpProfiler& prof, double divide_by) {
  std::printf("\n%s\n", title);
  double total = 0;
  for (const auto& [k, v] : prof.totals_ms()) total += v;
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [k, v] : prof.totals_ms()) rows.emplace_back(v, k);
  std::sort(rows.rbegin(), rows.rend());
  for (const auto& [v, k] : rows)
    std::printf("  %-52s %10.4f ms %6.1f%%  (x%lld)\n", k.c_str(), v / divide_by, 100.0 * v / total,
                static_cast<long long>(prof.counts().at(k) / std::max<int64_t>(1, int64_t(divide_by))));
  std::printf("  %-52s %10.4f ms\n", "total (ops timed one by one)", total / divide_by);
}

// The decode timeline from %globaltimer stamps (CudaBackend::set_decode_trace), averaged over `reps`
// steps, per kernel class, relative to the end of the kernel before it: when its first block started,
// when its blocks got past the PDL wait, and when its last block finished (its share of the critical path).
void print_timeline(CudaBackend& b, int64_t L, int reps) {
  constexpr int S = kTraceSlots, J = 8;
  b.set_decode_trace(true);
  b.decode_trace_step();  // capture + warm-up
  const bool fused = b.decode_fused();
  const char* names3[] = {"in_proj gemv", "ssm step", "out_proj gemv", "lm head gemv"};
  const char* names1[] = {"layer kernel", "finish", "-", "lm head gemv"};
  const char* const* names = fused ? names1 : names3;
  double acc[4][J] = {}, n[4][J] = {}, total = 0;
  for (int r = 0; r < reps; ++r) {
    const std::vector<uint64_t> t = b.decode_trace_step();
    const int64_t K = int64_t(t.size() / S);
    total += double(t[S * (K - 1) + 3] - t[0]) * 1e-3;
    double prev_end = double(t[3]);
    for (int64_t k = 1; k < K; ++k) {
      if (t[S * k + 3] == 0) continue;  // a kernel left out (MAMBA_CUDA_DECODE_SKIP) or not in this decode
      const int cls = k == K - 1 ? 3 : int(k % 3);
      for (int j = 0; j < J; ++j)
        if (t[S * k + j] != 0) acc[cls][j] += (double(t[S * k + j]) - prev_end) * 1e-3, n[cls][j] += 1;
      prev_end = double(t[S * k + 3]);
    }
  }
  b.set_decode_trace(false);
  auto cell = [&](int c, int j) {
    if (n[c][j] > 0) std::printf(" %12.2f", acc[c][j] / n[c][j]);
    else std::printf(" %12s", "-");
  };
  std::printf("  decode timeline (%%globaltimer, us after the previous kernel's last block ended; mean of %d steps):\n", reps);
  if (fused) std::printf("    (layer kernel: [5] = last block in, [6] = B and C exchanged in the cluster, [7] = gated y exchanged)\n");
  std::printf("    %-14s %12s %12s %12s %12s %12s %12s %12s %12s\n", "kernel", "1st in", "1st waited", "last waited", "inputs read",
              fused ? "[5]" : "weights in", fused ? "[6]" : "-", fused ? "[7]" : "-", "last done");
  for (int c = 0; c < 4; ++c) {
    if (fused && c == 2) continue;
    std::printf("    %-14s", names[c]);
    for (int j : {0, 1, 2, 4, 5, 6, 7, 3}) cell(c, j);
    std::printf("\n");
  }
  std::printf("    first kernel start to LM head end: %.1f us (%lld kernels)\n", total / reps,
              static_cast<long long>(fused ? L + 2 : 3 * L + 1));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t e; (e = s.find(sep, b)) != std::string::npos; b = e + 1) out.push_back(s.substr(b, e - b));
  out.push_back(s.substr(b));
  return out;
}

// A variant's NAME=VALUE settings: lab switches go to the environment (read when a graph is captured),
// MAMBA_CUDA_LAYER_FUSED=0 selects the three-kernel decode, LEN=n is returned as the chain length. Returns the
// variables set, for end_variant.
std::vector<std::string> begin_variant(CudaBackend& b, const std::string& v, int* len = nullptr) {
  std::vector<std::string> names;
  for (const std::string& kv : split(v, ',')) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = kv.substr(0, eq), val = kv.substr(eq + 1);
    if (k == "LEN") {
      if (len) *len = std::atoi(val.c_str());
    } else if (k == "MAMBA_CUDA_LAYER_FUSED") {
      b.set_decode_fused(val != "0");
    } else {
      names.push_back(k);
      setenv(k.c_str(), val.c_str(), 1);
    }
  }
  return names;
}

void end_variant(CudaBackend& b, const std::vector<std::string>& names) {
  for (const std::string& n : names) unsetenv(n.c_str());
  b.set_decode_fused(true);
}

// Per-position probes arrive here and are dropped (decode speed with probes on).
struct NullSink final : ProbeSink {
  int64_t layers = 0;
  void layer(const LayerProbe&) override { ++layers; }
};

double step_wall_ms(CudaBackend& b, int steps, std::vector<float>& logits, bool sample, bool greedy = false) {
  SamplerParams sp;
  sp.temperature = greedy ? 0.f : 0.8f;
  sp.top_p = greedy ? 1.f : 0.9f;
  int32_t tok = 1;
  b.step(tok, logits.data());  // warm-up (captures the graph)
  if (sample) b.step_sample(tok, sp, 0.5);
  const double t0 = now_s();
  for (int i = 0; i < steps; ++i) {
    if (sample) tok = b.step_sample(tok, sp, 0.37).value();
    else {
      b.step(tok, logits.data());
      tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
  }
  return (now_s() - t0) * 1e3 / steps;
}

// Wall time per token of decoding through chains of `len` steps on the device (step_sample_chain); 0 when
// the backend has no chains for this model.
double chain_wall_ms(CudaBackend& b, int len, int steps, bool greedy) {
  b.set_decode_chain(len);
  if (b.decode_chain() == 0) return 0.0;
  SamplerParams sp;
  sp.temperature = greedy ? 0.f : 0.8f;
  sp.top_p = greedy ? 1.f : 0.9f;
  const std::vector<double> u(static_cast<size_t>(len), 0.37);
  int32_t tok = b.step_sample_chain(1, sp, u, {}).back();  // warm-up (captures the chain graph)
  const int rounds = std::max(1, steps / len);
  const double t0 = now_s();
  for (int r = 0; r < rounds; ++r) tok = b.step_sample_chain(tok, sp, u, {}).back();
  return (now_s() - t0) * 1e3 / (double(rounds) * len);
}

// Where the one-kernel decode's blocks ran (CudaBackend::decode_records): per layer, averaged over layers
// 1..L-1 of one step starting at `base`: distinct SMs, SMs holding two blocks of the layer, SMs shared with
// the next layer, and distinct SMs per cluster.
void print_placement(const std::vector<uint32_t>& rec, int64_t base, int64_t L, int cs, int nc, const char* what) {
  const int64_t blocks = int64_t(cs) * nc, stride = CudaBackend::kRecordStride;
  if (rec.size() < size_t((base + L * stride) * kDecodeBlockRec)) return;
  auto smid = [&](size_t i) { return rec[i * kDecodeBlockRec]; };
  double distinct = 0, doubled = 0, shared_next = 0, per_cluster = 0;
  for (int64_t l = 1; l < L; ++l) {
    std::map<uint32_t, int> n, next;
    for (int64_t b = 0; b < blocks; ++b) n[smid(size_t(base + l * stride + b))]++;
    if (l + 1 < L)
      for (int64_t b = 0; b < blocks; ++b) next[smid(size_t(base + (l + 1) * stride + b))]++;
    distinct += double(n.size());
    for (const auto& [sm, k] : n) {
      doubled += k > 1;
      shared_next += next.count(sm) > 0;
    }
    for (int c = 0; c < nc; ++c) {
      std::map<uint32_t, int> m;
      for (int b = 0; b < cs; ++b) m[smid(size_t(base + l * stride + c * cs + b))]++;
      per_cluster += double(m.size()) / nc;
    }
  }
  const double k = double(L - 1);
  std::printf(
      "  placement (%s, %lld blocks per layer, mean over layers 1..%lld): %.1f SMs, %.1f with two blocks of the layer, %.1f shared with "
      "the next layer; %.1f SMs per %d-block cluster\n",
      what, static_cast<long long>(blocks), static_cast<long long>(L - 1), distinct / k, doubled / k, shared_next / std::max(1.0, k - 1),
      per_cluster / k, cs);
}

// The one-kernel decode's phases (DecodeClock records of decode_records), over layers 1..L-1 of steps
// [s0, s1): per phase the mean and 90th percentile over blocks of its own time, and the mean over layers of
// the last block's time since the wait (its critical path); the spread of the blocks' wait times; the
// time blocks sat resident before the wait.
void print_phases(const std::vector<uint32_t>& rec, int s0, int s1, int64_t L, int blocks, const char* what) {
  const int64_t stride = CudaBackend::kRecordStride;
  if (rec.size() < size_t(s1 * L * stride * kDecodeBlockRec)) return;
  int khz = 0, dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
  const double us_per_clk = 1e3 / double(std::max(khz, 1));
  const char* names[] = {"",          "wait (from start)", "norm_w staged",   "own inputs",   "block sum",
                         "x to regs", "in_proj staged",    "cluster in",      "in_proj dots", "B/C arrived",
                         "conv",      "state, y",          "out_proj staged", "y arrived",    "out dots"};
  constexpr int W = kClkEnd + 1;
  std::vector<std::vector<double>> own(W);
  std::vector<double> crit(W, 0.0), spread;
  double n = 0;
  for (int st = s0; st < s1; ++st)
    for (int64_t l = 1; l < L; ++l) {
      const uint32_t* r0 = &rec[size_t((st * L + l) * stride * kDecodeBlockRec)];
      std::vector<double> mx(W, 0.0);
      uint32_t wmin = ~0u, wmax = 0;
      for (int b = 0; b < blocks; ++b) {
        const uint32_t* r = r0 + b * kDecodeBlockRec;
        if (r[kClkEnd] == 0) continue;  // a halted step
        own[kClkWaited].push_back(r[kClkWaited] * us_per_clk);
        for (int w = kClkWaited + 1; w < W; ++w) {
          own[w].push_back(double(int32_t(r[w] - r[w - 1])) * us_per_clk);
          mx[w] = std::max(mx[w], double(int32_t(r[w] - r[kClkWaited])) * us_per_clk);
        }
        wmin = std::min(wmin, r[kClkWait]);
        wmax = std::max(wmax, r[kClkWait]);
      }
      if (wmax == 0) continue;
      for (int w = 0; w < W; ++w) crit[w] += mx[w];
      spread.push_back(double(int32_t(wmax - wmin)) * 1e-3);
      n += 1;
    }
  if (n == 0) return;
  auto pct = [](std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[size_t(q * double(v.size() - 1))];
  };
  auto mean = [](const std::vector<double>& v) {
    double a = 0;
    for (double x : v) a += x;
    return v.empty() ? 0.0 : a / double(v.size());
  };
  std::printf("  phases (%s; us at %d MHz; layers 1..%lld): blocks' wait times spread %.2f us (mean), %.2f (p90)\n", what, khz / 1000,
              static_cast<long long>(L - 1), mean(spread), pct(spread, 0.9));
  std::printf("    %-18s %8s %8s %8s %12s\n", "phase", "mean", "p50", "p90", "last block");
  for (int w = kClkWaited; w < W; ++w)
    std::printf("    %-18s %8.3f %8.3f %8.3f %12.3f\n", names[w], mean(own[w]), pct(own[w], 0.5), pct(own[w], 0.9),
                w == kClkWaited ? 0.0 : crit[w] / n);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"mamba-cuda-profile: where the GPU time goes, on a random model of a preset shape (lab build)"};
    std::string cfg_name = "130m", variants_arg, chain_variants_arg = "LEN=32";
    BackendOptions bo;
    bo.dtype = "bf16";
    int64_t T = 8192;
    int steps = 128;
    bool timelines = false;
    app.add_option("--config", cfg_name, "preset shape (130m, 370m, 780m, 1.3b, 2.7b)")->capture_default_str();
    app.add_option("--dtype", bo.dtype, "weight dtype: bf16, f16 or f32")->capture_default_str();
    app.add_option("--prompt-len", T, "prefill tokens")->capture_default_str()->check(CLI::Range(int64_t(16), int64_t(1) << 20));
    app.add_option("--steps", steps, "decode steps per measurement")->capture_default_str()->check(CLI::Range(4, 1 << 16));
    app.add_option("--variants", variants_arg,
                   "decode variants replayed as graphs: ';'-separated lists of ','-separated NAME=VALUE lab switches "
                   "(default: the layer kernel's trigger points, its prologue left out, the three-kernel decode with and without "
                   "prefetch)");
    app.add_option("--chain-variants", chain_variants_arg, "decode chain variants for the timeline, as --variants; LEN=n the length")
        ->capture_default_str();
    app.add_flag("--timelines", timelines, "print each variant's timeline too");
    CLI11_PARSE(app, argc, argv);
    std::string why;
    if (!cuda_device_available(&why)) {
      std::fprintf(stderr, "no CUDA device: %s\n", why.c_str());
      return 2;
    }
    auto model = Model::random(Config::preset(cfg_name), 1);
    CudaBackend b(model, bo);
    const Config& c = model->config;
    const CudaCeilings ceil = cuda_measure_ceilings(bo);
    const double floor_ms = double(b.weight_bytes()) / (ceil.read_bandwidth_gbs * 1e9) * 1e3;
    std::printf("== %s, %s, %s ==\n", cfg_name.c_str(), b.name().c_str(), ceil.device_name.c_str());
    std::printf("bandwidth %.0f GB/s (1 GiB D2D copy, read+write); %s: %.0f GFLOP/s\n", ceil.read_bandwidth_gbs, ceil.matmul_what.c_str(),
                ceil.matmul_gflops);
    std::printf("weight bytes per token %.1f MB -> decode floor %.4f ms/token (%.0f tok/s)\n", double(b.weight_bytes()) / 1e6, floor_ms,
                1e3 / floor_ms);

    std::mt19937 rng(1234);
    std::vector<int32_t> prompt(static_cast<size_t>(T));
    for (auto& id : prompt) id = static_cast<int32_t>(rng() % 50277);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    ForwardOptions fo;

    // prefill: plain timing (median of 3), then the per-op breakdown
    std::vector<double> pt;
    for (int r = 0; r < 4; ++r) {
      b.reset_state();
      const double t0 = now_s();
      b.forward(prompt, fo, logits.data());
      if (r) pt.push_back(now_s() - t0);
    }
    std::sort(pt.begin(), pt.end());
    const double layer_params = double(c.n_params() - c.vocab_size * c.d_model);
    const double flops_tok = 2.0 * layer_params + 2.0 * double(c.vocab_size * c.d_model) / double(T);
    std::printf("\nprefill T=%lld: %.2f ms = %.0f tok/s; projection GEMM floor at the measured rate %.2f ms (%.0f%% of it)\n",
                static_cast<long long>(T), pt[1] * 1e3, double(T) / pt[1], flops_tok * double(T) / (ceil.matmul_gflops * 1e9) * 1e3,
                100.0 * (flops_tok * double(T) / (ceil.matmul_gflops * 1e9)) / pt[1]);
    OpProfiler prof;
    b.reset_state();
    lab::attach(&prof);
    b.forward(prompt, fo, logits.data());
    prof.collect();
    lab::attach(nullptr);
    print_breakdown("prefill breakdown (per forward):", prof, 1.0);

    // decode
    std::vector<int32_t> small(prompt.begin(), prompt.begin() + std::min<int64_t>(T, 16));
    auto fresh = [&] {
      b.reset_state();
      b.forward(small, fo, logits.data());
    };
    std::printf("\ndecode (ms/token; floor %.4f):\n", floor_ms);
    std::printf("  one kernel per layer: %s (%s)\n", b.decode_fused() ? "on" : "off", b.decode_layer_plan().why.c_str());
    fresh();
    const bool pdl0 = b.pdl();
    const double wall = step_wall_ms(b, steps, logits, false);
    std::printf("  step() wall, graph%s, logits to host       %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n", pdl0 ? "+PDL" : "", wall,
                1e3 / wall, 100.0 * floor_ms / wall);
    fresh();
    const double wall_s = step_wall_ms(b, steps, logits, true);
    std::printf("  step_sample() wall, graph%s, id to host    %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n", pdl0 ? "+PDL" : "", wall_s,
                1e3 / wall_s, 100.0 * floor_ms / wall_s);
    fresh();
    const double wall_g = step_wall_ms(b, steps, logits, true, true);
    std::printf("  step_sample() wall, greedy (as the bench)    %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n", wall_g, 1e3 / wall_g,
                100.0 * floor_ms / wall_g);
    // Chains of steps on the device (what generation uses where the model takes the one-kernel decode).
    {
      const int len0 = b.decode_chain();
      for (const char* spec : {"8", "16", "32", "64", "32:sampled"}) {
        const int len = std::atoi(spec);
        const bool sampled = std::strstr(spec, "sampled") != nullptr;
        fresh();
        const double ms = chain_wall_ms(b, len, std::max(steps, 4 * len), !sampled);
        if (ms == 0.0) {
          std::printf("  step_sample_chain(): not available for this model\n");
          break;
        }
        std::printf("  step_sample_chain() wall, %-11s, chain %-2d     %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n",
                    sampled ? "T=0.8 p=0.9" : "greedy", len, ms, 1e3 / ms, 100.0 * floor_ms / ms);
      }
      // The chain's timeline: per kernel, stamps relative to the end of the kernel before it (a step's
      // first layer: the previous step's sampler), averaged over the chain's steps after the first.
      // MAMBA_PROFILE_CHAIN_VARIANTS: variants as MAMBA_PROFILE_VARIANTS; LEN=n sets the chain length.
      for (const std::string& v : split(chain_variants_arg, ';')) {
        int len = 32;
        const std::vector<std::string> names = begin_variant(b, v, &len);
        b.set_decode_chain(len);
        if (b.decode_chain() != len || len < 2) {
          end_variant(b, names);
          continue;
        }
        constexpr int S = kTraceSlots;
        const int64_t per = c.n_layer + 3;
        SamplerParams gp;
        gp.temperature = 0.f;
        const std::vector<double> u(size_t(len), 0.5);
        fresh();
        const int rounds = std::max(2, 256 / len);
        int32_t tok = b.step_sample_chain(1, gp, u, {}).back();  // capture
        const double t0 = now_s();
        for (int r = 0; r < rounds; ++r) tok = b.step_sample_chain(tok, gp, u, {}).back();
        const double ms = (now_s() - t0) * 1e3 / (double(rounds) * len);
        b.set_chain_trace(true);
        tok = b.step_sample_chain(tok, gp, u, {}).back();  // capture, first run
        b.chain_trace();                                   // (and blank)
        tok = b.step_sample_chain(tok, gp, u, {}).back();
        const std::vector<uint64_t> t = b.chain_trace();
        const std::vector<uint32_t> sm = b.decode_records();
        b.set_chain_trace(false);
        print_placement(sm, (len / 2) * c.n_layer * CudaBackend::kRecordStride, c.n_layer, b.decode_layer_plan().cs,
                        b.decode_layer_plan().nc, ("chain " + v + ", its middle step").c_str());
        print_phases(sm, 1, len, c.n_layer, b.decode_layer_plan().cs * b.decode_layer_plan().nc, ("chain " + v + ", steps 1..").c_str());
        end_variant(b, names);
        const char* rows[] = {"layer 0", "layers 1..L-1", "finish", "lm head gemv", "sampler"};
        // A kernel's end stamp, or 0 when the chain has no such kernel (the greedy chain: no finish, no sampler).
        auto end_of = [&](int64_t kernel) { return t[size_t(S * kernel + 3)]; };
        auto last_end = [&](int64_t kernel) {  // the end of the last kernel before `kernel` that ran
          for (int64_t q = kernel - 1; q >= 0; --q)
            if (end_of(q) != 0) return double(end_of(q));
          return 0.0;
        };
        double acc[5][S] = {}, cnt[5] = {}, step_us = 0;
        for (int k = 1; k < len; ++k) {
          for (int64_t i = 0; i < per; ++i) {
            const int64_t kernel = k * per + i;
            if (end_of(kernel) == 0) continue;
            const uint64_t* cur = &t[size_t(S * kernel)];
            const double prev = last_end(kernel);
            const int r = i == 0 ? 0 : i < c.n_layer ? 1 : int(i - c.n_layer + 2);
            for (int j = 0; j < S; ++j)
              if (cur[j] != 0 && cur[j] != ~uint64_t(0)) acc[r][j] += (double(cur[j]) - prev) * 1e-3;
            cnt[r] += 1;
          }
          step_us += (last_end((k + 1) * per) - last_end(k * per)) * 1e-3;
        }
        std::printf(
            "  chain %s: %.4f ms per token untraced (%.0f tok/s); timeline (greedy, us after the previous kernel's end, mean over steps "
            "1..%d):\n",
            v.c_str(), ms, 1e3 / ms, len - 1);
        std::printf("    %-16s %10s %10s %10s %10s %10s %10s %10s %10s\n", "kernel", "1st in", "1st waited", "last waited", "inputs", "[5]",
                    "[6]", "[7]", "last done");
        for (int r = 0; r < 5; ++r) {
          std::printf("    %-16s", rows[r]);
          for (int j : {0, 1, 2, 4, 5, 6, 7, 3}) std::printf(" %10.2f", acc[r][j] / std::max(1.0, cnt[r]));
          std::printf("\n");
        }
        std::printf("    per step traced (last kernel end to last kernel end): %.1f us\n", step_us / (len - 1));
      }
      b.set_decode_chain(len0);
    }
    // What generation in the app asks of a chain: the ids' probabilities and alternatives (greedy and T = 0.8),
    // and the probes, against the chain alone.
    if (b.decode_chain() > 1) {
      const int len = b.decode_chain();
      NullSink sink;
      std::vector<SampleInfo> infos;
      const std::vector<double> u(static_cast<size_t>(len), 0.37);
      for (float temp : {0.f, 0.8f})
        for (int what = 0; what < 4; ++what) {
          const bool report = what & 1, probes = what & 2;
          SamplerParams sp;
          sp.temperature = temp;
          fresh();
          auto run = [&](int32_t tok) {
            return b.step_sample_chain(tok, sp, u, {}, report ? &infos : nullptr, 10, probes ? &sink : nullptr).back();
          };
          int32_t tok = run(1);  // capture
          const int rounds = std::max(2, 4 * steps / len);
          const double t0 = now_s();
          for (int r = 0; r < rounds; ++r) tok = run(tok);
          const double ms = (now_s() - t0) * 1e3 / (double(rounds) * len);
          std::printf("  chain %d, %-11s %-26s %8.4f ms  %8.0f tok/s\n", len, temp == 0.f ? "greedy" : "T=0.8",
                      report && probes ? "+ prob, top 10, probes"
                      : report         ? "+ prob, top 10"
                      : probes         ? "+ probes"
                                       : "",
                      ms, 1e3 / ms);
        }
    }
    // Decode variants (environment switches read when the graph is captured): where the one-kernel decode
    // lets the next layer launch, the same without reading the partial products (measurement only: wrong
    // results), and the three-kernel decode with and without its next-layer L2 prefetch.
    // MAMBA_PROFILE_VARIANTS replaces the list: variants separated by ';', each a list of NAME=VALUE
    // settings separated by ',' (set for that replay, unset after).
    // MAMBA_CUDA_LAYER_FUSED=0 measures the three-kernel decode (which the skip masks below always measure).
    std::vector<std::string> variants = {"MAMBA_CUDA_LAYER_TRIGGER=0", "MAMBA_CUDA_LAYER_TRIGGER=1", "MAMBA_CUDA_LAYER_SKIP=1",
                                         "MAMBA_CUDA_LAYER_FUSED=0", "MAMBA_CUDA_LAYER_FUSED=0,MAMBA_CUDA_PREFETCH=0"};
    if (!variants_arg.empty()) variants = split(variants_arg, ';');
    for (const std::string& v : variants) {
      const std::vector<std::string> names = begin_variant(b, v);
      b.set_pdl(true);
      fresh();
      const double g = b.decode_graph_ms(steps);
      std::printf("  graph replay, PDL=%d, %-60s %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n", int(b.pdl()), v.c_str(), g, 1e3 / g,
                  100.0 * floor_ms / g);
      if (timelines) {
        fresh();
        print_timeline(b, c.n_layer, std::min(steps, 32));
        if (b.decode_fused()) {
          const std::vector<uint32_t> sm = b.decode_records();
          print_placement(sm, 0, c.n_layer, b.decode_layer_plan().cs, b.decode_layer_plan().nc, ("single step, " + v).c_str());
          print_phases(sm, 0, 1, c.n_layer, b.decode_layer_plan().cs * b.decode_layer_plan().nc, ("single step, " + v).c_str());
        }
      }
      end_variant(b, names);
    }
    b.set_pdl(pdl0);
    fresh();
    print_timeline(b, c.n_layer, std::min(steps, 64));
    // in-graph cost of each kernel class: replay with the class left out (results meaningless, timing not)
    {
      b.set_decode_fused(false);  // the skip masks apply to the three-kernel decode
      b.set_pdl(pdl0);
      fresh();
      const double all = b.decode_graph_ms(steps);
      std::printf("  in-graph cost by leaving a kernel class out, three-kernel decode (PDL=%d, full graph %.4f ms):\n", int(b.pdl()), all);
      const std::pair<const char*, const char*> classes[] = {
          {"1", "in_proj gemv"}, {"2", "ssm step"}, {"4", "out_proj gemv"}, {"8", "lm head gemv"}, {"15", "all but embedding + copies"}};
      for (const auto& [mask, what] : classes) {
        setenv("MAMBA_CUDA_DECODE_SKIP", mask, 1);
        b.set_pdl(pdl0);
        fresh();
        const double without = b.decode_graph_ms(steps);
        std::printf("    %-28s %8.4f ms per token (%.2f us per launch)\n", what, all - without,
                    1e3 * (all - without) /
                        double(std::string(mask) == "8"    ? 1
                               : std::string(mask) == "15" ? 3 * c.n_layer + 1
                                                           : c.n_layer));
      }
      unsetenv("MAMBA_CUDA_DECODE_SKIP");
      b.set_decode_fused(true);
      b.set_pdl(pdl0);
    }
    b.set_pdl(false);
    fresh();
    const double g0 = b.decode_graph_ms(steps);
    std::printf("  graph replay, no PDL                         %8.4f ms  %8.0f tok/s  %5.1f%% of floor rate\n", g0, 1e3 / g0,
                100.0 * floor_ms / g0);
    b.set_use_graph(false);
    fresh();
    const double ng = step_wall_ms(b, std::min(steps, 32), logits, false);
    std::printf("  step() wall, no graph, no PDL                %8.4f ms  %8.0f tok/s\n", ng, 1e3 / ng);
    b.set_use_graph(true);
    b.set_pdl(pdl0);

    fresh();
    OpProfiler dprof;
    lab::attach(&dprof);
    const int n_prof = std::min(steps, 32);
    for (int i = 0; i < n_prof; ++i) {
      b.step(1, logits.data());
      dprof.collect();
    }
    lab::attach(nullptr);
    print_breakdown("decode breakdown per token (ops timed one by one, no graph, no PDL):", dprof, double(n_prof));
    OpProfiler sprof;  // the bench's path: greedy sampling on the device
    lab::attach(&sprof);
    SamplerParams greedy;
    greedy.temperature = 0;
    for (int i = 0; i < n_prof; ++i) {
      b.step_sample(1, greedy, 0.5);
      sprof.collect();
    }
    lab::attach(nullptr);
    print_breakdown("decode breakdown per token, greedy step_sample (ops timed one by one):", sprof, double(n_prof));
    std::printf("\npeak device memory %.1f MB\n", double(cuda_peak_memory_bytes()) / 1e6);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
