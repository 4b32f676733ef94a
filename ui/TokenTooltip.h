#pragma once
// The hover card of one generated token: its text, id, probability and the model's top alternatives.
#include <QString>

#include "ui/EngineTypes.h"

namespace studio {

// A token's text with its invisible parts made visible (leading/trailing spaces, newlines, tabs).
QString visibleTokenText(const QString& text);
// Rich text for QToolTip. `piece` is what the token added to the text (may be empty mid-character).
QString tokenTooltipHtml(const TokenData& token);

}  // namespace studio
