#pragma once
// What every inspection view shares, in one place: the model, the sequence's tokens by position, the
// probe values streamed by the worker, and the linked hover / selection. Views read it and listen to
// its signals; the main window feeds it from the worker and the transcript.
#include <QJsonObject>
#include <QObject>
#include <QSet>
#include <QString>
#include <QVector>

#include "engine/probes.h"
#include "ui/EngineTypes.h"

namespace studio {

class EngineWorker;

class InspectorContext : public QObject {
  Q_OBJECT

 public:
  struct Token {
    qint32 id = 0;
    QString text;  // as decoded (may be empty inside a split UTF-8 character)
    bool prompt = false;
    float prob = -1.f;  // model probability when generated; -1 for prompt tokens
  };
  static constexpr qint64 kProbeWindow = mamba::ProbeRecorder::kDefaultWindow;

  explicit InspectorContext(EngineWorker* worker, QObject* parent = nullptr);

  EngineWorker* worker() const { return m_worker; }  // for queued connections to engine work only
  const ModelInfo& model() const { return m_model; }
  bool hasModel() const { return m_hasModel; }
  const QVector<Token>& tokens() const { return m_tokens; }
  // A token as an axis or tooltip shows it: whitespace made visible, shortened to `maxChars`.
  QString tokenLabel(qint64 position, int maxChars = 12) const;
  // Probe values of positions [probes().first, probes().first + probes().count), as the worker sent them.
  const mamba::ProbeFrames& probes() const { return m_probes; }
  qint64 hovered() const { return m_hovered; }
  qint64 selected() const { return m_selected; }
  // The record every export carries: model (label, folder, shape), the prompt, the run settings, time.
  QJsonObject provenance() const;
  void setRunRecord(const QString& prompt, const QJsonObject& settings);

  // A view that shows probes says so while it is visible; the worker collects probes while any does.
  void setProbeUser(const QObject* view, bool wants);
  bool probesWanted() const { return !m_probeUsers.isEmpty(); }

 public slots:
  void setModel(const studio::ModelInfo& info);
  void resetSequence();
  void appendPrompt(const studio::PromptTokens& tokens);
  void appendToken(const studio::TokenData& token);
  void appendProbes(const studio::ProbeBatch& batch);
  void hover(qint64 position);  // -1: none
  void select(qint64 position);

 signals:
  void modelChanged();
  void sequenceReset();
  void tokensChanged(qint64 first);              // positions >= first were added
  void probesChanged(qint64 first, qint64 end);  // probe values of [first, end) arrived
  void hoveredChanged(qint64 position);
  void selectedChanged(qint64 position);
  void probesWantedChanged(bool on);

 private:
  void setToken(qint64 position, const Token& t);

  EngineWorker* m_worker;
  ModelInfo m_model;
  bool m_hasModel = false;
  QVector<Token> m_tokens;
  mamba::ProbeFrames m_probes;
  qint64 m_hovered = -1, m_selected = -1;
  QString m_prompt;
  QJsonObject m_settings;
  QSet<const QObject*> m_probeUsers;
};

}  // namespace studio
