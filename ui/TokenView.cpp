#include "ui/TokenView.h"

#include <QAbstractTextDocumentLayout>
#include <QHelpEvent>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>
#include <QToolTip>
#include <algorithm>

#include "ui/ProbabilityColors.h"
#include "ui/TokenTooltip.h"

namespace studio {

TokenView::TokenView(QWidget* parent) : QTextEdit(parent) {
  setReadOnly(true);
  setUndoRedoEnabled(false);  // an undo stack of every token would only cost memory
  setAcceptRichText(false);
  setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  QFont f = font();
  f.setPointSizeF(f.pointSizeF() * 1.15);
  setFont(f);
  setPlaceholderText(tr("Generated text appears here. Type a prompt above and press Generate (Ctrl+Enter)."));
}

void TokenView::clearTranscript() {
  m_spans.clear();
  clear();
  setCurrentCharFormat(QTextCharFormat());
}

QTextCharFormat TokenView::promptFormat() const {
  QTextCharFormat f;
  f.setFontWeight(QFont::DemiBold);
  f.setForeground(palette().color(QPalette::Text));
  return f;
}

QTextCharFormat TokenView::tokenFormat(const TokenData& token, int index) const {
  QTextCharFormat f;
  f.setFontWeight(QFont::Normal);
  if (m_colour) {
    f.setBackground(probabilityColour(token.prob, index % 2 == 1));
    f.setForeground(probabilityTextColour());
  } else {
    f.setForeground(palette().color(QPalette::Text));
  }
  return f;
}

void TokenView::insertAtEnd(const QString& text, const QTextCharFormat& format) {
  QScrollBar* bar = verticalScrollBar();
  const bool follow = bar->value() >= bar->maximum() - 4;  // keep following only if the reader is at the end
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  c.insertText(text, format);
  if (follow) bar->setValue(bar->maximum());
}

void TokenView::appendPrompt(const QString& text) { insertAtEnd(text, promptFormat()); }

void TokenView::appendToken(const TokenData& token) {
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  Span s;
  s.start = c.position();
  insertAtEnd(token.piece, tokenFormat(token, int(m_spans.size())));
  c.movePosition(QTextCursor::End);
  s.end = c.position();
  s.token = token;
  m_spans.push_back(std::move(s));
}

void TokenView::setColourByProbability(bool on) {
  if (on == m_colour) return;
  m_colour = on;
  // the only whole-document pass: recolour every token once
  QTextCursor c(document());
  c.beginEditBlock();
  for (int i = 0; i < m_spans.size(); ++i) {
    const Span& s = m_spans[i];
    if (s.end <= s.start) continue;
    c.setPosition(s.start);
    c.setPosition(s.end, QTextCursor::KeepAnchor);
    c.setCharFormat(tokenFormat(s.token, i));
  }
  c.endEditBlock();
}

int TokenView::spanAt(const QPoint& viewportPos) const {
  const QPoint docPos = viewportPos + QPoint(horizontalScrollBar()->value(), verticalScrollBar()->value());
  const int pos = document()->documentLayout()->hitTest(docPos, Qt::ExactHit);
  if (pos < 0) return -1;
  // spans are in document order: find the last one starting at or before pos
  auto it = std::upper_bound(m_spans.begin(), m_spans.end(), pos, [](int p, const Span& s) { return p < s.start; });
  if (it == m_spans.begin()) return -1;
  --it;
  if (pos >= it->end) return -1;
  return int(it - m_spans.begin());
}

QRect TokenView::spanRect(int index) const {
  if (index < 0 || index >= m_spans.size()) return {};
  QTextCursor c(document());
  c.setPosition(m_spans[index].start);
  const QRect first = cursorRect(c);
  c.setPosition(m_spans[index].end);
  const QRect last = cursorRect(c);
  if (first.top() == last.top()) return first.united(last);
  return first;  // wraps a line: the start is where the eye is
}

void TokenView::showTokenTooltip(int index) {
  if (index < 0 || index >= m_spans.size()) return;
  const QRect r = spanRect(index);
  QToolTip::showText(viewport()->mapToGlobal(r.bottomLeft()), tokenTooltipHtml(m_spans[index].token), viewport(), r);
}

bool TokenView::viewportEvent(QEvent* event) {
  if (event->type() == QEvent::ToolTip) {
    const auto* help = static_cast<QHelpEvent*>(event);
    const int index = spanAt(help->pos());
    if (index < 0) {
      QToolTip::hideText();
      event->ignore();
      return true;
    }
    const QRect r = spanRect(index);
    QToolTip::showText(help->globalPos(), tokenTooltipHtml(m_spans[index].token), viewport(), r);
    return true;
  }
  return QTextEdit::viewportEvent(event);
}

}  // namespace studio
