#pragma once
// The state-space / attention duality of one layer and head (Dao & Gu 2024): the scan computes
// y = M x + D x with M lower-triangular and semiseparable,
//   M[t,s] = (C_t . B_s) * exp(sum_{k=s+1..t} dt_k A) * dt_s        for s <= t, 0 above,
// and the chunked algorithm is a block decomposition of M. Everything here is float64, built from the
// values the model used (one layer's x, B, C, dt after the conv, captured during a forward).
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/config.h"
#include "engine/model.h"

namespace mamba {

class Backend;

// One layer's scan inputs and output, copied out of a forward (ForwardOptions::capture), held in double
// (a float32 backend's values convert exactly; a float64 reference fills them as they are). Row-major.
struct LayerCapture {
  int64_t layer = 0;        // which layer to copy (set by the caller)
  bool stop_after = false;  // end the forward after that layer (a scratch backend: later layers' state is stale)
  int64_t T = 0;
  std::vector<double> x;   // (T, E)  after conv + SiLU
  std::vector<double> B;   // (T, G, N)
  std::vector<double> C;   // (T, G, N)
  std::vector<double> dt;  // (T, H)  after softplus and the clamp
  std::vector<double> y;   // (T, E)  the scan's output: SSD + D x, before the gate
};

struct SsdMatrix {
  int64_t layer = 0, head = 0, group = 0, T = 0, N = 0, P = 0;
  double A = 0, D = 0;
  std::vector<double> M;    // (T, T) row-major, zero above the diagonal
  std::vector<double> cum;  // (T + 1): cum[t + 1] = sum_{k<=t} dt_k A, for the decay factor

  double at(int64_t t, int64_t s) const { return M[static_cast<size_t>(t * T + s)]; }
  // The three factors of M[t,s] (s <= t): C_t . B_s, exp(sum_{k=s+1..t} dt_k A), dt_s.
  double cb(const LayerCapture& c, int64_t t, int64_t s) const;
  double decay(int64_t t, int64_t s) const;
  double dt(const LayerCapture& c, int64_t s) const;
};

// progress(done rows, all rows); cancel is polled between rows (throws mamba::Error "cancelled").
struct MatrixOptions {
  std::function<void(int64_t, int64_t)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// M of `head` (its group's B and C). The segment sum is masked to s <= t first, then clamped to <= 0 and
// exponentiated: no overflow and no NaN whatever the length and dt.
SsdMatrix ssd_matrix(const LayerCapture& c, const Config& cfg, const LayerWeights& w, int64_t head, const MatrixOptions& opt = {});

// || M x + D x - y_scan || / || y_scan || over the head's T x P outputs: the duality, checked against the
// engine's own scan output.
double duality_rel_err(const SsdMatrix& m, const LayerCapture& c, const Config& cfg);
// (T, P): M x + D x for the head.
std::vector<double> matrix_output(const SsdMatrix& m, const LayerCapture& c, const Config& cfg);

// Numerical rank of every block strictly below the diagonal for chunks of Q: singular values above
// rel_tol times the block's largest (the theorem: at most d_state). Row-major over block
// (row chunk i, column chunk j) with j < i; -1 on and above the diagonal. (nc, nc).
std::vector<int> offdiagonal_ranks(const SsdMatrix& m, int64_t Q, double rel_tol = 1e-10);

// The heads that read the same B and C as `head` (its group).
std::vector<int64_t> heads_sharing_bc(const Config& cfg, int64_t head);

// Runs the model over `ids` on the CPU (a fresh state) up to `layer` and copies that layer's scan inputs
// and output. progress / cancel between layers.
LayerCapture capture_layer(std::shared_ptr<const Model> model, const std::vector<int32_t>& ids, int64_t layer,
                           const MatrixOptions& opt = {});
// The same through a given backend (CPU or CUDA), from its current state: use a fresh one.
LayerCapture capture_layer(Backend& backend, const std::vector<int32_t>& ids, int64_t layer, const MatrixOptions& opt = {});

}  // namespace mamba

namespace mamba {

// What the view draws: the matrix on a grid of at most max_cells x max_cells (k x k blocks of M, each
// shown by its entry of largest |M|), NaN above the diagonal.
enum class MatrixColour {
  Log10Abs,       // log10 |M|, floored at floor_rel times the largest |M|
  Signed,         // M itself (C.B can be negative); the range ends at the 99th percentile of |M|
  RowNormalised,  // |M[t,s]| / max_s |M[t,s]|: where each token looks, as the "hidden attention" papers show it
};
struct MatrixImage {
  int64_t cells = 0;      // per axis
  int64_t stride = 1;     // tokens per cell
  std::vector<double> v;  // (cells, cells) row-major: [row t][column s]
  double lo = 0, hi = 0;  // the colour range (symmetric for Signed; values beyond take the end colours)
};
MatrixImage matrix_image(const SsdMatrix& m, MatrixColour colour, double floor_rel = 1e-8, int64_t max_cells = 2048);

// FLOPs (2 per multiply-add) of one head over T tokens: the chunked algorithm's four steps for chunks of
// Q (step 1 includes C.B inside each chunk), the recurrence, and attention over the materialised M.
struct SsdFlops {
  int64_t diagonal = 0, states = 0, passing = 0, offdiagonal = 0;
  int64_t recurrent = 0, attention = 0;
  int64_t chunked() const { return diagonal + states + passing + offdiagonal; }
};
SsdFlops ssd_flops(int64_t T, int64_t Q, int64_t P, int64_t N);

}  // namespace mamba
