// EngineWorker::compare: the scan comparison of the sequence's text on the worker thread, with progress
// a few times a second and cancel between pieces of work; the session itself is never touched.
#include <QElapsedTimer>
#include <new>

#include "backends/backend_factory.h"
#include "engine/compare.h"
#include "engine/session.h"
#include "ui/EngineWorker.h"

namespace studio {

void EngineWorker::compare(const CompareRequest& request) {
  m_cancelCompare.store(false);
  if (!m_model) {
    emit compareFailed(tr("no model is loaded"), false);
    return;
  }
  try {
    std::vector<int32_t> ids = m_session && !m_session->tokens().empty() ? m_session->tokens() : promptIds(request.prompt);
    if (ids.empty()) throw mamba::Error(tr("there is no text to compare yet: generate some first").toStdString());
    const bool gpu = request.gpu && mamba::cuda_available();
    mamba::CompareOptions o;
    o.chunk_size = request.chunkSize;
    o.runs = mamba::default_compare_runs(gpu ? "cuda" : "cpu", {});
    if (request.sweep) o.sweep = mamba::power_of_two_sweep(int64_t(ids.size()));
    const bool sweepGpu = gpu && request.sweepDevice == QLatin1String("cuda");
    o.sweep_device = sweepGpu ? "cuda" : "cpu";
    o.sweep_dtype = sweepGpu ? "bf16" : "f32";
    o.make_backend = [](const std::string& device, std::shared_ptr<const mamba::Model> m, const mamba::BackendOptions& bo) {
      return mamba::make_backend(device, std::move(m), bo);
    };
    o.cancel = &m_cancelCompare;
    QElapsedTimer since;
    since.start();
    o.progress = [&](double fraction, const std::string& what) {
      if (since.elapsed() < 100 && fraction < 1.0) return;  // a few updates a second are enough
      since.restart();
      emit compareProgress(fraction, QString::fromStdString(what));
    };
    emit compareStarted(qint64(ids.size()));
    const mamba::CompareResult r = mamba::compare(m_model, ids, o);
    CompareData data = toCompareData(r);
    for (int32_t id : ids) data.pieces.push_back(tokenText(id));
    emit compareFinished(data);
  } catch (const mamba::Cancelled&) {
    emit compareFailed(tr("cancelled"), true);
  } catch (const std::bad_alloc&) {
    emit compareFailed(tr("out of memory"), false);
  } catch (const std::exception& e) {
    emit compareFailed(QString::fromStdString(e.what()), false);
  }
}

}  // namespace studio
