#pragma once
// One colour scale for token probabilities, shared by the token view, its tooltips and the legend.
#include <QColor>

namespace studio {

// The scale is logarithmic from kMinProbability to 1: sampled tokens mostly sit between 0.01 and 0.5,
// and a linear scale would paint all of them the same red.
inline constexpr double kMinProbability = 0.001;
// Where p falls on the scale, 0 (kMinProbability or less) to 1 (certain).
double probabilityPosition(double p);
// Light backgrounds, so dark text stays readable on every step: red (unlikely) → amber → green (likely).
// `alternate` lightens every other token a little so neighbours of similar probability stay apart.
QColor probabilityColour(double p, bool alternate = false);
// The colour at a position on the scale (for the legend).
QColor scaleColour(double position, bool alternate = false);
// Text drawn on probabilityColour(): fixed, because the backgrounds are light whatever the palette.
QColor probabilityTextColour();

}  // namespace studio
