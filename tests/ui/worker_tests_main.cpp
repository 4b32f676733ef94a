// The worker's tests without the widgets, for the ThreadSanitizer build (tools/sanitize.sh): every test
// function of HardeningTest and EngineWorkerTest but two — the one that runs mamba-cli (not built there)
// and the one that bounds stop latency in milliseconds (TSan makes everything 5-15 times slower).
#include <QApplication>
#include <QMetaMethod>
#include <QStandardPaths>
#include <QTest>

#include "tests/ui/EngineWorkerTest.h"
#include "tests/ui/HardeningTest.h"
#include "ui/EngineTypes.h"

namespace {

const QList<QByteArray> kSkipped = {"matchesCliGenerate", "stopEndsGenerationWithin200ms"};

// Runs every test function of `test` but the skipped ones.
int runChecked(QObject& test, const char* argv0) {
  QList<QByteArray> names = {argv0};
  const QMetaObject* mo = test.metaObject();
  for (int i = mo->methodOffset(); i < mo->methodCount(); ++i) {
    const QMetaMethod m = mo->method(i);
    const QByteArray name = m.name();
    if (m.methodType() != QMetaMethod::Slot || m.access() != QMetaMethod::Private || name.endsWith("_data") || name == "initTestCase" ||
        name == "cleanupTestCase" || name == "init" || name == "cleanup" || kSkipped.contains(name))
      continue;
    names.push_back(name);
  }
  std::vector<char*> args;
  for (QByteArray& n : names) args.push_back(n.data());
  return QTest::qExec(&test, int(args.size()), args.data());
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("MambaStudioTests"));
  QApplication::setApplicationName(QStringLiteral("worker_tests"));
  QStandardPaths::setTestModeEnabled(true);
  studio::registerEngineMetaTypes();
  studio::test::HardeningTest hardening;
  studio::test::EngineWorkerTest worker;
  const int failures = runChecked(hardening, argv[0]) + runChecked(worker, argv[0]);
  return failures == 0 ? 0 : 1;
}
