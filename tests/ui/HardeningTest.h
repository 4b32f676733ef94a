#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// Hostile input and cancellation through the GUI's worker: broken model folders (a few here, and every case
// of the malformed-model suite, tests/hostile_models.h) leave the previous model usable, a long prompt's prefill reports progress and stops
// on request, random stops and load cancels never wedge the worker; out-of-range mamba-studio options are refused.
class HardeningTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void brokenFoldersKeepPreviousModel();
  void malformedModelSuiteThroughTheWorker();
  void longPromptPrefillReportsProgressAndStops();
  void randomStopsAndCancels();
  void studioOptionsAreBounded();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
