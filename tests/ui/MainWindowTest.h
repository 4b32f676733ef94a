#pragma once
#include <QObject>
#include <QTemporaryDir>

namespace studio::test {

// The window as a person uses it: open, generate with Ctrl+Enter, stop with Esc, continue,
// regenerate, hover a token, save the transcript, drop a folder, survive a bad folder.
class MainWindowTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void generatesWithCtrlEnterAndSavesTranscript();
  void escapeStopsAndContinueRegenerateClear();
  void hoverCardShowsIdProbabilityAndAlternatives();
  void colourToggleKeepsText();
  void badFolderShowsErrorAndKeepsModel();
  void gpuOutOfMemoryOffersTheCpu();
  void droppingAFolderOpensIt();
  void deviceSelectorExplainsMissingCuda();

 private:
  QTemporaryDir m_tmp;
  QString m_modelDir;
};

}  // namespace studio::test
