#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// mamba-studio --screenshot as a program: exit code, PNG size, and that it shows something.
class ScreenshotTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void windowAfterGenerating();
  void namedViewWithHoverCard();
  void unknownViewFails();
  void missingDefaultModelStillRendersTheError();

 private:
  int runStudio(const QStringList& args, const QString& defaultModel, QString* stderrText = nullptr);
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
