#pragma once
// The sampling controls. Ranges match what the engine's SamplerParams::validate accepts,
// so a value the panel allows never comes back as an error.
#include <QWidget>

#include "ui/EngineTypes.h"

class QCheckBox;
class QDoubleSpinBox;
class QLineEdit;
class QSpinBox;

namespace studio {

class SamplingPanel : public QWidget {
  Q_OBJECT

 public:
  explicit SamplingPanel(QWidget* parent = nullptr);

  SamplingSettings settings() const;
  void setSettings(const SamplingSettings& s);
  // Shows the seed a run actually used (after a random draw) without touching the random toggle.
  void showSeed(quint64 seed);

 public slots:
  void applyGreedyPreset();
  void applyDefaults();

 signals:
  void settingsChanged();

 private:
  QSpinBox* m_maxNewTokens = nullptr;
  QDoubleSpinBox* m_temperature = nullptr;
  QSpinBox* m_topK = nullptr;
  QDoubleSpinBox* m_topP = nullptr;
  QDoubleSpinBox* m_minP = nullptr;
  QDoubleSpinBox* m_repeatPenalty = nullptr;
  QLineEdit* m_seed = nullptr;
  QCheckBox* m_randomSeed = nullptr;
};

}  // namespace studio
