#pragma once
// What the studio remembers between runs, over QSettings: window layout, models, sampling, device.
#include <QByteArray>
#include <QSettings>
#include <QString>
#include <QStringList>
#include <memory>

#include "ui/EngineTypes.h"

namespace studio {

class StudioSettings {
 public:
  static constexpr int kMaxRecentModels = 8;

  // The user's settings (organisation and application names come from QCoreApplication).
  StudioSettings();
  // Settings kept in one INI file: tests, and --screenshot runs that must not read or touch the user's.
  explicit StudioSettings(const QString& iniPath);

  SamplingSettings sampling() const;
  void setSampling(const SamplingSettings& s);

  QString device() const;  // "cpu" | "cuda"
  void setDevice(const QString& device);
  QString scan() const;  // "chunked" | "recurrent"
  void setScan(const QString& scan);
  bool colourByProbability() const;
  void setColourByProbability(bool on);

  QString lastModel() const;
  void setLastModel(const QString& dir);
  QStringList recentModels() const;  // most recent first
  void addRecentModel(const QString& dir);
  void removeRecentModel(const QString& dir);

  QByteArray geometry() const;
  void setGeometry(const QByteArray& g);
  QByteArray windowState() const;
  void setWindowState(const QByteArray& s);

  void sync();

 private:
  std::unique_ptr<QSettings> m_settings;
};

}  // namespace studio
