#include "ui/TokenTooltip.h"

#include <QObject>
#include <algorithm>

#include "ui/ProbabilityColors.h"

namespace studio {

QString visibleTokenText(const QString& text) {
  if (text.isEmpty()) return QStringLiteral("∅");
  QString out;
  out.reserve(text.size());
  for (qsizetype i = 0; i < text.size(); ++i) {
    const QChar c = text.at(i);
    if (c == QLatin1Char('\n')) out += QStringLiteral("↵");
    else if (c == QLatin1Char('\t')) out += QStringLiteral("⇥");
    else if (c == QLatin1Char('\r')) out += QStringLiteral("␍");
    // spaces matter in BPE tokens (" the" vs "the") but vanish in a tooltip, so mark them all
    else if (c == QLatin1Char(' ')) out += QStringLiteral("␣");
    else out += c;
  }
  return out;
}

namespace {
QString probText(float p) {
  if (p >= 0.001f) return QString::number(double(p), 'f', 3);
  return QString::number(double(p), 'e', 1);
}

QString swatch(float p) {
  return QStringLiteral("<span style=\"background:%1; color:%2\">&nbsp;%3&nbsp;</span>")
      .arg(probabilityColour(p).name(), probabilityTextColour().name(), probText(p));
}
}  // namespace

QString tokenTooltipHtml(const TokenData& token) {
  QString chosenText;
  for (const TokenAlternative& a : token.alternatives)
    if (a.id == token.id) chosenText = a.text;
  if (chosenText.isEmpty()) chosenText = token.piece;

  if (token.prob < 0)  // a prompt token: the model read it, it did not choose it
    return QStringLiteral("<p style=\"white-space:pre\"><b><tt>%1</tt></b> &nbsp; id <b>%2</b> &nbsp; prompt token %3</p>")
        .arg(visibleTokenText(chosenText).toHtmlEscaped(), QString::number(token.id), QString::number(token.position));
  QString html = QStringLiteral("<p style=\"white-space:pre\"><b><tt>%1</tt></b> &nbsp; id <b>%2</b> &nbsp; p %3 &nbsp; position %4</p>")
                     .arg(visibleTokenText(chosenText).toHtmlEscaped(), QString::number(token.id), swatch(token.prob),
                          QString::number(token.position));
  if (token.alternatives.isEmpty()) return html;
  html += QStringLiteral(
      "<table cellspacing=\"0\" cellpadding=\"1\">"
      "<tr><th align=\"right\">#</th><th align=\"left\">&nbsp;token</th>"
      "<th align=\"right\">id</th><th align=\"right\">p</th></tr>");
  int rank = 1;
  for (const TokenAlternative& a : token.alternatives) {
    const bool chosen = a.id == token.id;
    const QString open = chosen ? QStringLiteral("<b>") : QString();
    const QString close = chosen ? QStringLiteral("</b>") : QString();
    html += QStringLiteral(
                "<tr><td align=\"right\">%1%2%3</td><td style=\"white-space:pre\">&nbsp;%1<tt>%4</tt>%3&nbsp;</td>"
                "<td align=\"right\">%1%5%3&nbsp;</td><td align=\"right\">%6</td></tr>")
                // one multi-arg pass: token text may itself contain "%2" and must not be substituted into
                .arg(open, QString::number(rank++), close, visibleTokenText(a.text).toHtmlEscaped(), QString::number(a.id), swatch(a.prob));
  }
  html += QStringLiteral("</table>");
  const bool inTop =
      std::any_of(token.alternatives.begin(), token.alternatives.end(), [&](const TokenAlternative& a) { return a.id == token.id; });
  if (!inTop) html += QObject::tr("<p><i>The sampled token is not among the %1 most likely.</i></p>").arg(token.alternatives.size());
  return html;
}

}  // namespace studio
