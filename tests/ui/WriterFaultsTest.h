#pragma once
#include <QObject>

namespace studio::test {

// Every file the GUI writes (transcripts, plot exports as PNG/SVG/CSV/JSON, screenshots) meets a full
// disk and a read-only folder: the writer reports the failure, the old file stays whole, and no
// temporary file is left behind.
class WriterFaultsTest : public QObject {
  Q_OBJECT

 private slots:
  void fullDiskKeepsOldFiles();
  void readOnlyFolderIsReported();
};

}  // namespace studio::test
