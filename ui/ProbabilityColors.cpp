#include "ui/ProbabilityColors.h"

#include <algorithm>
#include <cmath>

namespace studio {

double probabilityPosition(double p) {
  if (!(p > kMinProbability)) return 0.0;
  return std::clamp(1.0 - std::log10(p) / std::log10(kMinProbability), 0.0, 1.0);
}

QColor scaleColour(double position, bool alternate) {
  position = std::clamp(position, 0.0, 1.0);
  // hue 0 (red) to 120 (green) carries the probability; lightness only marks the token boundary
  return QColor::fromHslF(float(position * 120.0 / 360.0), 0.75f, alternate ? 0.86f : 0.79f);
}

QColor probabilityColour(double p, bool alternate) { return scaleColour(probabilityPosition(p), alternate); }

QColor probabilityTextColour() { return QColor(0x20, 0x20, 0x20); }

}  // namespace studio
