#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// The inspection views as a person uses them: they fill in while text streams, hover links them with
// the transcript both ways, every plot exports with its provenance, probes stop when the views close,
// and the headless captures show data.
class InspectorTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void dynamicsFillsInWhileStreaming();
  void hoverLinksTranscriptAndPlotsBothWays();
  void exportWritesEveryFormatWithProvenance();
  void memoryViewRanksHeadsByHalfLife();
  void probesStopWhenTheViewsClose();
  void openingAViewLaterShowsTheWholeText();
  void screenshotsOfEveryView();
  void ssdMatrixViewComputesExplainsAndExports();
  void playgroundFollowsItsSliders();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
