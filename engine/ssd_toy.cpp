#include "engine/ssd_toy.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/error.h"

namespace mamba {

const char* toy_dt_name(ToyDt p) {
  switch (p) {
    case ToyDt::Constant: return "constant";
    case ToyDt::Spike: return "spike";
    case ToyDt::Ramp: return "ramp";
    case ToyDt::Periodic: return "periodic";
    case ToyDt::Random: return "random";
  }
  return "?";
}

const char* toy_bc_name(ToyBC p) {
  switch (p) {
    case ToyBC::Random: return "random";
    case ToyBC::Ones: return "ones";
    case ToyBC::OneHot: return "one-hot";
    case ToyBC::HandSet: return "hand-set";
  }
  return "?";
}

void ToyParams::validate() const {
  if (T < 1 || T > 64) throw Error("toy SSD: T must be in 1..64");
  if (N < 1 || N > 8) throw Error("toy SSD: d_state must be in 1..8");
  if (Q < 1 || Q > T) throw Error("toy SSD: the chunk size must be in 1..T");
  if (!(A < 0) || !std::isfinite(A)) throw Error("toy SSD: A must be negative");
  if (!(dt > 0) || !std::isfinite(dt)) throw Error("toy SSD: dt must be positive");
  if (bc == ToyBC::HandSet && (B_hand.size() != size_t(T * N) || C_hand.size() != size_t(T * N)))
    throw Error("toy SSD: hand-set B and C need T x d_state values each");
}

std::vector<double> ToyResult::y_chunked() const {
  std::vector<double> y(y_diag.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = y_diag[i] + y_off[i];
  return y;
}

double ToyResult::cb(int64_t t, int64_t s) const {
  double v = 0;
  for (int64_t n = 0; n < N; ++n) v += C[t * N + n] * B[s * N + n];
  return v;
}

double ToyResult::decay_between(int64_t t, int64_t s) const { return s > t ? 0.0 : std::exp(std::min(0.0, cum[t + 1] - cum[s + 1])); }

double ToyResult::max_disagreement() const {
  const std::vector<double> yc = y_chunked();
  double d = 0;
  for (size_t t = 0; t < yc.size(); ++t) d = std::max({d, std::abs(y_matrix[t] - y_recurrent[t]), std::abs(yc[t] - y_recurrent[t])});
  return d;
}

ToyResult run_toy(const ToyParams& p) {
  p.validate();
  const int64_t T = p.T, N = p.N, Q = p.Q;
  ToyResult r;
  r.T = T;
  r.N = N;
  r.Q = Q;
  std::mt19937_64 rng(p.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.2, 1.8);
  r.x.resize(T);
  for (double& v : r.x) v = normal(rng);
  r.dt.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    double d = p.dt;
    switch (p.dt_pattern) {
      case ToyDt::Constant: break;
      case ToyDt::Spike: d = t == p.spike_at ? 10 * p.dt : p.dt; break;
      case ToyDt::Ramp: d = p.dt * (0.1 + 1.9 * double(t) / std::max<int64_t>(1, T - 1)); break;
      case ToyDt::Periodic: d = p.dt * (1.0 + 0.9 * std::sin(2 * M_PI * double(t) / 8.0)); break;
      case ToyDt::Random: d = p.dt * unit(rng); break;
    }
    r.dt[t] = d;
  }
  r.B.resize(T * N);
  r.C.resize(T * N);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double b = 0, c = 0;
      switch (p.bc) {
        case ToyBC::Random:
          b = normal(rng) / std::sqrt(double(N));
          c = normal(rng) / std::sqrt(double(N));
          break;
        case ToyBC::Ones: b = c = 1.0 / std::sqrt(double(N)); break;
        case ToyBC::OneHot: b = c = (t % N == n) ? 1.0 : 0.0; break;
        case ToyBC::HandSet:
          b = p.B_hand[t * N + n];
          c = p.C_hand[t * N + n];
          break;
      }
      r.B[t * N + n] = b;
      r.C[t * N + n] = c;
    }

  // the recurrence: h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t,  y_t = h_t . C_t
  r.h.assign(T * N, 0.0);
  r.y_recurrent.assign(T, 0.0);
  std::vector<double> h(N, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const double decay = std::exp(r.dt[t] * p.A);
    double y = 0;
    for (int64_t n = 0; n < N; ++n) {
      h[n] = decay * h[n] + r.dt[t] * r.x[t] * r.B[t * N + n];
      r.h[t * N + n] = h[n];
      y += h[n] * r.C[t * N + n];
    }
    r.y_recurrent[t] = y;
  }

  // the matrix: M[t,s] = (C_t . B_s) exp(sum_{k=s+1..t} dt_k A) dt_s
  r.cum.assign(T + 1, 0.0);
  r.decay.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    r.cum[t + 1] = r.cum[t] + r.dt[t] * p.A;
    r.decay[t] = std::exp(r.dt[t] * p.A);
  }
  const std::vector<double>& cum = r.cum;
  auto cb = [&](int64_t t, int64_t s) { return r.cb(t, s); };
  r.M.assign(T * T, 0.0);
  r.y_matrix.assign(T, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s <= t; ++s) {
      r.M[t * T + s] = cb(t, s) * std::exp(std::min(0.0, cum[t + 1] - cum[s + 1])) * r.dt[s];
      r.y_matrix[t] += r.M[t * T + s] * r.x[s];
    }

  // the chunked algorithm, its four steps
  const int64_t nc = (T + Q - 1) / Q;
  r.y_diag.assign(T, 0.0);
  r.y_off.assign(T, 0.0);
  r.chunk_states.assign(nc * N, 0.0);
  std::vector<double> S_in(N, 0.0), S_c(N);
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t t0 = c * Q, t1 = std::min(T, t0 + Q);
    // 1. the diagonal block: attention inside the chunk
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t s = t0; s <= t; ++s) r.y_diag[t] += cb(t, s) * std::exp(cum[t + 1] - cum[s + 1]) * r.dt[s] * r.x[s];
    // 2. the chunk's own state: its tokens decayed to the chunk's end
    std::fill(S_c.begin(), S_c.end(), 0.0);
    for (int64_t s = t0; s < t1; ++s)
      for (int64_t n = 0; n < N; ++n) S_c[n] += std::exp(cum[t1] - cum[s + 1]) * r.dt[s] * r.x[s] * r.B[s * N + n];
    // 4. the state handed in, read at each position (before step 3 overwrites it)
    std::copy(S_in.begin(), S_in.end(), r.chunk_states.begin() + c * N);
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t n = 0; n < N; ++n) r.y_off[t] += std::exp(cum[t + 1] - cum[t0]) * S_in[n] * r.C[t * N + n];
    // 3. passing the state on: decayed over the chunk, plus the chunk's own
    for (int64_t n = 0; n < N; ++n) S_in[n] = std::exp(cum[t1] - cum[t0]) * S_in[n] + S_c[n];
  }
  return r;
}

}  // namespace mamba
