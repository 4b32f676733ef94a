#include "ui/StudioSettings.h"

namespace studio {

namespace {
// Keys in one place so a rename cannot leave half the settings behind.
const QString kSampling = QStringLiteral("sampling/");
const QString kDevice = QStringLiteral("engine/device");
const QString kScan = QStringLiteral("engine/scan");
const QString kColour = QStringLiteral("view/colourByProbability");
const QString kLastModel = QStringLiteral("models/last");
const QString kRecent = QStringLiteral("models/recent");
const QString kGeometry = QStringLiteral("window/geometry");
const QString kState = QStringLiteral("window/state");
}  // namespace

StudioSettings::StudioSettings() : m_settings(std::make_unique<QSettings>()) {}

StudioSettings::StudioSettings(const QString& iniPath) : m_settings(std::make_unique<QSettings>(iniPath, QSettings::IniFormat)) {}

SamplingSettings StudioSettings::sampling() const {
  const SamplingSettings d;
  SamplingSettings s;
  const QSettings& q = *m_settings;
  s.maxNewTokens = q.value(kSampling + "maxNewTokens", d.maxNewTokens).toInt();
  s.temperature = q.value(kSampling + "temperature", d.temperature).toDouble();
  s.topK = q.value(kSampling + "topK", d.topK).toInt();
  s.topP = q.value(kSampling + "topP", d.topP).toDouble();
  s.minP = q.value(kSampling + "minP", d.minP).toDouble();
  s.repeatPenalty = q.value(kSampling + "repeatPenalty", d.repeatPenalty).toDouble();
  s.seed = q.value(kSampling + "seed", d.seed).toULongLong();
  s.randomSeed = q.value(kSampling + "randomSeed", d.randomSeed).toBool();
  return s;
}

void StudioSettings::setSampling(const SamplingSettings& s) {
  QSettings& q = *m_settings;
  q.setValue(kSampling + "maxNewTokens", s.maxNewTokens);
  q.setValue(kSampling + "temperature", s.temperature);
  q.setValue(kSampling + "topK", s.topK);
  q.setValue(kSampling + "topP", s.topP);
  q.setValue(kSampling + "minP", s.minP);
  q.setValue(kSampling + "repeatPenalty", s.repeatPenalty);
  q.setValue(kSampling + "seed", s.seed);
  q.setValue(kSampling + "randomSeed", s.randomSeed);
}

QString StudioSettings::device() const { return m_settings->value(kDevice, QStringLiteral("cpu")).toString(); }
void StudioSettings::setDevice(const QString& device) { m_settings->setValue(kDevice, device); }
QString StudioSettings::scan() const { return m_settings->value(kScan, QStringLiteral("chunked")).toString(); }
void StudioSettings::setScan(const QString& scan) { m_settings->setValue(kScan, scan); }
bool StudioSettings::colourByProbability() const { return m_settings->value(kColour, true).toBool(); }
void StudioSettings::setColourByProbability(bool on) { m_settings->setValue(kColour, on); }

QString StudioSettings::lastModel() const { return m_settings->value(kLastModel).toString(); }
void StudioSettings::setLastModel(const QString& dir) { m_settings->setValue(kLastModel, dir); }

QStringList StudioSettings::recentModels() const { return m_settings->value(kRecent).toStringList(); }

void StudioSettings::addRecentModel(const QString& dir) {
  QStringList list = recentModels();
  list.removeAll(dir);
  list.prepend(dir);
  while (list.size() > kMaxRecentModels) list.removeLast();
  m_settings->setValue(kRecent, list);
}

void StudioSettings::removeRecentModel(const QString& dir) {
  QStringList list = recentModels();
  list.removeAll(dir);
  m_settings->setValue(kRecent, list);
}

QByteArray StudioSettings::geometry() const { return m_settings->value(kGeometry).toByteArray(); }
void StudioSettings::setGeometry(const QByteArray& g) { m_settings->setValue(kGeometry, g); }
QByteArray StudioSettings::windowState() const { return m_settings->value(kState).toByteArray(); }
void StudioSettings::setWindowState(const QByteArray& s) { m_settings->setValue(kState, s); }

void StudioSettings::sync() { m_settings->sync(); }

}  // namespace studio
