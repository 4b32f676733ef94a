#include "tests/ui/MainWindowTest.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QDropEvent>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTest>
#include <QUrl>

#include "backends/backend_factory.h"
#include "tests/ui/TestModels.h"
#include "ui/EngineWorker.h"
#include "ui/ErrorBanner.h"
#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"
#include "ui/TokenTooltip.h"
#include "ui/TokenView.h"

namespace studio::test {

namespace {
constexpr int kWaitMs = 30000;

struct Fixture {
  explicit Fixture(const QString& ini) : settings(ini), window(&settings) {
    window.resize(1100, 700);
    window.show();
  }
  StudioSettings settings;
  MainWindow window;
};

bool startAndLoad(MainWindow& w, const QString& dir) {
  QSignalSpy loaded(&w, &MainWindow::modelLoaded);
  w.start(dir);
  return loaded.wait(kWaitMs);
}

void setSampling(MainWindow& w, int n, quint64 seed) {
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = n;
  s.seed = seed;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
}

// n new tokens from `prompt` with a fixed seed; true once the run has finished.
bool generateAndWait(MainWindow& w, const QString& prompt, int n, quint64 seed) {
  setSampling(w, n, seed);
  w.setPrompt(prompt);
  QSignalSpy done(&w, &MainWindow::generationFinished);
  w.generate();
  return done.wait(kWaitMs);
}
}  // namespace

void MainWindowTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("model"));
  writeModelFolder(*smallModel(), m_modelDir, true);
}

void MainWindowTest::generatesWithCtrlEnterAndSavesTranscript() {
  Fixture f(m_tmp.filePath(QStringLiteral("a.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QCOMPARE(w.modelInfo().layers, 2);
  QVERIFY(w.modelInfo().tokenizerVocab > 0);
  setSampling(w, 12, 77);

  auto* prompt = qobject_cast<QPlainTextEdit*>(w.view(QStringLiteral("prompt")));
  QVERIFY(prompt);
  prompt->setFocus();
  QTest::keyClicks(prompt, QStringLiteral("KING:"));
  QSignalSpy done(&w, &MainWindow::generationFinished);
  QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
  QVERIFY2(done.wait(kWaitMs), "Ctrl+Enter did not generate");
  QCOMPARE(w.prompt(), QStringLiteral("KING:"));  // the shortcut must not type a newline into the prompt

  const auto stats = done.first().first().value<GenerationStats>();
  QCOMPARE(w.tokenView()->tokenCount(), int(stats.newTokens));
  QVERIFY(w.tokenView()->toPlainText().startsWith(QStringLiteral("KING:")));
  QCOMPARE(w.transcript().runs.size(), 1);
  QCOMPARE(w.transcript().runs.first().ids.size(), stats.newTokens);

  const QString path = m_tmp.filePath(QStringLiteral("t.json"));
  w.saveTranscriptTo(path);
  QFile file(path);
  QVERIFY(file.open(QIODevice::ReadOnly));
  const QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
  QCOMPARE(root.value(QStringLiteral("prompt")).toString(), QStringLiteral("KING:"));
  QCOMPARE(root.value(QStringLiteral("text")).toString(), w.tokenView()->toPlainText());
  const QJsonObject run = root.value(QStringLiteral("runs")).toArray().first().toObject();
  QCOMPARE(run.value(QStringLiteral("sampling")).toObject().value(QStringLiteral("seed")).toString(), QStringLiteral("77"));
  QCOMPARE(run.value(QStringLiteral("ids")).toArray().size(), stats.newTokens);
  QCOMPARE(run.value(QStringLiteral("scan")).toString(), QStringLiteral("chunked"));
}

void MainWindowTest::escapeStopsAndContinueRegenerateClear() {
  Fixture f(m_tmp.filePath(QStringLiteral("b.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  // a long generation on the mid-size model, which has no tokenizer: the prompt is ids
  QSignalSpy adopted(&w, &MainWindow::modelLoaded);
  const auto mid = midModel();
  QMetaObject::invokeMethod(
      w.worker(), [&w, mid] { w.worker()->adoptModel(mid, nullptr, QStringLiteral("mid")); }, Qt::QueuedConnection);
  QVERIFY(adopted.wait(kWaitMs));
  setSampling(w, 100000, 5);
  w.setPrompt(QStringLiteral("1 2 3"));

  QSignalSpy done(&w, &MainWindow::generationFinished);
  w.generate();
  QTRY_VERIFY_WITH_TIMEOUT(w.tokenView()->tokenCount() >= 10, kWaitMs);
  QTest::keyClick(&w, Qt::Key_Escape);
  QVERIFY(done.wait(2000));
  QCOMPARE(done.first().first().value<GenerationStats>().stopReason, QStringLiteral("cancelled"));
  QCOMPARE(w.activity(), MainWindow::Activity::Idle);

  // Continue adds a second run after the text
  const int before = w.tokenView()->tokenCount();
  setSampling(w, 8, 6);
  w.continueGeneration();
  QVERIFY(done.wait(kWaitMs));
  QCOMPARE(w.tokenView()->tokenCount(), before + 8);
  QCOMPARE(w.transcript().runs.size(), 2);
  QCOMPARE(w.transcript().runs.last().kind, QStringLiteral("continue"));

  // Regenerate with a fixed seed repeats the first run's start exactly
  setSampling(w, 8, 5);
  w.regenerate();
  QVERIFY(done.wait(kWaitMs));
  QCOMPARE(w.transcript().runs.size(), 1);
  const QVector<qint32> again = w.transcript().runs.first().ids;
  QCOMPARE(w.transcript().prompt, QStringLiteral("1 2 3"));
  w.regenerate();
  QVERIFY(done.wait(kWaitMs));
  QCOMPARE(w.transcript().runs.first().ids, again);

  w.clearTranscript();
  QCOMPARE(w.tokenView()->tokenCount(), 0);
  QVERIFY(w.transcript().isEmpty());
}

void MainWindowTest::hoverCardShowsIdProbabilityAndAlternatives() {
  Fixture f(m_tmp.filePath(QStringLiteral("c.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("ROMEO:"), 6, 3));

  TokenView* view = w.tokenView();
  int index = -1;
  for (int i = 0; i < view->tokenCount(); ++i)
    if (view->spans()[i].end > view->spans()[i].start) {
      index = i;
      break;
    }
  QVERIFY(index >= 0);
  const QRect r = view->spanRect(index);
  QCOMPARE(view->spanAt(r.center()), index);
  QCOMPARE(view->spanAt(QPoint(2, 2)), -1);  // on the prompt: no card

  const TokenData& t = view->spans()[index].token;
  const QString html = tokenTooltipHtml(t);
  QVERIFY(html.contains(QStringLiteral("id <b>%1</b>").arg(t.id)));
  QCOMPARE(t.alternatives.size(), 10);
  for (const TokenAlternative& a : t.alternatives) {
    QVERIFY(html.contains(QString::number(a.id)));
    QVERIFY(html.contains(visibleTokenText(a.text).toHtmlEscaped()));
  }
}

void MainWindowTest::colourToggleKeepsText() {
  Fixture f(m_tmp.filePath(QStringLiteral("d.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("To be"), 10, 4));
  const QString text = w.tokenView()->toPlainText();
  w.tokenView()->setColourByProbability(false);
  QCOMPARE(w.tokenView()->toPlainText(), text);
  w.tokenView()->setColourByProbability(true);
  QCOMPARE(w.tokenView()->toPlainText(), text);
}

void MainWindowTest::badFolderShowsErrorAndKeepsModel() {
  Fixture f(m_tmp.filePath(QStringLiteral("e.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  const QString bad = m_tmp.filePath(QStringLiteral("not-a-model"));
  QDir().mkpath(bad);
  QFile junk(QDir(bad).filePath(QStringLiteral("config.json")));
  QVERIFY(junk.open(QIODevice::WriteOnly));
  junk.write("{\"model_type\": \"mamba2\", \"hidden_size\": 64}");
  junk.close();

  QSignalSpy failed(&w, &MainWindow::modelLoadFailed);
  w.openModel(bad);
  QVERIFY(failed.wait(kWaitMs));
  QVERIFY(w.errorBanner()->isVisible());
  const QString message = w.errorBanner()->message();
  QVERIFY2(message.contains(QStringLiteral("not-a-model")) && message.contains(QStringLiteral("Still using")), qPrintable(message));
  QVERIFY(w.hasModel());
  QCOMPARE(w.modelInfo().dir, QDir(m_modelDir).absolutePath());

  QVERIFY(generateAndWait(w, QStringLiteral("Hi"), 3, 1));
  QVERIFY(w.tokenView()->tokenCount() > 0);
  QVERIFY(!w.errorBanner()->isVisible());
}

void MainWindowTest::gpuOutOfMemoryOffersTheCpu() {
  Fixture f(m_tmp.filePath(QStringLiteral("oom.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  const QString other = m_tmp.filePath(QStringLiteral("model-oom"));
  writeModelFolder(*smallModel(), other, true);
  // what the worker reports when the CUDA backend cannot allocate the weights
  const QString oom = QStringLiteral("out of GPU memory: CUDA error cudaErrorMemoryAllocation (out of memory) in cudaMalloc");
  emit w.worker()->loadFailed(other, oom);
  QVERIFY(w.errorBanner()->isVisible());
  QVERIFY2(w.errorBanner()->message().contains(QStringLiteral("out of GPU memory")), qPrintable(w.errorBanner()->message()));
  QPushButton* action = w.errorBanner()->actionButton();
  QVERIFY(action->isVisible());
  QCOMPARE(action->text(), QStringLiteral("Open on the CPU"));
  QSignalSpy requested(&w, &MainWindow::loadRequested);
  QSignalSpy loaded(&w, &MainWindow::modelLoaded);
  action->click();
  QVERIFY(!w.errorBanner()->isVisible());
  QCOMPARE(requested.count(), 1);
  QCOMPARE(requested.at(0).at(0).toString(), other);
  QVERIFY(loaded.wait(kWaitMs));
  QCOMPARE(w.modelInfo().dir, QDir(other).absolutePath());
  QVERIFY2(w.modelInfo().backendName.contains(QStringLiteral("CPU"), Qt::CaseInsensitive), qPrintable(w.modelInfo().backendName));

  // out of memory while generating: the offer is to go on on the CPU; other errors offer nothing
  emit w.worker()->generationFailed(oom);
  QVERIFY(w.errorBanner()->actionButton()->isVisible());
  QCOMPARE(w.errorBanner()->actionButton()->text(), QStringLiteral("Continue on the CPU"));
  emit w.worker()->generationFailed(QStringLiteral("token id 70000 is outside the vocabulary"));
  QVERIFY(w.errorBanner()->isVisible());
  QVERIFY(!w.errorBanner()->actionButton()->isVisible());
  QVERIFY(generateAndWait(w, QStringLiteral("Hi"), 3, 1));
}

void MainWindowTest::droppingAFolderOpensIt() {
  Fixture f(m_tmp.filePath(QStringLiteral("f.ini")));
  MainWindow& w = f.window;
  QSignalSpy requested(&w, &MainWindow::loadRequested);
  QMimeData mime;
  mime.setUrls({QUrl::fromLocalFile(m_modelDir)});
  const QPointF at(w.width() / 2.0, w.height() / 2.0);
  QDragEnterEvent enter(at.toPoint(), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(&w, &enter);
  QVERIFY(enter.isAccepted());
  QDropEvent drop(at, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(&w, &drop);
  QCOMPARE(requested.count(), 1);
  QCOMPARE(requested.first().first().toString(), QDir(m_modelDir).absolutePath());
  QSignalSpy loaded(&w, &MainWindow::modelLoaded);
  QVERIFY(loaded.wait(kWaitMs));
  QVERIFY(f.settings.recentModels().contains(QDir(m_modelDir).absolutePath()));
}

void MainWindowTest::deviceSelectorExplainsMissingCuda() {
  Fixture f(m_tmp.filePath(QStringLiteral("g.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QComboBox* device = nullptr;
  for (QComboBox* c : w.findChildren<QComboBox*>())
    if (c->findData(QStringLiteral("cuda")) >= 0) device = c;
  QVERIFY(device);
  auto* model = qobject_cast<QStandardItemModel*>(device->model());
  QStandardItem* cuda = model->item(device->findData(QStringLiteral("cuda")));
  std::string why;
  if (!mamba::cuda_available(&why)) {
    QVERIFY(!cuda->isEnabled());
    QVERIFY2(cuda->toolTip().contains(QString::fromStdString(why)), qPrintable(cuda->toolTip()));
  } else {
    QVERIFY(cuda->isEnabled());
  }
}

}  // namespace studio::test
