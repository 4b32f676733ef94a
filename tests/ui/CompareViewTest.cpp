#include "tests/ui/CompareViewTest.h"

#include <qcustomplot.h>
#include <QApplication>
#include <QComboBox>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QMouseEvent>
#include <QProcess>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTest>
#include <QToolTip>
#include <cmath>

#include "engine/compare.h"
#include "tests/ui/TestModels.h"
#include "ui/EngineThread.h"
#include "ui/EngineWorker.h"
#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"

namespace studio::test {

namespace {

constexpr int kWaitMs = 60000;

void adopt(EngineWorker* w, std::shared_ptr<const mamba::Model> m, std::shared_ptr<const mamba::Tokenizer> t) {
  QSignalSpy changed(w, &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(
      w, [=] { w->adoptModel(m, t, QStringLiteral("test")); }, Qt::QueuedConnection);
  QVERIFY(waitForCount(changed, 1));
}

GenerationRequest greedy(const QString& prompt, int n, GenerationRequest::Kind kind = GenerationRequest::Kind::Fresh) {
  GenerationRequest r;
  r.kind = kind;
  r.prompt = prompt;
  r.sampling.maxNewTokens = n;
  r.sampling.temperature = 0.9;
  r.sampling.seed = 42;
  r.sampling.randomSeed = false;
  return r;
}

QVector<qint32> generate(EngineWorker* w, const GenerationRequest& req) {
  QSignalSpy tokens(w, &EngineWorker::tokenGenerated);
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  QMetaObject::invokeMethod(w, "generate", Qt::QueuedConnection, Q_ARG(studio::GenerationRequest, req));
  if (!waitForCount(finished, 1, kWaitMs)) qWarning("generation did not finish");
  QVector<qint32> ids;
  for (const auto& args : tokens) ids.push_back(args.first().value<TokenData>().id);
  return ids;
}

// Runs a comparison to its end: the data, or a failure's text.
bool compare(EngineWorker* w, const CompareRequest& req, CompareData* data, QString* error = nullptr) {
  QSignalSpy finished(w, &EngineWorker::compareFinished);
  QSignalSpy failed(w, &EngineWorker::compareFailed);
  QMetaObject::invokeMethod(
      w, [w, req] { w->compare(req); }, Qt::QueuedConnection);
  if (!QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, kWaitMs)) return false;
  if (!failed.isEmpty()) {
    if (error) *error = failed.first().first().toString();
    return false;
  }
  *data = finished.first().first().value<CompareData>();
  return true;
}

// Not blank: real variation in brightness and more than a handful of colours.
bool notBlank(const QImage& image) {
  double sum = 0, sum2 = 0;
  QSet<QRgb> colours;
  int n = 0;
  for (int y = 0; y < image.height(); y += 3)
    for (int x = 0; x < image.width(); x += 3) {
      const double g = qGray(image.pixel(x, y));
      sum += g, sum2 += g * g, ++n;
      if (colours.size() < 1000) colours.insert(image.pixel(x, y));
    }
  return sum2 / n - (sum / n) * (sum / n) > 50.0 && colours.size() > 20;
}

}  // namespace

void CompareViewTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("small"));
  writeModelFolder(*smallModel(), m_modelDir, true);
}

void CompareViewTest::workerComparesWithoutTouchingTheSession() {
  // The continuation after a comparison is the one without it: the comparison runs on backends of its own.
  QVector<qint32> plain, withCompare;
  for (bool doCompare : {false, true}) {
    EngineThread engine;
    adopt(engine.worker(), smallModel(), smallTokenizer());
    QVector<qint32> ids = generate(engine.worker(), greedy(QStringLiteral("ROMEO:\nBut soft"), 12));
    QCOMPARE(ids.size(), 12);
    if (doCompare) {
      CompareRequest req;
      req.chunkSize = 5;
      CompareData d;
      QString error;
      QVERIFY2(compare(engine.worker(), req, &d, &error), qPrintable(error));
      const qint64 T = d.tokens, L = d.layers;
      QVERIFY(T > 12);  // the prompt and the generated tokens
      QCOMPARE(d.ids.size(), T);
      QCOMPARE(d.pieces.size(), T);
      QCOMPARE(d.chunkSize, qint64(5));
      QCOMPARE(d.runs.size(), 2);
      QCOMPARE(d.diffs.size(), 3);  // chunked and recurrent vs float64, chunked vs recurrent
      QCOMPARE(qint64(d.sweep.size()), qint64(mamba::power_of_two_sweep(T).size()));
      for (const CompareDiffData& diff : d.diffs) {
        QCOMPARE(qint64(diff.err.size()), L * T);
        for (double m : diff.layerMax) QVERIFY2(m > 1e-9 && m < 1e-5, qPrintable(QString::number(m)));
      }
      for (const CompareRunData& r : d.runs) {
        QCOMPARE(r.top1Agree, 1.0);
        QVERIFY(r.seconds > 0 && r.flops > 0);
        QCOMPARE(qint64(r.layerSeconds.size()), L + 1);
      }
      QVERIFY(d.json.contains(QStringLiteral("\"chunked_vs_recurrent\"")));
    }
    ids += generate(engine.worker(), greedy(QString(), 12, GenerationRequest::Kind::Continue));
    (doCompare ? withCompare : plain) = ids;
  }
  QCOMPARE(withCompare, plain);
}

void CompareViewTest::cancelMidSweepLeavesTheSessionUsable() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, midModel(), nullptr);
  QString prompt;
  for (int i = 0; i < 48; ++i) prompt += QString::number((i * 37) % 4000) + QLatin1Char(' ');
  const QVector<qint32> before = generate(w, greedy(prompt, 6));
  QCOMPARE(before.size(), 6);

  // cancel once the sweep has begun; nothing may come after the failure
  QSignalSpy finished(w, &EngineWorker::compareFinished);
  QSignalSpy failed(w, &EngineWorker::compareFailed);
  QStringList seen;
  auto conn = connect(w, &EngineWorker::compareProgress, this, [&](double, const QString& what) {
    seen << what;
    if (what.startsWith(QLatin1String("sweep"))) w->requestCancelCompare();
  });
  CompareRequest req;
  req.prompt = prompt;
  QMetaObject::invokeMethod(
      w, [w, req] { w->compare(req); }, Qt::QueuedConnection);
  QVERIFY(QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, 120000));
  disconnect(conn);
  QVERIFY2(finished.isEmpty(), qPrintable(seen.join(QStringLiteral(" | "))));
  QCOMPARE(failed.first().at(1).toBool(), true);  // cancelled, not an error
  QVERIFY(seen.last().startsWith(QLatin1String("sweep")));

  // the session goes on exactly, and the next comparison runs to its end
  QCOMPARE(generate(w, greedy(prompt, 6)), before);
  CompareRequest quick;
  quick.sweep = false;
  CompareData d;
  QString error;
  QVERIFY2(compare(w, quick, &d, &error), qPrintable(error));
  QCOMPARE(d.tokens, qint64(48 + 6));
  QVERIFY(d.sweep.isEmpty());
}

void CompareViewTest::viewRendersHoversAndExports() {
  StudioSettings settings(m_tmp.filePath(QStringLiteral("view.ini")));
  MainWindow w(&settings);
  w.resize(1300, 800);
  w.show();
  QSignalSpy loaded(&w, &MainWindow::modelLoaded);
  w.start(m_modelDir);
  QVERIFY(loaded.wait(kWaitMs));
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = 20;
  s.seed = 5;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
  w.setPrompt(QStringLiteral("ROMEO:\nBut soft"));
  QSignalSpy generated(&w, &MainWindow::generationFinished);
  w.generate();
  QVERIFY(generated.wait(kWaitMs));

  QVERIFY(w.presentView(QStringLiteral("compare"), QSize(1300, 800)));
  InspectorView* view = w.inspectorView(QStringLiteral("compare"));
  QVERIFY(view);
  QCOMPARE(view->name(), QStringLiteral("compare"));
  auto* run = view->findChild<QPushButton*>(QStringLiteral("runCompare"));
  QVERIFY(run);
  QSignalSpy done(w.worker(), &EngineWorker::compareFinished);
  QTest::mouseClick(run, Qt::LeftButton);
  QVERIFY(waitForCount(done, 1, kWaitMs));
  const CompareData d = done.first().first().value<CompareData>();
  QTest::qWait(100);

  auto* map = view->findChild<QCustomPlot*>(QStringLiteral("heatmap"));
  QVERIFY(map);
  auto* cells = qobject_cast<QCPColorMap*>(map->plottable(0));
  QVERIFY(cells);
  QCOMPARE(qint64(cells->data()->keySize()), d.tokens);
  QCOMPARE(qint64(cells->data()->valueSize()), d.layers);
  // the drawn cell is the comparison's number (chunked vs float64, the default pair)
  const CompareDiffData* chunked = d.diff(0, -1);
  QVERIFY(chunked);
  QCOMPARE(cells->data()->cell(3, 1), double(chunked->err[1 * d.tokens + 3]));
  auto* layers = view->findChild<QTableWidget*>(QStringLiteral("layerTable"));
  QCOMPARE(qint64(layers->rowCount()), d.layers);
  auto* runs = view->findChild<QTableWidget*>(QStringLiteral("runTable"));
  QCOMPARE(runs->rowCount(), int(d.runs.size()) + 1);
  auto* time = view->findChild<QCustomPlot*>(QStringLiteral("sweepTime"));
  auto* err = view->findChild<QCustomPlot*>(QStringLiteral("sweepError"));
  QVERIFY(time && err);
  QCOMPARE(time->graph(0)->dataCount(), int(d.sweep.size()));
  QCOMPARE(err->graph(0)->dataCount(), int(d.sweep.size()));

  // hover a cell: layer, token, both values and their difference
  map->replot();
  const QPoint at(int(map->xAxis->coordToPixel(3)), int(map->yAxis->coordToPixel(1)));
  QMouseEvent move(QEvent::MouseMove, QPointF(at), QPointF(map->mapToGlobal(at)), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(map, &move);
  QTRY_VERIFY(QToolTip::isVisible());
  const QString tip = QToolTip::text();
  QVERIFY2(tip.contains(QStringLiteral("layer 1, token 3")), qPrintable(tip));
  const qsizetype i = 1 * d.tokens + 3;
  QVERIFY2(tip.contains(QStringLiteral("channel %1").arg(chunked->at[i])), qPrintable(tip));
  QVERIFY2(tip.contains(QString::number(chunked->va[i], 'g', 9)), qPrintable(tip));
  QVERIFY2(tip.contains(QString::number(chunked->vb[i], 'g', 17)), qPrintable(tip));
  QVERIFY2(tip.contains(QStringLiteral("difference")), qPrintable(tip));
  QCOMPARE(w.inspector()->hovered(), qint64(3));  // the compared text is the sequence: hover is linked

  // another pair: chunked against recurrent
  auto* b = view->findChild<QComboBox*>(QStringLiteral("runB"));
  b->setCurrentIndex(1);
  QCOMPARE(cells->data()->cell(3, 1), double(d.diff(0, 1)->err[i]));

  // export: plots as PNG/SVG/PDF, numbers as CSV with the provenance
  const QString base = m_tmp.filePath(QStringLiteral("cmp"));
  QCOMPARE(view->exportAll(base), QString());
  for (const char* f : {"-heatmap.png", "-heatmap.svg", "-heatmap.pdf", "-heatmap.csv", "-sweep-time.svg", "-sweep-error.pdf",
                        "-layers.csv", "-runs.csv", "-sweep-time.csv"})
    QVERIFY2(QFileInfo(base + QLatin1String(f)).size() > 200, f);
  QFile csv(base + QStringLiteral("-heatmap.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  const QString text = QString::fromUtf8(csv.readAll());
  QVERIFY(text.startsWith(QLatin1Char('#')));
  QVERIFY2(text.contains(QStringLiteral("ROMEO")), "the prompt is in the provenance");
  // one record per layer and token (a token's text may hold a quoted newline, so count record starts)
  const qint64 records = text.count(QRegularExpression(QStringLiteral("^\\d+,\\d+,"), QRegularExpression::MultilineOption));
  QCOMPARE(records, d.layers * d.tokens);
  QFile svg(base + QStringLiteral("-heatmap.svg"));
  QVERIFY(svg.open(QIODevice::ReadOnly));
  QVERIFY(svg.readAll().contains("<svg"));
  QVERIFY(notBlank(view->grab().toImage()));
}

void CompareViewTest::screenshotRendersWithData() {
  const QString png = m_tmp.filePath(QStringLiteral("compare.png"));
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
  p.setProcessEnvironment(env);
  p.start(studioBinary(), {QStringLiteral("--screenshot"), png, QStringLiteral("--model"), m_modelDir, QStringLiteral("--prompt"),
                           QStringLiteral("ROMEO:"), QStringLiteral("--generate"), QStringLiteral("24"), QStringLiteral("--view"),
                           QStringLiteral("compare"), QStringLiteral("--size"), QStringLiteral("1200x760")});
  QVERIFY(p.waitForFinished(kWaitMs));
  const QString err = QString::fromLocal8Bit(p.readAllStandardError());
  QCOMPARE(p.exitCode(), 0);
  const QImage image(png);
  QCOMPARE(image.size(), QSize(1200, 760));
  QVERIFY2(notBlank(image), qPrintable(err));
}

}  // namespace studio::test
