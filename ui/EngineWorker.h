#pragma once
// Owns the engine (model, tokenizer, backend session) and runs every engine call on its own thread.
// The GUI reaches it only through queued signals, plus the two thread-safe flags below, which must
// work while a slot is busy decoding or loading (the event queue is not served then).
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <atomic>
#include <memory>

#include "ui/CompareTypes.h"
#include "ui/EngineTypes.h"
#include "ui/MatrixTypes.h"
#include "ui/SnapshotTypes.h"

namespace mamba {
struct Model;
class ProbeRecorder;
class Tokenizer;
class StreamDecoder;
class Session;
}  // namespace mamba

namespace studio {

class SnapshotStore;

class EngineWorker : public QObject {
  Q_OBJECT

 public:
  explicit EngineWorker(QObject* parent = nullptr);
  ~EngineWorker() override;

  // Thread-safe. Stop takes effect before the next token (or the prompt's next layer while it is read);
  // cancel before the next tensor is read.
  void requestStop() { m_stop.store(true); }
  void requestCancelLoad() { m_cancelLoad.store(true); }
  void requestCancelMatrix() { m_cancelMatrix.store(true); }

  // Test seam: use a model that is already in memory. Must run on the worker thread (queue a functor).
  void adoptModel(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer, const QString& label);

  // The scan comparison (engine/compare.h, EngineWorkerCompare.cpp) of the sequence's text. Thread-safe:
  // cancel takes effect before the comparison's next piece of work.
  void requestCancelCompare() { m_cancelCompare.store(true); }

 public slots:
  void compare(const studio::CompareRequest& request);

 signals:
  void compareStarted(qint64 tokens);
  void compareProgress(double fraction, const QString& what);
  void compareFinished(const studio::CompareData& data);
  void compareFailed(const QString& error, bool cancelled);

 public:
 public slots:
  void probeDevices();
  void loadModel(const QString& path);  // a folder or a single-file checkpoint (engine/checkpoint.h)
  void setDevice(const QString& device);
  void generate(const studio::GenerationRequest& request);
  void clearSession();
  // Probes of every token run from now on (the inspection views are open), batched to probesReady.
  // Off costs nothing. `window`: positions kept (ProbeRecorder's bounded ring).
  void setProbesEnabled(bool on);
  // The SSD matrix of a layer and head over the sequence's first kMaxMatrixTokens tokens (EngineWorkerMatrix.cpp).
  void computeMatrix(const studio::MatrixRequest& request);

  // Snapshots (ui/EngineWorkerSnapshots.cpp, ui/SnapshotStore.h); every answer is a signal below, a
  // refusal is snapshotFailed and changes nothing. `position` -1: the sequence now, else after that token.
  void takeSnapshot(const QString& label, qint64 position);
  void restoreSnapshot(int id);
  void editSnapshot(int id, const studio::SnapshotEdit& edit);  // a child with the edit, restored
  void renameSnapshot(int id, const QString& label);
  void deleteSnapshot(int id);
  void exportSnapshot(int id, const QString& path);
  void importSnapshot(const QString& path);
  void diffSnapshots(int a, int b);
  void traceBranches(int a, int b);
  void setCheckpointInterval(qint64 every);
  void reportCheckpoints();

 signals:
  void devicesProbed(const studio::DeviceInfo& info);
  void loadStarted(const QString& dir);
  void loadProgressChanged(qint64 doneBytes, qint64 totalBytes);
  void modelChanged(const studio::ModelInfo& info);
  void loadFailed(const QString& dir, const QString& error);
  void deviceChanged(const QString& device, const QString& backendName);
  void deviceFailed(const QString& device, const QString& error);
  void generationStarted(qint64 promptTokens);
  void promptTokenized(const studio::PromptTokens& tokens);
  // A few times a second while tokens run, and at the end of every prefill and run.
  void probesReady(const studio::ProbeBatch& batch);
  void prefillProgressChanged(qint64 doneTokens, qint64 totalTokens);  // while a long prompt is read
  void tokenGenerated(const studio::TokenData& token);
  void generationFinished(const studio::GenerationStats& stats);
  void generationFailed(const QString& error);
  void sessionCleared();
  void matrixProgress(int done, int total);
  void matrixReady(const studio::MatrixResult& result);
  void matrixFailed(const QString& error);
  void snapshotAdded(const studio::SnapshotInfo& info);
  void snapshotChanged(const studio::SnapshotInfo& info);
  void snapshotRemoved(int id);
  void snapshotRestored(const studio::RestoredSequence& sequence);
  void snapshotDiffReady(const studio::SnapshotDiff& diff);
  void branchTracesReady(const studio::BranchTraces& traces);
  void checkpointsChanged(const studio::CheckpointInfo& info);
  void snapshotFailed(const QString& what, const QString& error);

 private:
  std::atomic<bool> m_cancelCompare{false};
  void install(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer, const QString& dir,
               const QString& label, double loadSeconds, const QString& tokenizerSource = {});
  std::vector<int32_t> promptIds(const QString& prompt) const;
  void sessionRestarted();  // the live sequence starts from an empty state again (not from a snapshot)
  void snapshotsAfterModelChange();
  void emitSnapshot(int id, bool added);
  QString tokenText(int32_t id) const;
  void resetProbes();
  void flushProbes(bool force);

  QString m_device = QStringLiteral("cpu");
  std::shared_ptr<const mamba::Model> m_model;
  std::shared_ptr<const mamba::Tokenizer> m_tokenizer;
  std::unique_ptr<mamba::Session> m_session;
  std::unique_ptr<mamba::StreamDecoder> m_decoder;  // lives across Continue so split UTF-8 joins up
  ModelInfo m_info;
  std::unique_ptr<SnapshotStore> m_snapshots;
  int m_liveSnapshot = -1;      // the snapshot the live sequence continues (restored or taken last), or -1
  bool m_liveFromStart = true;  // the live sequence began with an empty state
  // Checkpoints for snapshots at earlier tokens: every K generated tokens, chosen in the Snapshots panel,
  // or (-1) by device: each costs a copy of the whole state, which on the GPU outweighs the steps between
  // (a replay of K - 1 steps there takes K x ~0.2 ms).
  qint64 m_checkpointEvery = -1;
  static constexpr qint64 kCheckpointEveryCpu = 32, kCheckpointEveryGpu = 512;
  qint64 checkpointEvery() const;
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_cancelLoad{false};
  bool m_probesOn = false;
  std::unique_ptr<mamba::ProbeRecorder> m_probes;  // while on: the session reports into it
  qint64 m_probesSent = 0;                         // positions already sent
  QElapsedTimer m_sinceProbes;
  std::atomic<bool> m_cancelMatrix{false};
  std::shared_ptr<const mamba::LayerCapture> m_matrixCapture;  // cached for the text and layer below
  std::vector<int32_t> m_matrixTokens;
  MatrixResult m_matrix;  // the last one, for new chunk sizes
 public:
  static constexpr qint64 kMaxMatrixTokens = 4096;
};

}  // namespace studio
