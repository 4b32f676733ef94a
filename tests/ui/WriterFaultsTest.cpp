#include "tests/ui/WriterFaultsTest.h"

#include <sys/resource.h>

#include <qcustomplot.h>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>
#include <csignal>
#include <functional>

#include "tests/ui/TestModels.h"
#include "ui/Transcript.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotExport.h"

namespace studio::test {

namespace {

// The GUI's writers, each given a path and asked for well over 4 KB of output.
struct Writer {
  const char* name;
  const char* suffix;
  std::function<QString(const QString& path)> write;  // "" or the error
};

// Outputs of 6-8 KB stay in the file's write buffer until commit; those of 20 KB and more are written
// while they are produced. Both must fail on a disk with 4 KB left.
std::vector<Writer> writers(QCustomPlot* plot) {
  Transcript small, large;
  small.text = QString(6000, QLatin1Char('x'));
  large.text = QString(40000, QLatin1Char('x'));
  small.runs.push_back({});
  Table table;
  table.columns = {QStringLiteral("a"), QStringLiteral("b")};
  for (int i = 0; i < 3000; ++i) table.rows.push_back({QString::number(i), QString::number(i * 0.5)});
  const QJsonObject record{{QStringLiteral("model"), QString(8000, QLatin1Char('m'))}};
  return {
      {"small transcript json", ".json", [small](const QString& p) { return small.save(p); }},
      {"small transcript text", ".txt", [small](const QString& p) { return small.save(p); }},
      {"large transcript text", ".txt", [large](const QString& p) { return large.save(p); }},
      {"plot png", ".png", [plot](const QString& p) { return savePlot(plot, p); }},
      {"plot svg", ".svg", [plot](const QString& p) { return savePlot(plot, p); }},
      {"plot pdf", ".pdf", [plot](const QString& p) { return savePlot(plot, p); }},
      {"table csv", ".csv", [table, record](const QString& p) { return saveTableCsv(table, record, p); }},
      {"record json", ".json", [record](const QString& p) { return saveRecordSidecar(record, p); }},
  };
}

QCustomPlot* makePlot() {
  auto* plot = new QCustomPlot;
  plot->resize(900, 600);
  QVector<double> x, y;
  for (int i = 0; i < 5000; ++i) {  // enough points that every format writes well over 4 KB
    x.push_back(i);
    y.push_back(std::sin(i * 0.01) * i);
  }
  plot->addGraph()->setData(x, y);
  plot->rescaleAxes();
  return plot;
}

QByteArray readAll(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray("<unreadable>");
}

}  // namespace

void WriterFaultsTest::fullDiskKeepsOldFiles() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  std::unique_ptr<QCustomPlot> plot(makePlot());
  int i = 0;
  for (const Writer& w : writers(plot.get())) {
    const QString sub = dir.filePath(QString::number(i++));
    QVERIFY(QDir().mkpath(sub));
    const QString path = sub + QStringLiteral("/out") + QLatin1String(w.suffix);
    {
      QFile old(path);
      QVERIFY(old.open(QIODevice::WriteOnly));
      old.write("old contents");
    }
    // The file-size limit stands in for a full disk: writes past it fail (EFBIG) as they would (ENOSPC).
    rlimit before{};
    QCOMPARE(::getrlimit(RLIMIT_FSIZE, &before), 0);
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = before;
    small.rlim_cur = 4096;
    QCOMPARE(::setrlimit(RLIMIT_FSIZE, &small), 0);
    const QString error = w.write(path);
    ::setrlimit(RLIMIT_FSIZE, &before);
    std::signal(SIGXFSZ, previous);
    QVERIFY2(
        !error.isEmpty(),
        qPrintable(QStringLiteral("%1 reported success; the file has %2 bytes").arg(QLatin1String(w.name)).arg(QFileInfo(path).size())));
    QCOMPARE(readAll(path), QByteArray("old contents"));
    const QStringList left = QDir(sub).entryList(QDir::Files | QDir::Hidden);
    QVERIFY2(left == QStringList{QStringLiteral("out") + QLatin1String(w.suffix)}, qPrintable(left.join(u',')));
    // and with room again, the same writer succeeds
    QVERIFY2(w.write(path).isEmpty(), w.name);
    QVERIFY(readAll(path) != QByteArray("old contents"));
  }
}

void WriterFaultsTest::readOnlyFolderIsReported() {
  std::unique_ptr<QCustomPlot> plot(makePlot());
  // /proc refuses new files even to root (these tests may run as root, where permissions do not bind).
  for (const Writer& w : writers(plot.get())) {
    const QString path = QStringLiteral("/proc/mamba_studio_test") + QLatin1String(w.suffix);
    QVERIFY2(!w.write(path).isEmpty(), w.name);
    QVERIFY(!QFile::exists(path));
  }
  // mamba-studio --screenshot into such a folder: exit status 2 and the file named
  QProcess studio;
  studio.start(studioBinary(), {QStringLiteral("--screenshot"), QStringLiteral("/proc/mamba_studio_test.png")});
  QVERIFY(studio.waitForFinished(60000));
  QCOMPARE(studio.exitCode(), 2);
  QVERIFY2(studio.readAllStandardError().contains("could not write /proc/mamba_studio_test.png"), "the error names the file");
}

}  // namespace studio::test
