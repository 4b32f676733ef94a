// EngineWorker's SSD matrix: the layer's scan inputs captured from a CPU forward over the sequence's
// tokens (cached per text and layer), the head's matrix, the duality check and the chunk ranks.
#include <QElapsedTimer>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/session.h"
#include "ui/EngineWorker.h"

namespace studio {

void EngineWorker::computeMatrix(const MatrixRequest& req) {
  m_cancelMatrix.store(false);
  try {
    if (!m_session || !m_model) throw mamba::Error(tr("no model is loaded").toStdString());
    const mamba::Config& c = m_model->config;
    std::vector<int32_t> tokens = m_session->tokens();
    if (tokens.empty()) throw mamba::Error(tr("no text yet: generate first").toStdString());
    const qint64 textTokens = qint64(tokens.size());
    if (qint64(tokens.size()) > kMaxMatrixTokens) tokens.resize(size_t(kMaxMatrixTokens));
    const qint64 Q = req.chunk > 0 ? req.chunk : c.chunk_size;
    QElapsedTimer timer;
    timer.start();
    MatrixResult r = m_matrix;
    if (!req.ranksOnly || !r.matrix || r.layer != req.layer || r.head != req.head) {
      // progress: the capture's forward, then the matrix rows
      mamba::MatrixOptions opt;
      opt.cancel = &m_cancelMatrix;
      const bool cached = m_matrixCapture && m_matrixCapture->layer == req.layer && m_matrixTokens == tokens;
      if (!cached) {
        opt.progress = [&](int64_t done, int64_t total) { emit matrixProgress(int(500 * done / std::max<int64_t>(total, 1)), 1000); };
        m_matrixCapture = std::make_shared<const mamba::LayerCapture>(mamba::capture_layer(m_model, tokens, req.layer, opt));
        m_matrixTokens = tokens;
      }
      const int base = cached ? 0 : 500, span = cached ? 900 : 400;
      opt.progress = [&](int64_t done, int64_t total) { emit matrixProgress(base + int(span * done / std::max<int64_t>(total, 1)), 1000); };
      r = MatrixResult{};
      r.layer = req.layer;
      r.head = req.head;
      r.capture = m_matrixCapture;
      r.matrix = std::make_shared<const mamba::SsdMatrix>(
          mamba::ssd_matrix(*m_matrixCapture, c, m_model->weights.layers[size_t(req.layer)], req.head, opt));
      r.group = r.matrix->group;
      r.T = r.matrix->T;
      for (int64_t h : mamba::heads_sharing_bc(c, req.head)) r.sharing.push_back(h);
      const std::vector<double> ym = mamba::matrix_output(*r.matrix, *m_matrixCapture, c);
      r.yMatrix = QVector<double>(ym.begin(), ym.end());
      const int64_t P = c.head_dim, E = c.d_inner;
      r.yScan.resize(r.T * P);
      for (int64_t t = 0; t < r.T; ++t)
        for (int64_t p = 0; p < P; ++p) r.yScan[t * P + p] = m_matrixCapture->y[size_t(t * E + req.head * P + p)];
      r.dualityError = mamba::duality_rel_err(*r.matrix, *m_matrixCapture, c);
    }
    if (m_cancelMatrix.load()) throw mamba::Cancelled("cancelled");
    r.textTokens = textTokens;
    r.chunk = Q;
    const std::vector<int> ranks = mamba::offdiagonal_ranks(*r.matrix, Q);
    r.ranks = QVector<int>(ranks.begin(), ranks.end());
    r.flops = mamba::ssd_flops(r.T, Q, c.head_dim, c.d_state);
    r.seconds = req.ranksOnly ? m_matrix.seconds : timer.elapsed() / 1000.0;
    emit matrixProgress(1000, 1000);
    m_matrix = r;
    emit matrixReady(r);
  } catch (const std::exception& e) {
    emit matrixFailed(QString::fromStdString(e.what()));
  }
}

}  // namespace studio
