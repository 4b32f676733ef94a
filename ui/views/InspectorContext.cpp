#include "ui/views/InspectorContext.h"

#include <QDateTime>
#include <algorithm>

namespace studio {

InspectorContext::InspectorContext(EngineWorker* worker, QObject* parent) : QObject(parent), m_worker(worker) {}

QString InspectorContext::tokenLabel(qint64 position, int maxChars) const {
  if (position < 0 || position >= m_tokens.size()) return {};
  QString s = m_tokens[position].text;
  s.replace(QLatin1Char('\n'), QStringLiteral("↵"))
      .replace(QLatin1Char('\t'), QStringLiteral("⇥"))
      .replace(QLatin1Char(' '), QStringLiteral("·"));
  if (s.isEmpty()) s = QStringLiteral("#%1").arg(m_tokens[position].id);
  if (s.size() > maxChars) s = s.left(maxChars - 1) + QStringLiteral("…");
  return s;
}

QJsonObject InspectorContext::provenance() const {
  QJsonObject model{{QStringLiteral("label"), m_model.label},
                    {QStringLiteral("dir"), m_model.dir},
                    {QStringLiteral("summary"), m_model.summary},
                    {QStringLiteral("dtype"), m_model.dtype},
                    {QStringLiteral("backend"), m_model.backendName}};
  if (!m_model.hash.isEmpty()) model.insert(QStringLiteral("hash"), m_model.hash);
  return QJsonObject{{QStringLiteral("tool"), QStringLiteral("mamba-studio")},
                     {QStringLiteral("model"), model},
                     {QStringLiteral("prompt"), m_prompt},
                     {QStringLiteral("settings"), m_settings},
                     {QStringLiteral("tokens"), qint64(m_tokens.size())},
                     {QStringLiteral("created"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate)}};
}

void InspectorContext::setRunRecord(const QString& prompt, const QJsonObject& settings) {
  m_prompt = prompt;
  m_settings = settings;
}

void InspectorContext::setProbeUser(const QObject* view, bool wants) {
  const bool before = probesWanted();
  if (wants) m_probeUsers.insert(view);
  else m_probeUsers.remove(view);
  if (probesWanted() != before) emit probesWantedChanged(probesWanted());
}

void InspectorContext::setModel(const ModelInfo& info) {
  m_model = info;
  m_hasModel = true;
  resetSequence();
  emit modelChanged();
}

void InspectorContext::resetSequence() {
  m_tokens.clear();
  m_probes = mamba::ProbeFrames{};
  m_probes.L = m_model.layers;
  m_probes.H = m_model.heads;
  m_hovered = m_selected = -1;
  emit sequenceReset();
}

void InspectorContext::setToken(qint64 position, const Token& t) {
  if (position < 0) return;
  if (position >= m_tokens.size()) m_tokens.resize(position + 1);
  m_tokens[position] = t;
}

void InspectorContext::appendPrompt(const PromptTokens& p) {
  for (qsizetype i = 0; i < p.ids.size(); ++i) setToken(p.first + i, Token{p.ids[i], p.pieces.value(i), true, -1.f});
  emit tokensChanged(p.first);
}

void InspectorContext::appendToken(const TokenData& t) {
  setToken(t.position, Token{t.id, t.piece, false, t.prob});
  emit tokensChanged(t.position);
}

void InspectorContext::appendProbes(const ProbeBatch& b) {
  if (b.count <= 0) return;
  mamba::ProbeFrames& f = m_probes;
  const qint64 end = f.first + f.count;
  // A batch that does not continue what is held (a fresh text, a replay) starts the store again.
  if (f.count == 0 || b.first != end || b.layers != f.L || b.heads != f.H || b.groups != f.S) {
    f = mamba::ProbeFrames{};
    f.first = b.first;
    f.L = b.layers;
    f.H = b.heads;
    f.S = b.groups;
  }
  f.dt.insert(f.dt.end(), b.dt.begin(), b.dt.end());
  f.decay.insert(f.decay.end(), b.decay.begin(), b.decay.end());
  f.state_norm.insert(f.state_norm.end(), b.stateNorm.begin(), b.stateNorm.end());
  f.y_norm.insert(f.y_norm.end(), b.yNorm.begin(), b.yNorm.end());
  f.resid_norm.insert(f.resid_norm.end(), b.residNorm.begin(), b.residNorm.end());
  f.count += b.count;
  // bounded like the worker's window (ProbeRecorder::default_window): the oldest positions go
  const qint64 window = mamba::ProbeRecorder::default_window(f.L, f.H, f.S);
  if (f.count > window) {
    const qint64 drop = f.count - window, per = f.L * f.H, per_group = f.L * (f.S > 0 ? f.S : f.H);
    for (auto* v : {&f.dt, &f.decay}) v->erase(v->begin(), v->begin() + drop * per);
    for (auto* v : {&f.state_norm, &f.y_norm}) v->erase(v->begin(), v->begin() + drop * per_group);
    f.resid_norm.erase(f.resid_norm.begin(), f.resid_norm.begin() + drop * f.L);
    f.first += drop;
    f.count -= drop;
  }
  emit probesChanged(b.first, b.first + b.count);
}

void InspectorContext::hover(qint64 position) {
  if (position == m_hovered) return;
  m_hovered = position;
  emit hoveredChanged(position);
}

void InspectorContext::select(qint64 position) {
  m_selected = position;
  emit selectedChanged(position);
}

}  // namespace studio
