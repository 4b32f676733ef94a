#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// The Compare view and the worker's comparison: data, cancel, hover, export, the headless screenshot.
class CompareViewTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void workerComparesWithoutTouchingTheSession();
  void cancelMidSweepLeavesTheSessionUsable();
  void viewRendersHoversAndExports();
  void screenshotRendersWithData();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
