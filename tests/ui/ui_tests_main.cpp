// One executable for every GUI test class; each runs in the same QApplication.
#include <QApplication>
#include <QStandardPaths>
#include <QTest>

#include "tests/ui/CompareViewTest.h"
#include "tests/ui/EngineWorkerTest.h"
#include "tests/ui/HardeningTest.h"
#include "tests/ui/InspectorTest.h"
#include "tests/ui/MainWindowTest.h"
#include "tests/ui/ScreenshotTest.h"
#include "tests/ui/SettingsTest.h"
#include "tests/ui/SnapshotPanelTest.h"
#include "tests/ui/WriterFaultsTest.h"
#include "ui/EngineTypes.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("MambaStudioTests"));
  QApplication::setApplicationName(QStringLiteral("ui_tests"));
  QStandardPaths::setTestModeEnabled(true);  // never touch a real user's files
  studio::registerEngineMetaTypes();

  int failures = 0;
  // UI_TESTS_CLASS=MainWindowTest runs one class (then test function names may follow on the command line)
  const QString only = qEnvironmentVariable("UI_TESTS_CLASS");
  auto run = [&](QObject&& test) {
    const QString name = QString::fromLatin1(test.metaObject()->className()).section(QStringLiteral("::"), -1);
    if (only.isEmpty() || only == name) failures += QTest::qExec(&test, argc, argv);
  };
  run(studio::test::SettingsTest{});
  run(studio::test::EngineWorkerTest{});
  run(studio::test::MainWindowTest{});
  run(studio::test::ScreenshotTest{});
  run(studio::test::InspectorTest{});
  run(studio::test::CompareViewTest{});
  run(studio::test::SnapshotPanelTest{});
  run(studio::test::HardeningTest{});
  run(studio::test::WriterFaultsTest{});
  return failures == 0 ? 0 : 1;
}
