#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// The Snapshots panel as a person uses it, against the real worker: take (now, at a picked or typed
// token), restore and branch exactly, diff, each state edit doing what it says, files in and out, every
// refusal leaving things as they were, and the headless capture of the demo.
class SnapshotPanelTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void takeRestoreAndBranchContinueExactly();
  void snapshotAtAPickedOrTypedToken();
  void diffShowsPerHeadDistance();
  void zeroAndCopyEditsDoWhatTheySay();
  void dtEditShowsInTheBranchTraces();
  void exportImportRenameDelete();
  void refusalsLeaveEverythingAsItWas();
  void screenshotOfTheDemo();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir, m_otherDir;
};

}  // namespace studio::test
