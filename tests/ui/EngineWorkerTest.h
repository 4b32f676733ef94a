#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// The worker against the engine: same ids as a direct Session and as mamba-cli, stop latency,
// a responsive GUI thread while decoding, failed and cancelled loads keeping the old model.
class EngineWorkerTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void streamsSameIdsAsDirectSession();
  void matchesCliGenerate_data();
  void matchesCliGenerate();
  void continueExtendsTheSequence();
  void stopEndsGenerationWithin200ms();
  void malformedFolderKeepsPreviousModel();
  void cancelledLoadKeepsPreviousModel();
  void promptOfIdsWithoutTokenizer();
  void opensEveryCheckpointFormat();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
