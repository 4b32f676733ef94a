#include "ui/EngineWorker.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QRegularExpression>
#include <new>

#include "backends/backend_factory.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/probes.h"
#include "engine/session.h"
#include "engine/tokenizer.h"
#include "ui/SnapshotStore.h"

namespace studio {

namespace {

constexpr int kAlternatives = 10;

mamba::BackendOptions backendOptions(const QString& device) {
  mamba::BackendOptions bo;
  bo.dtype = device == QLatin1String("cuda") ? "bf16" : "f32";  // as mamba-cli picks by default
  return bo;
}

// One sentence with the cause, for the error banner.
QString describe(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return QObject::tr("out of memory");
  return QString::fromStdString(e.what());
}

}  // namespace

EngineWorker::EngineWorker(QObject* parent) : QObject(parent) {}
EngineWorker::~EngineWorker() = default;

void EngineWorker::probeDevices() {
  std::string why;
  DeviceInfo info;
  info.cudaAvailable = mamba::cuda_available(&why);
  info.cudaWhyNot = QString::fromStdString(why);
  emit devicesProbed(info);
}

void EngineWorker::loadModel(const QString& dir) {
  m_cancelLoad.store(false);
  emit loadStarted(dir);
  QElapsedTimer timer;
  timer.start();
  try {
    mamba::LoadOptions lo;
    lo.cancel = &m_cancelLoad;
    int lastPermille = -1;
    lo.progress = [&](uint64_t done, uint64_t total) {
      // per tensor is too often for a progress bar on big checkpoints; per mille is enough
      const int permille = total ? int(1000 * done / total) : 1000;
      if (permille == lastPermille) return;
      lastPermille = permille;
      emit loadProgressChanged(qint64(done), qint64(total));
    };
    const QFileInfo fi(dir);
    const std::string path = fi.absoluteFilePath().toStdString();
    mamba::Checkpoint ck = mamba::load_checkpoint(path, lo);
    if (m_cancelLoad.load()) throw mamba::Error(path + ": loading cancelled");
    install(std::move(ck.model), std::move(ck.tokenizer), fi.absoluteFilePath(), fi.fileName(), timer.elapsed() / 1000.0,
            QString::fromStdString(ck.tokenizer_source));
  } catch (const std::exception& e) {
    // the previous model, tokenizer and session are untouched
    emit loadFailed(dir, describe(e));
  }
}

void EngineWorker::adoptModel(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer,
                              const QString& label) {
  try {
    install(std::move(model), std::move(tokenizer), QString(), label, 0.0);
  } catch (const std::exception& e) {
    emit loadFailed(label, describe(e));
  }
}

void EngineWorker::install(std::shared_ptr<const mamba::Model> model, std::shared_ptr<const mamba::Tokenizer> tokenizer, const QString& dir,
                           const QString& label, double loadSeconds, const QString& tokenizerSource) {
  // Build everything first so a failure (e.g. CUDA out of memory) leaves the old model in place.
  auto session = std::make_unique<mamba::Session>(mamba::make_backend(m_device.toStdString(), model, backendOptions(m_device)));
  const mamba::Config& c = model->config;
  ModelInfo info;
  info.dir = dir;
  info.label = label;
  info.arch = QString::fromLatin1(mamba::arch_name(c.arch));
  info.format = QString::fromStdString(model->format);
  info.tokenizerSource = !tokenizerSource.isEmpty() ? tokenizerSource
                         : tokenizer                ? tr("given with the model")
                                                    : tr("none: prompts are token ids");
  info.dInner = c.d_inner;
  info.dtRank = c.dt_rank;
  info.vocabValid = c.vocab_valid;
  info.layers = c.n_layer;
  info.dModel = c.d_model;
  info.heads = c.n_heads;
  info.headDim = c.head_dim;
  info.dState = c.d_state;
  info.groups = c.n_groups;
  info.convKernel = c.d_conv;
  info.chunkSize = c.chunk_size;
  info.vocabSize = c.vocab_size;
  info.params = c.n_params();
  info.tokenizerVocab = tokenizer ? tokenizer->vocab_size() : 0;
  info.tiedEmbeddings = c.tie_embeddings;
  info.dtype = QString::fromStdString(model->source_dtype);
  info.fileBytes = model->file_bytes;
  info.stateBytes = quint64(c.n_layer * c.state_floats_per_layer()) * sizeof(float);
  info.loadSeconds = loadSeconds;
  info.backendName = QString::fromStdString(session->backend().name());
  info.summary = QString::fromStdString(c.summary());
  info.hash = QString::fromStdString(model->identity());  // computed once per model; snapshots reuse it

  m_session = std::move(session);
  m_session->set_checkpoints(checkpointEvery());
  m_model = std::move(model);
  m_tokenizer = std::move(tokenizer);
  m_decoder = m_tokenizer ? std::make_unique<mamba::StreamDecoder>(*m_tokenizer) : nullptr;
  m_info = info;
  m_matrixCapture.reset();
  m_matrix = MatrixResult{};
  resetProbes();
  emit modelChanged(info);
  snapshotsAfterModelChange();
}

qint64 EngineWorker::checkpointEvery() const {
  if (m_checkpointEvery >= 0) return m_checkpointEvery;
  return m_device == QLatin1String("cuda") ? kCheckpointEveryGpu : kCheckpointEveryCpu;
}

void EngineWorker::setDevice(const QString& device) {
  if (!m_model) {
    // nothing to rebuild yet; still refuse a device this machine cannot use
    std::string why;
    if (device == QLatin1String("cuda") && !mamba::cuda_available(&why)) {
      emit deviceFailed(device, QString::fromStdString("CUDA is not available: " + why));
      return;
    }
    m_device = device;
    emit deviceChanged(device, QString());
    return;
  }
  try {
    auto session = std::make_unique<mamba::Session>(mamba::make_backend(device.toStdString(), m_model, backendOptions(device)));
    // Carry the conversation over: the state is plain host floats, valid on any backend.
    bool kept = false;
    if (m_session && !m_session->tokens().empty() && !m_session->pending().empty()) {
      // as a snapshot, so the sampler and any dt edits come along (a backend that cannot run the edits
      // refuses, and the old device stays)
      session->restore_snapshot(m_session->snapshot(), "the sequence on " + m_session->backend().name());
      kept = true;
    }
    m_session = std::move(session);
    m_session->set_probes(m_probes.get());
    m_device = device;
    m_session->set_checkpoints(checkpointEvery());  // earlier tokens were run on the other device
    m_info.backendName = QString::fromStdString(m_session->backend().name());
    emit deviceChanged(device, m_info.backendName);
    reportCheckpoints();
    if (!kept) {
      sessionRestarted();
      if (m_decoder) m_decoder->reset();
      emit sessionCleared();
    }
  } catch (const std::exception& e) {
    emit deviceFailed(device, describe(e));
  }
}

void EngineWorker::clearSession() {
  if (m_session) m_session->reset();
  sessionRestarted();
  if (m_decoder) m_decoder->reset();
  if (m_probes) m_probes->clear();
  m_probesSent = 0;
  emit sessionCleared();
}

void EngineWorker::setProbesEnabled(bool on) {
  if (on == m_probesOn) return;
  m_probesOn = on;
  resetProbes();
  if (!on || !m_session) return;
  // Tokens already run had no probes: run them again through a scratch backend on the same device, so
  // the views show the whole text (the live session is untouched).
  const std::vector<int32_t>& tokens = m_session->tokens();
  const size_t fed = tokens.size() - m_session->pending().size();
  if (fed == 0) return;
  try {
    auto scratch = mamba::make_backend(m_device.toStdString(), m_model, backendOptions(m_device));
    mamba::ForwardOptions fo;
    fo.probes = m_probes.get();
    scratch->forward(std::span<const int32_t>(tokens.data(), fed), fo, nullptr);
    flushProbes(true);
  } catch (const std::exception& e) {
    emit generationFailed(tr("could not compute the probes of the text so far: %1").arg(describe(e)));
  }
}

void EngineWorker::resetProbes() {
  m_probesSent = 0;
  m_probes.reset();
  if (m_probesOn && m_model)
    m_probes =
        std::make_unique<mamba::ProbeRecorder>(m_model->config, m_model->weights, mamba::ProbeRecorder::default_window(m_model->config));
  if (m_session) m_session->set_probes(m_probes.get());
}

void EngineWorker::flushProbes(bool force) {
  if (!m_probes) return;
  // Batches a few times a second: a fast GPU stream must not flood the GUI's event queue.
  if (!force && m_sinceProbes.isValid() && m_sinceProbes.elapsed() < 50) return;
  const qint64 end = m_probes->end();
  if (end <= m_probesSent && !force) return;
  const mamba::ProbeFrames f = m_probes->frames(std::min<qint64>(m_probesSent, end), end);
  m_sinceProbes.start();
  if (f.count == 0) return;
  m_probesSent = end;
  ProbeBatch b;
  b.first = f.first;
  b.count = f.count;
  b.layers = f.L;
  b.heads = f.H;
  b.groups = f.S;
  b.dt = QVector<float>(f.dt.begin(), f.dt.end());
  b.decay = QVector<float>(f.decay.begin(), f.decay.end());
  b.stateNorm = QVector<float>(f.state_norm.begin(), f.state_norm.end());
  b.yNorm = QVector<float>(f.y_norm.begin(), f.y_norm.end());
  b.residNorm = QVector<float>(f.resid_norm.begin(), f.resid_norm.end());
  emit probesReady(b);
}

std::vector<int32_t> EngineWorker::promptIds(const QString& prompt) const {
  if (m_tokenizer) return m_tokenizer->encode(prompt.toStdString());
  // Without a tokenizer the prompt is a list of ids, as mamba-cli --ids takes it.
  std::vector<int32_t> ids;
  const QStringList parts = prompt.split(QRegularExpression(QStringLiteral("[\\s,]+")), Qt::SkipEmptyParts);
  for (const QString& p : parts) {
    bool ok = false;
    const int v = p.toInt(&ok);
    if (!ok || v < 0 || v >= m_model->config.vocab_size)
      throw mamba::Error(tr("this model has no tokenizer, so the prompt must be token ids below %1; '%2' is not one")
                             .arg(m_model->config.vocab_size)
                             .arg(p)
                             .toStdString());
    ids.push_back(v);
  }
  return ids;
}

QString EngineWorker::tokenText(int32_t id) const {
  if (!m_tokenizer) return QStringLiteral("⟨%1⟩").arg(id);
  return QString::fromUtf8(m_tokenizer->token_text(id));
}

void EngineWorker::generate(const GenerationRequest& request) {
  m_stop.store(false);
  if (!m_session) {
    emit generationFailed(tr("no model is loaded"));
    return;
  }
  try {
    const bool fresh = request.kind == GenerationRequest::Kind::Fresh;
    std::vector<int32_t> prompt;
    if (fresh) {
      prompt = promptIds(request.prompt);
      if (prompt.empty()) throw mamba::Error(tr("the prompt is empty").toStdString());
      m_session->reset();
      sessionRestarted();
      if (m_decoder) m_decoder->reset();
      m_probesSent = 0;
    } else if (m_session->tokens().empty()) {
      throw mamba::Error(tr("nothing to continue: generate first").toStdString());
    } else if (!request.prompt.isEmpty()) {
      prompt = promptIds(request.prompt);  // text appended before continuing
    }

    // Exactly the options mamba-cli generate builds, so the same seed gives the same ids.
    mamba::GenerateOptions go;
    const SamplingSettings& s = request.sampling;
    go.max_new_tokens = s.maxNewTokens;
    go.sampling.temperature = float(s.temperature);
    go.sampling.top_k = s.topK;
    go.sampling.top_p = float(s.topP);
    go.sampling.min_p = float(s.minP);
    go.sampling.repeat_penalty = float(s.repeatPenalty);
    go.sampling.seed = s.seed;
    go.scan = mamba::parse_scan(request.scan.toStdString());
    if (m_tokenizer) {
      go.sampling.n_valid = m_tokenizer->vocab_size();
      if (auto e = m_tokenizer->eos_id()) go.eos_id = *e;
    }
    go.top_alternatives = kAlternatives;
    if (request.keepSampler && m_session->sampler()) {
      // the sampler and generator as they are (a restored snapshot's): an exact continuation
      const mamba::SamplerParams n = go.sampling;
      go.sampling = m_session->sampler()->params();
      go.sampling.n_valid = n.n_valid;
      go.reseed = false;
    }
    int lastPermille = -1;
    go.prefill_progress = [&](int64_t done, int64_t total) {
      const int permille = total ? int(1000 * done / total) : 1000;
      if (permille == lastPermille) return;
      lastPermille = permille;
      emit prefillProgressChanged(qint64(done), qint64(total));
    };

    emit generationStarted(qint64(prompt.size()));
    if (!prompt.empty()) {
      PromptTokens pt;
      pt.first = qint64(m_session->tokens().size());
      pt.ids = QVector<qint32>(prompt.begin(), prompt.end());
      std::unique_ptr<mamba::StreamDecoder> dec = m_tokenizer ? std::make_unique<mamba::StreamDecoder>(*m_tokenizer) : nullptr;
      for (int32_t id : prompt) pt.pieces.push_back(dec ? QString::fromUtf8(dec->push(id)) : tokenText(id) + QLatin1Char(' '));
      emit promptTokenized(pt);
    }
    m_sinceProbes.invalidate();
    QElapsedTimer sinceFirst;
    const mamba::GenerateResult r = m_session->generate(
        prompt, go,
        [&](const mamba::TokenEvent& ev) {
          TokenData t;
          t.index = ev.index;
          t.position = qint64(m_session->tokens().size()) - 1;
          t.id = ev.id;
          t.prob = ev.info.prob;
          if (m_decoder) t.piece = QString::fromUtf8(m_decoder->push(ev.id));
          else t.piece = tokenText(ev.id) + QLatin1Char(' ');
          t.alternatives.reserve(qsizetype(ev.info.top.size()));
          for (const auto& [id, p] : ev.info.top) t.alternatives.push_back({id, tokenText(id), p});
          if (ev.index == 0) sinceFirst.start();
          else t.tokensPerSecond = double(ev.index) / std::max(1e-9, sinceFirst.nsecsElapsed() / 1e9);
          emit tokenGenerated(t);
          flushProbes(false);
        },
        &m_stop);
    flushProbes(true);

    GenerationStats st;
    st.promptTokens = r.prompt_tokens;
    st.newTokens = qint64(r.ids.size());
    st.prefillSeconds = r.prefill_seconds;
    st.decodeSeconds = r.decode_seconds;
    st.tokensPerSecond = r.ids.size() > 1 ? double(r.ids.size() - 1) / std::max(1e-9, r.decode_seconds) : 0.0;
    st.totalTokens = qint64(m_session->tokens().size());
    st.stopReason = QString::fromStdString(r.stop_reason);
    emit generationFinished(st);
  } catch (const std::exception& e) {
    emit generationFailed(describe(e));
  }
}

}  // namespace studio
