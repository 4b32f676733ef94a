#include "ProbabilityColors.h"

#include <algorithm>

namespace studio {

QColor probabilityColour(double p) {
  p = std::clamp(p, 0.0, 1.0);
  // hue 0 (red) to 120 (green); most sampled tokens sit between 0.05 and 0.9, where the hue moves fastest
  return QColor::fromHslF(float(p * 120.0 / 360.0), 0.75f, 0.80f);
}

QColor probabilityTextColour() { return QColor(0x20, 0x20, 0x20); }

}  // namespace studio
