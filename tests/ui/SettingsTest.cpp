#include "tests/ui/SettingsTest.h"

#include <QComboBox>
#include <QTest>

#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"

namespace studio::test {

void SettingsTest::initTestCase() { QVERIFY(m_tmp.isValid()); }

void SettingsTest::roundTrip() {
  const QString ini = m_tmp.filePath(QStringLiteral("round.ini"));
  SamplingSettings s;
  s.maxNewTokens = 321;
  s.temperature = 0.55;
  s.topK = 17;
  s.topP = 0.9;
  s.minP = 0.05;
  s.repeatPenalty = 1.3;
  s.seed = 18446744073709551557ull;  // needs all 64 bits
  s.randomSeed = false;
  {
    StudioSettings a(ini);
    a.setSampling(s);
    a.setDevice(QStringLiteral("cuda"));
    a.setScan(QStringLiteral("recurrent"));
    a.setColourByProbability(false);
    a.setLastModel(QStringLiteral("/models/x"));
    a.setGeometry(QByteArray("geometry-bytes"));
    a.setWindowState(QByteArray("\x01\x02\x00\x03", 4));
    a.sync();
  }
  StudioSettings b(ini);
  QCOMPARE(b.sampling(), s);
  QCOMPARE(b.device(), QStringLiteral("cuda"));
  QCOMPARE(b.scan(), QStringLiteral("recurrent"));
  QCOMPARE(b.colourByProbability(), false);
  QCOMPARE(b.lastModel(), QStringLiteral("/models/x"));
  QCOMPARE(b.geometry(), QByteArray("geometry-bytes"));
  QCOMPARE(b.windowState(), QByteArray("\x01\x02\x00\x03", 4));

  StudioSettings fresh(m_tmp.filePath(QStringLiteral("fresh.ini")));
  QCOMPARE(fresh.sampling(), SamplingSettings{});
  QCOMPARE(fresh.device(), QStringLiteral("cpu"));
}

void SettingsTest::recentModelsAreUniqueNewestFirstAndCapped() {
  StudioSettings s(m_tmp.filePath(QStringLiteral("recent.ini")));
  for (int i = 0; i < StudioSettings::kMaxRecentModels + 3; ++i) s.addRecentModel(QStringLiteral("/m/%1").arg(i));
  s.addRecentModel(QStringLiteral("/m/5"));
  const QStringList list = s.recentModels();
  QCOMPARE(list.size(), StudioSettings::kMaxRecentModels);
  QCOMPARE(list.first(), QStringLiteral("/m/5"));
  QCOMPARE(list.count(QStringLiteral("/m/5")), 1);
  QVERIFY(!list.contains(QStringLiteral("/m/0")));
  s.removeRecentModel(QStringLiteral("/m/5"));
  QVERIFY(!s.recentModels().contains(QStringLiteral("/m/5")));
}

void SettingsTest::windowRestoresSamplingGeometryAndScan() {
  const QString ini = m_tmp.filePath(QStringLiteral("window.ini"));
  SamplingSettings s;
  s.maxNewTokens = 64;
  s.temperature = 1.25;
  s.topK = 12;
  s.topP = 0.8;
  s.minP = 0.1;
  s.repeatPenalty = 1.15;
  s.seed = 99;
  s.randomSeed = false;
  {
    StudioSettings settings(ini);
    MainWindow w(&settings);
    w.show();
    w.resize(1000, 650);
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.samplingPanel()->setSettings(s);
    for (QComboBox* c : w.findChildren<QComboBox*>())
      if (c->findData(QStringLiteral("recurrent")) >= 0) c->setCurrentIndex(c->findData(QStringLiteral("recurrent")));
    w.close();
  }
  StudioSettings settings(ini);
  QCOMPARE(settings.sampling(), s);
  QCOMPARE(settings.scan(), QStringLiteral("recurrent"));
  MainWindow w(&settings);
  QCOMPARE(w.samplingPanel()->settings(), s);
  QCOMPARE(w.size(), QSize(1000, 650));
}

}  // namespace studio::test
