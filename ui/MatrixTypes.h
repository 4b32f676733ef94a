#pragma once
// The SSD matrix of one layer and head as it crosses from the worker to the GUI: the engine's float64
// matrix and captured layer (shared, immutable), the duality check and the chunk ranks.
#include <QMetaType>
#include <QString>
#include <QVector>
#include <memory>

#include "engine/ssd_matrix.h"

namespace studio {

struct MatrixRequest {
  qint64 layer = 0, head = 0;
  qint64 chunk = 0;        // chunk size for the block ranks; 0: the model's
  bool ranksOnly = false;  // the matrix is already there: new ranks for another chunk size
};

struct MatrixResult {
  qint64 layer = 0, head = 0, group = 0, T = 0, chunk = 0;
  qint64 textTokens = 0;    // tokens in the sequence (the matrix covers the first T)
  QVector<qint64> sharing;  // heads reading the same B and C
  std::shared_ptr<const mamba::SsdMatrix> matrix;
  std::shared_ptr<const mamba::LayerCapture> capture;
  QVector<int> ranks;       // (nc, nc) offdiagonal_ranks for `chunk`
  double dualityError = 0;  // || M x + D x - y_scan || / || y_scan ||
  QVector<double> yMatrix;  // (T, P) M x + D x
  QVector<double> yScan;    // (T, P) the scan's output for the head
  double seconds = 0;       // capture + matrix
  mamba::SsdFlops flops;
};

}  // namespace studio

Q_DECLARE_METATYPE(studio::MatrixRequest)
Q_DECLARE_METATYPE(studio::MatrixResult)
