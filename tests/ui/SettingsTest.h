#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// What the studio remembers: written by one instance, read back by the next.
class SettingsTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void roundTrip();
  void recentModelsAreUniqueNewestFirstAndCapped();
  void windowRestoresSamplingGeometryAndScan();

 private:
  QTemporaryDir m_tmp;
};

}  // namespace studio::test
