#pragma once
// Owns the engine (model, tokenizer, backend session) and runs every engine call on its own thread.
// The GUI reaches it only through queued signals, plus the two thread-safe flags below, which must
// work while a slot is busy decoding or loading (the event queue is not served then).
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <atomic>
#include <memory>

#include "ui/EngineTypes.h"

namespace mamba {
struct Model;
class ProbeRecorder;
class Tokenizer;
class StreamDecoder;
class Session;
}  // namespace mamba

namespace studio {

class EngineWorker : public QObject {
  Q_OBJECT

 public:
  explicit EngineWorker(QObject* parent = nullptr);
  ~EngineWorker() override;

  // Thread-safe. Stop takes effect before the next token (or the prompt's next layer while it is read);
  // cancel before the next tensor is read.
  void requestStop() { m_stop.store(true); }
  void requestCancelLoad() { m_cancelLoad.store(true); }

  // Test seam: use a model that is already in memory. Must run on the worker thread (queue a functor).
  void adoptModel(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer, const QString& label);

 public slots:
  void probeDevices();
  void loadModel(const QString& dir);
  void setDevice(const QString& device);
  void generate(const studio::GenerationRequest& request);
  void clearSession();
  // Probes of every token run from now on (the inspection views are open), batched to probesReady.
  // Off costs nothing. `window`: positions kept (ProbeRecorder's bounded ring).
  void setProbesEnabled(bool on);

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

 private:
  void install(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer, const QString& dir,
               const QString& label, double loadSeconds);
  std::vector<int32_t> promptIds(const QString& prompt) const;
  QString tokenText(int32_t id) const;
  void resetProbes();
  void flushProbes(bool force);

  QString m_device = QStringLiteral("cpu");
  std::shared_ptr<const mamba::Model> m_model;
  std::shared_ptr<const mamba::Tokenizer> m_tokenizer;
  std::unique_ptr<mamba::Session> m_session;
  std::unique_ptr<mamba::StreamDecoder> m_decoder;  // lives across Continue so split UTF-8 joins up
  ModelInfo m_info;
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_cancelLoad{false};
  bool m_probesOn = false;
  std::unique_ptr<mamba::ProbeRecorder> m_probes;  // while on: the session reports into it
  qint64 m_probesSent = 0;                         // positions already sent
  QElapsedTimer m_sinceProbes;
};

}  // namespace studio
