#pragma once
// One colour scale for token probabilities, shared by the token view, its tooltips and the legend.
#include <QColor>

namespace studio {

// Light backgrounds, so black text stays readable on every step: red (unlikely) → amber → green (likely).
QColor probabilityColour(double p);
// Text drawn on probabilityColour(): fixed, because the backgrounds are light whatever the palette.
QColor probabilityTextColour();

}  // namespace studio
