#include "ui/EngineThread.h"

#include "ui/EngineTypes.h"
#include "ui/EngineWorker.h"

namespace studio {

EngineThread::EngineThread(QObject* parent) : QObject(parent) {
  registerEngineMetaTypes();
  qRegisterMetaType<CompareRequest>();
  qRegisterMetaType<CompareData>();
  m_worker = std::make_unique<EngineWorker>();
  m_worker->moveToThread(&m_thread);
  m_thread.setObjectName(QStringLiteral("mamba-engine"));
  m_thread.start();
}

EngineThread::~EngineThread() {
  m_worker->requestStop();
  m_worker->requestCancelLoad();
  m_worker->requestCancelCompare();
  m_thread.quit();
  m_thread.wait();
  m_worker.reset();  // its thread has finished, so nothing can be running in it
}

}  // namespace studio
