#include "engine/ssd_matrix.h"

#include <algorithm>
#include <cmath>

#include <cblas.h>

#include "engine/backend.h"
#include "engine/error.h"

extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u, const int* ldu,
                        double* vt, const int* ldvt, double* work, const int* lwork, int* iwork, int* info, size_t jobz_len);

namespace mamba {

namespace {

void check_capture(const LayerCapture& c, const Config& cfg) {
  const size_t T = static_cast<size_t>(c.T);
  if (c.T < 1 || c.x.size() != T * size_t(cfg.d_inner) || c.B.size() != T * size_t(cfg.n_groups * cfg.d_state) ||
      c.C.size() != c.B.size() || c.dt.size() != T * size_t(cfg.n_heads) || c.y.size() != c.x.size())
    throw Error("SSD matrix: the captured layer does not match the model's shapes");
}

void poll(const MatrixOptions& opt, int64_t done, int64_t total) {
  if (opt.cancel && opt.cancel->load()) throw Error("cancelled");
  if (opt.progress) opt.progress(done, total);
}

}  // namespace

double SsdMatrix::cb(const LayerCapture& c, int64_t t, int64_t s) const {
  const int64_t G = static_cast<int64_t>(c.C.size() / size_t(T) / size_t(N));
  const double* Ct = c.C.data() + (t * G + group) * N;
  const double* Bs = c.B.data() + (s * G + group) * N;
  double v = 0;
  for (int64_t n = 0; n < N; ++n) v += Ct[n] * Bs[n];
  return v;
}

double SsdMatrix::decay(int64_t t, int64_t s) const { return s > t ? 0.0 : std::exp(std::min(0.0, cum[t + 1] - cum[s + 1])); }

double SsdMatrix::dt(const LayerCapture& c, int64_t s) const { return c.dt[static_cast<size_t>(s) * (c.dt.size() / size_t(T)) + head]; }

std::vector<int64_t> heads_sharing_bc(const Config& cfg, int64_t head) {
  const int64_t per = cfg.n_heads / cfg.n_groups, g = head / per;
  std::vector<int64_t> out;
  for (int64_t h = g * per; h < (g + 1) * per; ++h) out.push_back(h);
  return out;
}

SsdMatrix ssd_matrix(const LayerCapture& c, const Config& cfg, const LayerWeights& w, int64_t head, const MatrixOptions& opt) {
  check_capture(c, cfg);
  if (head < 0 || head >= cfg.n_heads)
    throw Error("SSD matrix: head " + std::to_string(head) + " is not in 0.." + std::to_string(cfg.n_heads - 1));
  const int64_t T = c.T, N = cfg.d_state, G = cfg.n_groups, H = cfg.n_heads;
  SsdMatrix m;
  m.layer = c.layer;
  m.head = head;
  m.group = head / (H / G);
  m.T = T;
  m.N = N;
  m.P = cfg.head_dim;
  m.A = w.A[static_cast<size_t>(head)];
  m.D = w.D[static_cast<size_t>(head)];
  m.cum.assign(static_cast<size_t>(T + 1), 0.0);
  for (int64_t t = 0; t < T; ++t) m.cum[t + 1] = m.cum[t] + double(c.dt[t * H + head]) * m.A;
  // B and C of the head's group in double, contiguous
  std::vector<double> B(static_cast<size_t>(T * N)), C(static_cast<size_t>(T * N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      B[t * N + n] = c.B[(t * G + m.group) * N + n];
      C[t * N + n] = c.C[(t * G + m.group) * N + n];
    }
  m.M.assign(static_cast<size_t>(T * T), 0.0);
  // A band of rows at a time: C . B^T of the band's lower-triangular part by BLAS (rows r0..r1 against
  // columns 0..r1), then each entry masked to s <= t, scaled by its decay and dt.
  const int64_t step = std::max<int64_t>(16, T / 32);
  for (int64_t r0 = 0; r0 < T; r0 += step) {
    poll(opt, r0, T);
    const int64_t r1 = std::min(T, r0 + step);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(r1 - r0), int(r1), int(N), 1.0, C.data() + r0 * N, int(N), B.data(), int(N),
                0.0, m.M.data() + r0 * T, int(T));
#pragma omp parallel for schedule(static)
    for (int64_t t = r0; t < r1; ++t) {
      double* row = m.M.data() + t * T;
      for (int64_t s = 0; s <= t; ++s) {  // masked first: only s <= t is ever exponentiated
        const double seg = std::min(0.0, m.cum[t + 1] - m.cum[s + 1]);
        row[s] *= std::exp(seg) * c.dt[s * H + head];
      }
      for (int64_t s = t + 1; s < r1; ++s) row[s] = 0.0;  // the product's part above the diagonal
    }
  }
  poll(opt, T, T);
  return m;
}

std::vector<double> matrix_output(const SsdMatrix& m, const LayerCapture& c, const Config& cfg) {
  const int64_t T = m.T, P = m.P, E = cfg.d_inner, h = m.head;
  std::vector<double> x(static_cast<size_t>(T * P)), out(static_cast<size_t>(T * P));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t p = 0; p < P; ++p) x[t * P + p] = c.x[t * E + h * P + p];
  out = x;  // D x, then + M x
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(P), int(T), 1.0, m.M.data(), int(T), x.data(), int(P), m.D, out.data(),
              int(P));
  return out;
}

double duality_rel_err(const SsdMatrix& m, const LayerCapture& c, const Config& cfg) {
  const std::vector<double> y = matrix_output(m, c, cfg);
  const int64_t T = m.T, P = m.P, E = cfg.d_inner;
  double num = 0, den = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t p = 0; p < P; ++p) {
      const double ref = c.y[t * E + m.head * P + p], d = y[t * P + p] - ref;
      num += d * d;
      den += ref * ref;
    }
  return std::sqrt(num / std::max(den, 1e-300));
}

std::vector<int> offdiagonal_ranks(const SsdMatrix& m, int64_t Q, double rel_tol) {
  if (Q < 1) throw Error("chunk size must be >= 1");
  const int64_t T = m.T, nc = (T + Q - 1) / Q;
  std::vector<int> ranks(static_cast<size_t>(nc * nc), -1);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t i = 0; i < nc; ++i)
    for (int64_t j = 0; j < nc; ++j) {
      if (j >= i) continue;
      const int rows = int(std::min(Q, T - i * Q)), cols = int(std::min(Q, T - j * Q));
      std::vector<double> a(static_cast<size_t>(rows) * cols);  // column-major for LAPACK
      for (int cc = 0; cc < cols; ++cc)
        for (int r = 0; r < rows; ++r) a[size_t(cc) * rows + r] = m.M[(i * Q + r) * T + j * Q + cc];
      const int k = std::min(rows, cols);
      std::vector<double> s(static_cast<size_t>(k));
      std::vector<int> iwork(static_cast<size_t>(8 * k));
      int info = 0, lwork = -1, one = 1;
      double query = 0, dummy = 0;
      dgesdd_("N", &rows, &cols, a.data(), &rows, s.data(), &dummy, &one, &dummy, &one, &query, &lwork, iwork.data(), &info, 1);
      lwork = std::max(1, int(query));
      std::vector<double> work(static_cast<size_t>(lwork));
      dgesdd_("N", &rows, &cols, a.data(), &rows, s.data(), &dummy, &one, &dummy, &one, work.data(), &lwork, iwork.data(), &info, 1);
      int r = 0;  // singular values come largest first
      if (info == 0)
        for (double v : s) r += v > rel_tol * s[0] ? 1 : 0;
      ranks[size_t(i * nc + j)] = info == 0 ? r : -2;
    }
  return ranks;
}

LayerCapture capture_layer(std::shared_ptr<const Model> model, const std::vector<int32_t>& ids, int64_t layer, const MatrixOptions& opt) {
  auto b = make_cpu_backend(std::move(model));
  return capture_layer(*b, ids, layer, opt);
}

LayerCapture capture_layer(Backend& backend, const std::vector<int32_t>& ids, int64_t layer, const MatrixOptions& opt) {
  const Config& c = backend.model().config;
  if (layer < 0 || layer >= c.n_layer) throw Error("layer " + std::to_string(layer) + " is not in 0.." + std::to_string(c.n_layer - 1));
  if (ids.empty()) throw Error("no tokens to capture");
  LayerCapture cap;
  cap.layer = layer;
  cap.stop_after = true;  // later layers do not matter to this one
  ForwardOptions fo;
  fo.capture = &cap;
  fo.cancel = opt.cancel;
  if (opt.progress) fo.progress = opt.progress;
  backend.forward(ids, fo, nullptr);
  if (cap.T != static_cast<int64_t>(ids.size())) throw Error("this backend cannot capture a layer's scan");
  return cap;
}

}  // namespace mamba

namespace mamba {

MatrixImage matrix_image(const SsdMatrix& m, MatrixColour colour, double floor_rel, int64_t max_cells) {
  const int64_t T = m.T;
  MatrixImage img;
  img.stride = std::max<int64_t>(1, (T + max_cells - 1) / std::max<int64_t>(1, max_cells));
  img.cells = (T + img.stride - 1) / img.stride;
  const int64_t k = img.stride, n = img.cells;
  double peak = 0;
  for (double v : m.M) peak = std::max(peak, std::abs(v));
  std::vector<double> row_max;
  if (colour == MatrixColour::RowNormalised) {
    row_max.assign(static_cast<size_t>(T), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s <= t; ++s) row_max[t] = std::max(row_max[t], std::abs(m.at(t, s)));
  }
  img.v.assign(static_cast<size_t>(n * n), std::nan(""));
  const double floor = std::max(peak * floor_rel, 1e-300);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      // the block's entry of largest |value| on or below the diagonal
      double best = 0, best_abs = -1;
      for (int64_t t = i * k; t < std::min(T, (i + 1) * k); ++t)
        for (int64_t s = j * k; s < std::min(t + 1, (j + 1) * k); ++s) {
          double v = m.at(t, s);
          if (colour == MatrixColour::RowNormalised) v = row_max[t] > 0 ? std::abs(v) / row_max[t] : 0.0;
          if (std::abs(v) > best_abs) best_abs = std::abs(v), best = v;
        }
      if (best_abs < 0) continue;
      img.v[i * n + j] = colour == MatrixColour::Log10Abs ? std::log10(std::max(std::abs(best), floor)) : best;
    }
  switch (colour) {
    case MatrixColour::Log10Abs:
      img.lo = std::log10(floor);
      img.hi = std::log10(std::max(peak, floor));
      break;
    case MatrixColour::Signed: {
      // a few large entries would wash the rest out to white: the scale ends at the 99th percentile of |M|
      std::vector<double> mags;
      mags.reserve(static_cast<size_t>(n * (n + 1) / 2));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
          if (std::isfinite(img.v[i * n + j])) mags.push_back(std::abs(img.v[i * n + j]));
      double clip = peak;
      if (!mags.empty()) {
        const size_t q = std::min(mags.size() - 1, static_cast<size_t>(0.99 * double(mags.size())));
        std::nth_element(mags.begin(), mags.begin() + q, mags.end());
        clip = mags[q] > 0 ? mags[q] : peak;
      }
      img.lo = -clip;
      img.hi = clip;
      break;
    }
    case MatrixColour::RowNormalised:
      img.lo = 0;
      img.hi = 1;
      break;
  }
  return img;
}

SsdFlops ssd_flops(int64_t T, int64_t Q, int64_t P, int64_t N) {
  if (Q < 1) throw Error("chunk size must be >= 1");
  SsdFlops f;
  for (int64_t t0 = 0; t0 < T; t0 += Q) {
    const int64_t l = std::min(Q, T - t0);
    f.diagonal += 2 * l * l * N + 2 * l * l * P;  // C B^T in the chunk, then (L o C B^T dt) X
    f.states += 2 * l * P * N;                    // X^T (decay-scaled B)
    f.passing += 2 * P * N;                       // decay * S_in + S_c
    f.offdiagonal += 2 * l * P * N;               // (decay-scaled C) S_in^T
  }
  f.recurrent = T * P * (5 * N + 1);  // decay*S + (dt x) B^T, then S C
  const int64_t cells = T * (T + 1) / 2;
  f.attention = cells * 2 * N + cells * 2 * P;  // C.B for every s <= t, then M x
  return f;
}

}  // namespace mamba
