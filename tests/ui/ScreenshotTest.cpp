#include "tests/ui/ScreenshotTest.h"

#include <QFileInfo>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QTest>

#include "tests/ui/TestModels.h"

namespace studio::test {

namespace {
// Not blank: real variation in brightness and more than a handful of colours.
void checkNotBlank(const QImage& image) {
  double sum = 0, sum2 = 0;
  QSet<QRgb> colours;
  const int step = 3;
  int n = 0;
  for (int y = 0; y < image.height(); y += step)
    for (int x = 0; x < image.width(); x += step) {
      const QRgb p = image.pixel(x, y);
      const double g = qGray(p);
      sum += g;
      sum2 += g * g;
      ++n;
      if (colours.size() < 1000) colours.insert(p);
    }
  const double mean = sum / n, variance = sum2 / n - mean * mean;
  QVERIFY2(variance > 50.0, qPrintable(QStringLiteral("pixel variance %1").arg(variance)));
  QVERIFY2(colours.size() > 20, qPrintable(QStringLiteral("%1 colours").arg(colours.size())));
}
}  // namespace

void ScreenshotTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("default-model"));
  writeModelFolder(*smallModel(), m_modelDir, true);
}

int ScreenshotTest::runStudio(const QStringList& args, const QString& defaultModel, QString* stderrText) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
  env.insert(QStringLiteral("MAMBA_DEFAULT_MODEL"), defaultModel);
  p.setProcessEnvironment(env);
  p.start(studioBinary(), args);
  if (!p.waitForFinished(60000)) {
    p.kill();
    return -1;
  }
  const QString err = QString::fromLocal8Bit(p.readAllStandardError());
  if (stderrText) *stderrText = err;
  if (p.exitCode() != 0) qInfo("mamba-studio said: %s", qPrintable(err));
  return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

void ScreenshotTest::windowAfterGenerating() {
  const QString png = m_tmp.filePath(QStringLiteral("window.png"));
  QCOMPARE(
      runStudio({QStringLiteral("--screenshot"), png, QStringLiteral("--prompt"), QStringLiteral("ROMEO:"), QStringLiteral("--generate"),
                 QStringLiteral("40"), QStringLiteral("--seed"), QStringLiteral("3"), QStringLiteral("--size"), QStringLiteral("1100x720")},
                m_modelDir),
      0);
  QVERIFY(QFileInfo::exists(png));
  const QImage image(png);
  QCOMPARE(image.size(), QSize(1100, 720));
  checkNotBlank(image);
}

void ScreenshotTest::namedViewWithHoverCard() {
  const QString png = m_tmp.filePath(QStringLiteral("tokens.png"));
  QCOMPARE(runStudio({QStringLiteral("--screenshot"), png, QStringLiteral("--model"), m_modelDir, QStringLiteral("--prompt"),
                      QStringLiteral("To be"), QStringLiteral("--generate"), QStringLiteral("20"), QStringLiteral("--view"),
                      QStringLiteral("tokens"), QStringLiteral("--hover-token"), QStringLiteral("2")},
                     QStringLiteral("/nonexistent")),
           0);
  const QImage image(png);
  QVERIFY(!image.isNull());
  checkNotBlank(image);
}

void ScreenshotTest::unknownViewFails() {
  QString err;
  QCOMPARE(
      runStudio({QStringLiteral("--screenshot"), m_tmp.filePath(QStringLiteral("x.png")), QStringLiteral("--view"), QStringLiteral("nope")},
                m_modelDir, &err),
      2);
  QVERIFY2(err.contains(QStringLiteral("tokens")), qPrintable(err));  // it lists the views it knows
  QVERIFY(!QFileInfo::exists(m_tmp.filePath(QStringLiteral("x.png"))));
}

void ScreenshotTest::missingDefaultModelStillRendersTheError() {
  const QString png = m_tmp.filePath(QStringLiteral("missing.png"));
  QString err;
  QCOMPARE(runStudio({QStringLiteral("--screenshot"), png, QStringLiteral("--size"), QStringLiteral("900x600")},
                     m_tmp.filePath(QStringLiteral("no-such-model")), &err),
           1);
  const QImage image(png);
  QCOMPARE(image.size(), QSize(900, 600));
  QVERIFY2(err.contains(QStringLiteral("no-such-model")), qPrintable(err));
}

}  // namespace studio::test
