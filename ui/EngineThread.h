#pragma once
// The engine's thread and the worker on it, started together and stopped together: destroying this
// stops any generation or load, waits for the thread, then deletes the worker.
#include <QObject>
#include <QThread>
#include <memory>

namespace studio {

class EngineWorker;

class EngineThread : public QObject {
  Q_OBJECT

 public:
  explicit EngineThread(QObject* parent = nullptr);
  ~EngineThread() override;

  // Lives on the engine thread: connect to its slots (queued), never call them directly.
  EngineWorker* worker() const { return m_worker.get(); }

 private:
  QThread m_thread;
  std::unique_ptr<EngineWorker> m_worker;  // destroyed only after its thread has stopped
};

}  // namespace studio
