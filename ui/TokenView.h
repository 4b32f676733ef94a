#pragma once
// The transcript: the prompt as typed, then generated tokens appended at the end as they arrive
// (no re-layout of what is already there), optionally tinted by probability, with a hover card per token.
#include <QTextCharFormat>
#include <QTextEdit>
#include <QVector>

#include "ui/EngineTypes.h"

namespace studio {

class TokenView : public QTextEdit {
  Q_OBJECT

 public:
  struct Span {
    int start = 0, end = 0;  // document positions of the token's text
    TokenData token;
  };

  explicit TokenView(QWidget* parent = nullptr);

  void clearTranscript();
  void appendPrompt(const QString& text);
  void appendToken(const TokenData& token);

  bool colourByProbability() const { return m_colour; }
  const QVector<Span>& spans() const { return m_spans; }
  int tokenCount() const { return int(m_spans.size()); }
  // The span under a viewport point, or -1 (exposed for tests and the screenshot's hover card).
  int spanAt(const QPoint& viewportPos) const;
  QRect spanRect(int index) const;  // in viewport coordinates
  void showTokenTooltip(int index);

 public slots:
  void setColourByProbability(bool on);

 protected:
  bool viewportEvent(QEvent* event) override;

 private:
  QTextCharFormat promptFormat() const;
  QTextCharFormat tokenFormat(const TokenData& token, int index) const;
  void insertAtEnd(const QString& text, const QTextCharFormat& format);

  QVector<Span> m_spans;
  bool m_colour = true;
};

}  // namespace studio
