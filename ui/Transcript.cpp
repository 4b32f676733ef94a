#include "ui/Transcript.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

namespace studio {

namespace {
QJsonObject samplingJson(const SamplingSettings& s) {
  // names as mamba-cli generate spells its flags, so a run can be repeated from the command line
  return QJsonObject{{QStringLiteral("max_new_tokens"), s.maxNewTokens},
                     {QStringLiteral("temperature"), s.temperature},
                     {QStringLiteral("top_k"), s.topK},
                     {QStringLiteral("top_p"), s.topP},
                     {QStringLiteral("min_p"), s.minP},
                     {QStringLiteral("repeat_penalty"), s.repeatPenalty},
                     // a string: JSON numbers lose 64-bit integers in many readers
                     {QStringLiteral("seed"), QString::number(s.seed)},
                     {QStringLiteral("random_seed"), s.randomSeed}};
}
}  // namespace

QByteArray Transcript::toJson() const {
  QJsonArray runsJson;
  for (const TranscriptRun& r : runs) {
    QJsonArray ids;
    for (qint32 id : r.ids) ids.append(id);
    runsJson.append(QJsonObject{{QStringLiteral("kind"), r.kind},
                                {QStringLiteral("sampling"), samplingJson(r.sampling)},
                                {QStringLiteral("scan"), r.scan},
                                {QStringLiteral("device"), r.device},
                                {QStringLiteral("prompt_tokens"), r.promptTokens},
                                {QStringLiteral("new_tokens"), qint64(r.ids.size())},
                                {QStringLiteral("ids"), ids},
                                {QStringLiteral("stop_reason"), r.stopReason},
                                {QStringLiteral("tokens_per_second"), r.tokensPerSecond}});
  }
  const QJsonObject root{{QStringLiteral("format"), QStringLiteral("mamba-studio-transcript/1")},
                         {QStringLiteral("app_version"), QCoreApplication::applicationVersion()},
                         {QStringLiteral("saved_at"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
                         {QStringLiteral("model"), QJsonObject{{QStringLiteral("name"), modelLabel}, {QStringLiteral("dir"), modelDir}}},
                         {QStringLiteral("prompt"), prompt},
                         {QStringLiteral("text"), text},
                         {QStringLiteral("runs"), runsJson}};
  return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

QString Transcript::save(const QString& path) const {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return file.errorString();
  const QByteArray bytes = path.endsWith(QLatin1String(".txt"), Qt::CaseInsensitive) ? text.toUtf8() : toJson();
  // flush() before commit(): QSaveFile::commit() misses a failing final flush (Qt 6.4), so a full disk
  // with the tail still buffered would otherwise replace the old file with a truncated one.
  if (file.write(bytes) != bytes.size() || !file.flush()) {
    const QString error = file.errorString();
    file.cancelWriting();
    return error;
  }
  if (!file.commit()) return file.errorString();
  return {};
}

}  // namespace studio
