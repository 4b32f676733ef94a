#pragma once
// A transcript: the text plus everything needed to produce it again (model, prompt, every run's
// settings, seed and ids), as JSON for saving and plain text for the clipboard.
#include <QByteArray>
#include <QString>
#include <QVector>

#include "ui/EngineTypes.h"

namespace studio {

struct TranscriptRun {
  QString kind;  // "generate" | "continue"
  SamplingSettings sampling;
  QString scan;
  QString device;
  qint64 promptTokens = 0;
  QVector<qint32> ids;
  QString stopReason;
  double tokensPerSecond = 0;
};

struct Transcript {
  QString modelLabel;
  QString modelDir;
  QString prompt;
  QString text;  // prompt + everything generated, as shown
  QVector<TranscriptRun> runs;

  bool isEmpty() const { return runs.isEmpty(); }
  QByteArray toJson() const;
  // Atomic: the file is either the old one or the complete new one (QSaveFile). "" on success.
  QString save(const QString& path) const;
};

}  // namespace studio
