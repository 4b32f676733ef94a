#pragma once
// The scan comparison (engine/compare.h) as plain Qt values, for the queued signals from the worker to
// the Compare view. Everything the view shows is computed on the worker (maxima, means, sums); the view
// only draws and looks up.
#include <QMetaType>
#include <QString>
#include <QVector>

namespace mamba {
struct CompareResult;
}

namespace studio {

struct CompareRequest {
  qint64 chunkSize = 0;  // Q of the chunked runs; 0: the model's
  bool sweep = true;     // chunk sizes 1, 2, 4, ..., T
  bool gpu = false;      // add CUDA runs (f32, bf16, f16) where a GPU is present
  QString sweepDevice = QStringLiteral("cpu");
  QString prompt;  // used when the session holds no text yet
};

// One run: a backend, a scan, a dtype. Per position (T) and per layer (L) as named.
struct CompareRunData {
  QString name, device, dtype, scan, backend;
  qint64 chunkSize = 0;
  double seconds = 0, flops = 0;
  QVector<double> layerSeconds;  // (L + 1): each layer, then the final norm + LM head; empty off the CPU
  QVector<float> norm;           // (L, T) ||r|| of the residual after each layer
  QVector<float> logitErr, kl;   // (T)
  QVector<quint8> top1;          // (T)
  double maxLogitErr = 0, klMean = 0, top1Agree = 0;
};

// Run a against run b (b = -1: the float64 reference), per layer l and position t at l * T + t.
struct CompareDiffData {
  int a = 0, b = -1;
  QVector<float> err;                   // (L, T) ||r_a - r_b|| / ||r_b||  (NaN: run a or b gave no layer outputs)
  QVector<qint32> at;                   // (L, T) channel of the largest |r_a - r_b|
  QVector<double> va, vb;               // (L, T) the two values there
  QVector<double> layerMax, layerMean;  // (L) over positions
  QVector<double> ssmErr, convErr;      // (L) final states
  double maxErr = 0, minErr = 0;        // over every finite, positive cell (the colour scale's range)
};

struct CompareSweepPoint {
  qint64 chunkSize = 0;  // 0: recurrent
  double seconds = 0, flops = 0, maxRelErr = 0, stateRelErr = 0;
};

struct CompareData {
  qint64 layers = 0, tokens = 0, dModel = 0, chunkSize = 0, modelChunkSize = 0;
  QVector<qint32> ids;
  QVector<QString> pieces;  // each token's text, as the tokenizer spells it
  double refSeconds = 0, refFlops = 0;
  QVector<float> refNorm;  // (L, T)
  QVector<CompareRunData> runs;
  QVector<CompareDiffData> diffs;  // each run against float64 (in run order), then every two runs
  QString sweepBackend;
  QVector<CompareSweepPoint> sweep;
  CompareSweepPoint sweepRecurrent;
  QString json;  // what mamba-cli compare prints for the same comparison
  // The diff of a against b (b = -1: float64), or null.
  const CompareDiffData* diff(int a, int b) const;
};

// Copies an engine result into plain values (with the per-layer maxima and means the view shows).
CompareData toCompareData(const mamba::CompareResult& r);

}  // namespace studio

Q_DECLARE_METATYPE(studio::CompareRequest)
Q_DECLARE_METATYPE(studio::CompareData)
