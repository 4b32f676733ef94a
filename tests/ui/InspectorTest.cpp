#include "tests/ui/InspectorTest.h"

#include <qcustomplot.h>
#include <QApplication>
#include <QComboBox>
#include <QDockWidget>
#include <QFile>
#include <QImage>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QMouseEvent>
#include <QProcess>
#include <QPushButton>
#include <QSet>
#include <QSignalSpy>
#include <QSlider>
#include <QTableWidget>
#include <QTest>
#include <cmath>

#include "engine/probe_stats.h"
#include "tests/ui/TestModels.h"
#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"
#include "ui/TokenView.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"

namespace studio::test {

namespace {
constexpr int kWaitMs = 30000;

struct Fixture {
  explicit Fixture(const QString& ini) : settings(ini), window(&settings) {
    window.resize(1300, 900);
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

void startGenerating(MainWindow& w, const QString& prompt, int n) {
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = n;
  s.seed = 5;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
  w.setPrompt(prompt);
  w.generate();
}

bool generateAndWait(MainWindow& w, const QString& prompt, int n) {
  QSignalSpy done(&w, &MainWindow::generationFinished);
  startGenerating(w, prompt, n);
  return done.wait(kWaitMs);
}

// Positions fed through the model after a run: the prompt and every generated token but the pending last.
qint64 fedPositions(MainWindow& w) { return w.inspector()->tokens().size() - 1; }

bool probesCaughtUp(MainWindow& w) {
  return QTest::qWaitFor([&] { return w.inspector()->probes().count == fedPositions(w); }, kWaitMs);
}

QPoint plotPixel(QCustomPlot* p, double key, double value) {
  return QPoint(int(std::lround(p->xAxis->coordToPixel(key))), int(std::lround(p->yAxis->coordToPixel(value))));
}

void moveMouse(QWidget* w, const QPoint& at) {
  QMouseEvent e(QEvent::MouseMove, QPointF(at), w->mapToGlobal(QPointF(at)), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}

QStringList readLines(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly | QIODevice::Text)) return {};
  return QString::fromUtf8(f.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
}
}  // namespace

void InspectorTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("model"));
  writeModelFolder(*midModel(), m_modelDir, true);
}

void InspectorTest::dynamicsFillsInWhileStreaming() {
  Fixture f(m_tmp.filePath(QStringLiteral("a.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("dynamics")));
  QVERIFY(startAndLoad(w, m_modelDir));
  auto* strip = w.inspectorView(QStringLiteral("dynamics"))->findChild<QCustomPlot*>(QStringLiteral("upperStrip"));
  QVERIFY(strip);
  auto* map = qobject_cast<QCPColorMap*>(strip->plottable(0));
  QVERIFY(map);

  QSignalSpy done(&w, &MainWindow::generationFinished);
  startGenerating(w, QStringLiteral("KING:"), 120);
  // part-way through the run the strips already show some positions, and more later
  QVERIFY(QTest::qWaitFor([&] { return map->data()->keySize() >= 8 || !done.isEmpty(); }, kWaitMs));
  QVERIFY2(done.isEmpty(), "the run ended before the view showed anything");
  const int early = map->data()->keySize();
  QVERIFY(done.wait(kWaitMs));
  QVERIFY(probesCaughtUp(w));
  QTRY_COMPARE_WITH_TIMEOUT(map->data()->keySize(), int(fedPositions(w)), 5000);
  QVERIFY(map->data()->keySize() > early);
  QCOMPARE(map->data()->valueSize(), int(w.modelInfo().layers));
  // the strip shows the mean over heads of dt: cell (t, l) equals the probe values averaged here
  const mamba::ProbeFrames& pf = w.inspector()->probes();
  const qint64 t = pf.count / 2, l = pf.L - 1;
  double mean = 0;
  for (qint64 h = 0; h < pf.H; ++h) mean += pf.dt[size_t((t * pf.L + l) * pf.H + h)];
  mean /= double(pf.H);
  QVERIFY(std::abs(map->data()->cell(int(t), int(l)) - mean) <= 1e-6 * std::abs(mean));
  QCOMPARE(strip->yAxis->label(), QStringLiteral("layer"));
  QVERIFY(!map->colorScale()->axis()->label().isEmpty());
}

void InspectorTest::hoverLinksTranscriptAndPlotsBothWays() {
  Fixture f(m_tmp.filePath(QStringLiteral("b.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("dynamics"), QSize(1200, 700)));
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 20));
  QVERIFY(probesCaughtUp(w));
  QTest::qWait(300);  // the view's throttled refresh

  // transcript -> plots: hovering a generated token marks its position in the context and the view
  TokenView* tv = w.tokenView();
  int index = -1;
  for (int i = 0; i < tv->tokenCount(); ++i)
    if (tv->spans()[i].end > tv->spans()[i].start && tv->spans()[i].token.position < fedPositions(w)) index = i;
  QVERIFY(index >= 0);
  const qint64 pos = tv->spans()[index].token.position;
  moveMouse(tv->viewport(), tv->spanRect(index).center());
  QCOMPARE(w.inspector()->hovered(), pos);
  auto* strip = w.inspectorView(QStringLiteral("dynamics"))->findChild<QCustomPlot*>(QStringLiteral("upperStrip"));
  QCPItemStraightLine* line = nullptr;
  for (int i = 0; i < strip->itemCount(); ++i)
    if (auto* s = qobject_cast<QCPItemStraightLine*>(strip->item(i))) line = s;
  QVERIFY(line && line->visible());
  QCOMPARE(line->point1->coords().x(), double(pos));
  // the prompt's tokens link too
  QVERIFY(!tv->promptSpans().isEmpty());
  const TokenView::Span& first = tv->promptSpans().first();
  moveMouse(tv->viewport(), tv->rectOf(first).center());
  QCOMPARE(w.inspector()->hovered(), first.token.position);

  // plots -> transcript: hovering a strip's column highlights that token
  const qint64 target = tv->spans()[0].token.position;
  moveMouse(strip, plotPixel(strip, double(target), 0));
  QCOMPARE(w.inspector()->hovered(), target);
  const auto sel = tv->extraSelections();
  QCOMPARE(sel.size(), 1);
  QCOMPARE(sel.first().cursor.selectionStart(), tv->spans()[0].start);
  QCOMPARE(sel.first().cursor.selectionEnd(), tv->spans()[0].end);
  // leaving the plot clears both
  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(strip, &leave);
  QCOMPARE(w.inspector()->hovered(), qint64(-1));
  QVERIFY(tv->extraSelections().isEmpty());
}

void InspectorTest::exportWritesEveryFormatWithProvenance() {
  Fixture f(m_tmp.filePath(QStringLiteral("c.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("dynamics"), QSize(1200, 700)));
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 16));
  QVERIFY(probesCaughtUp(w));
  QTest::qWait(300);
  const mamba::ProbeFrames& pf = w.inspector()->probes();
  const QString base = m_tmp.filePath(QStringLiteral("export/dyn"));
  QDir().mkpath(m_tmp.filePath(QStringLiteral("export")));
  InspectorView* view = w.inspectorView(QStringLiteral("dynamics"));
  QCOMPARE(view->exportAll(base), QString());
  for (const QString& plot : {QStringLiteral("upper-strip"), QStringLiteral("lower-strip"), QStringLiteral("lines")})
    for (const char* ext : {".png", ".svg", ".pdf", ".csv", ".json"}) {
      const QString path = base + QLatin1Char('-') + plot + QLatin1String(ext);
      QVERIFY2(QFileInfo(path).size() > 100, qPrintable(path));
    }
  QVERIFY(!QImage(base + QStringLiteral("-upper-strip.png")).isNull());
  QVERIFY(readLines(base + QStringLiteral("-lines.svg")).join(QString()).contains(QStringLiteral("<svg")));

  const QStringList csv = readLines(base + QStringLiteral("-upper-strip.csv"));
  QVERIFY(csv.size() > 8);
  QVERIFY(csv[1].startsWith(QStringLiteral("# model: model")));
  QVERIFY(csv.filter(QStringLiteral("# prompt: \"KING:\"")).size() == 1);
  QVERIFY(csv.filter(QStringLiteral("# settings: {")).size() == 1);
  const int header = int(csv.indexOf(QStringLiteral("position,token_id,token,layer,heads,dt")));
  QVERIFY2(header > 0, qPrintable(csv.mid(0, 9).join(QLatin1Char('\n'))));
  QCOMPARE(csv.size() - header - 1, int(pf.count * pf.L));
  // the first data row: position 0, layer 0, the mean over heads of dt
  const QStringList row = csv[header + 1].split(QLatin1Char(','));
  double mean = 0;
  for (qint64 h = 0; h < pf.H; ++h) mean += pf.dt[size_t(h)];
  QCOMPARE(row[0], QStringLiteral("0"));
  QCOMPARE(row[3], QStringLiteral("0"));
  QVERIFY(std::abs(row[5].toDouble() - mean / double(pf.H)) < 1e-6);

  QFile json(base + QStringLiteral("-upper-strip.json"));
  QVERIFY(json.open(QIODevice::ReadOnly));
  const QJsonObject rec = QJsonDocument::fromJson(json.readAll()).object();
  QCOMPARE(rec.value(QStringLiteral("view")).toString(), QStringLiteral("dynamics"));
  QCOMPARE(rec.value(QStringLiteral("prompt")).toString(), QStringLiteral("KING:"));
  QCOMPARE(rec.value(QStringLiteral("model")).toObject().value(QStringLiteral("label")).toString(), QStringLiteral("model"));
  QCOMPARE(rec.value(QStringLiteral("settings"))
               .toObject()
               .value(QStringLiteral("sampling"))
               .toObject()
               .value(QStringLiteral("seed"))
               .toString(),
           QStringLiteral("5"));
  // a folder that cannot be written: a clear error, nothing half-written
  QCOMPARE(view->exportAll(m_tmp.filePath(QStringLiteral("no/such/folder/x"))).isEmpty(), false);
}

void InspectorTest::memoryViewRanksHeadsByHalfLife() {
  Fixture f(m_tmp.filePath(QStringLiteral("d.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("memory"), QSize(1200, 700)));
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 24));
  QVERIFY(probesCaughtUp(w));
  QTest::qWait(500);
  auto* bars = w.inspectorView(QStringLiteral("memory"))->findChild<QCustomPlot*>(QStringLiteral("halfLifeBars"));
  QVERIFY(bars);
  // the bars (chosen head in its own series) hold every head of layer 0, longest half-life first
  QVector<std::pair<double, double>> all;
  for (int i = 0; i < bars->plottableCount(); ++i)
    if (auto* b = qobject_cast<QCPBars*>(bars->plottable(i)))
      for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it) all.push_back({it->key, it->value});
  std::sort(all.begin(), all.end());
  QCOMPARE(all.size(), int(w.modelInfo().heads));
  for (int i = 1; i < all.size(); ++i) QVERIFY(all[i - 1].second >= all[i].second);
  // and the longest equals the engine's half-life of the best head of layer 0
  const auto mem = mamba::layer_memory(w.inspector()->probes(), 0, 0);
  double best = 0;
  for (const auto& hm : mem) best = std::max(best, hm.half_life);
  QVERIFY(std::abs(all[0].second - best) <= 1e-9 * best);
}

void InspectorTest::probesStopWhenTheViewsClose() {
  Fixture f(m_tmp.filePath(QStringLiteral("e.ini")));
  MainWindow& w = f.window;
  for (QDockWidget* d : w.findChildren<QDockWidget*>())
    if (d->objectName().startsWith(QStringLiteral("view_"))) d->close();
  QVERIFY(!w.inspector()->probesWanted());
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 12));
  QTest::qWait(200);
  QCOMPARE(w.inspector()->probes().count, qint64(0));
  QVERIFY(w.inspector()->tokens().size() > 12);  // the tokens are known all the same
}

void InspectorTest::openingAViewLaterShowsTheWholeText() {
  Fixture f(m_tmp.filePath(QStringLiteral("g.ini")));
  MainWindow& w = f.window;
  for (QDockWidget* d : w.findChildren<QDockWidget*>())
    if (d->objectName().startsWith(QStringLiteral("view_"))) d->close();
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 10));
  QCOMPARE(w.inspector()->probes().count, qint64(0));
  QVERIFY(w.presentView(QStringLiteral("dynamics")));
  QVERIFY(probesCaughtUp(w));
  QCOMPARE(w.inspector()->probes().first, qint64(0));
}

void InspectorTest::screenshotsOfEveryView() {
  for (const QString& view : {QStringLiteral("dynamics"), QStringLiteral("memory"), QStringLiteral("ssd"), QStringLiteral("playground")}) {
    const QString png = m_tmp.filePath(view + QStringLiteral(".png"));
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    p.setProcessEnvironment(env);
    p.start(studioBinary(), {QStringLiteral("--model"), m_modelDir, QStringLiteral("--screenshot"), png, QStringLiteral("--view"), view,
                             QStringLiteral("--prompt"), QStringLiteral("KING:"), QStringLiteral("--generate"), QStringLiteral("30"),
                             QStringLiteral("--size"), QStringLiteral("1000x640"), QStringLiteral("--layer"), QStringLiteral("1"),
                             QStringLiteral("--head"), QStringLiteral("0")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 0);
    const QImage image(png);
    QCOMPARE(image.size(), QSize(1000, 640));
    // a heat map's many colours, and real variation
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 2)
      for (int x = 0; x < image.width(); x += 2) colours.insert(image.pixel(x, y));
    QVERIFY2(colours.size() > 150, qPrintable(QStringLiteral("%1: %2 colours").arg(view).arg(colours.size())));
  }
}

void InspectorTest::ssdMatrixViewComputesExplainsAndExports() {
  Fixture f(m_tmp.filePath(QStringLiteral("h.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("ssd"), QSize(1300, 760)));
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generateAndWait(w, QStringLiteral("KING:"), 40));
  InspectorView* view = w.inspectorView(QStringLiteral("ssd"));
  QSignalSpy ready(view, &InspectorView::captureReady);
  QVERIFY(view->prepareCapture({{QStringLiteral("layer"), QStringLiteral("1")},
                                {QStringLiteral("head"), QStringLiteral("2")},
                                {QStringLiteral("chunk"), QStringLiteral("8")}}));
  QVERIFY(ready.wait(kWaitMs));
  const qint64 T = w.inspector()->tokens().size();
  auto* plot = view->findChild<QCustomPlot*>(QStringLiteral("matrix"));
  auto* map = qobject_cast<QCPColorMap*>(plot->plottable(0));
  QCOMPARE(map->data()->keySize(), int(T));
  QVERIFY(std::isnan(map->data()->cell(int(T) - 1, 0)));  // above the diagonal: transparent
  QVERIFY(!std::isnan(map->data()->cell(0, int(T) - 1)));
  // ranks on the off-diagonal blocks, each at most d_state
  int ranks = 0;
  for (int i = 0; i < plot->itemCount(); ++i)
    if (auto* t = qobject_cast<QCPItemText*>(plot->item(i))) {
      QVERIFY(t->text().toInt() <= w.modelInfo().dState);
      ++ranks;
    }
  const qint64 nc = (T + 7) / 8;
  QCOMPARE(ranks, int(nc * (nc - 1) / 2));
  auto* info = view->findChild<QLabel*>(QStringLiteral("info"));
  QVERIFY(info->text().contains(QStringLiteral("recurrent scan")));
  // the duality holds to float32 rounding
  auto* duality = view->findChild<QCustomPlot*>(QStringLiteral("duality"));
  QCOMPARE(duality->graphCount(), 2);
  QCPTextElement* title = nullptr;
  for (int i = 0; i < duality->plotLayout()->elementCount(); ++i)
    if (auto* t = qobject_cast<QCPTextElement*>(duality->plotLayout()->elementAt(i))) title = t;
  QVERIFY(title);
  const double err = title->text().section(QStringLiteral("= "), 1, 1).section(QLatin1Char(' '), 0, 0).toDouble();
  QVERIFY2(err > 0 && err < 1e-4, qPrintable(title->text()));
  // step-through names each step and its FLOPs
  auto* next = view->findChildren<QPushButton*>().value(1);
  for (QPushButton* b : view->findChildren<QPushButton*>())
    if (b->text() == QStringLiteral("▶")) next = b;
  next->click();
  QVERIFY(info->text().contains(QStringLiteral("<b>1. diagonal blocks</b>")));
  // linked: the transcript's hover marks the row and column, a click on a row selects that token
  w.inspector()->hover(5);
  int shown = 0;
  for (int i = 0; i < plot->itemCount(); ++i)
    if (auto* l = qobject_cast<QCPItemStraightLine*>(plot->item(i)); l && l->visible()) ++shown;
  QCOMPARE(shown, 2);
  QSignalSpy selected(w.inspector(), &InspectorContext::selectedChanged);
  plot->replot();
  const QPoint at(int(plot->xAxis->coordToPixel(3)), int(plot->yAxis->coordToPixel(7)));
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at);
  QCOMPARE(selected.count(), 1);
  QCOMPARE(selected.first().first().toLongLong(), qint64(7));
  // the matrix exports as .npy: numpy's header, then T x T doubles
  const QString base = m_tmp.filePath(QStringLiteral("ssd"));
  QCOMPARE(view->exportAll(base), QString());
  QFile npy(base + QStringLiteral("-matrix.npy"));
  QVERIFY(npy.open(QIODevice::ReadOnly));
  const QByteArray bytes = npy.readAll();
  QVERIFY(bytes.startsWith(QByteArray("\x93NUMPY\x01\x00", 8)));
  const int headerLen = quint8(bytes[8]) | (quint8(bytes[9]) << 8);
  QCOMPARE((10 + headerLen) % 64, 0);
  QVERIFY(bytes.mid(10, headerLen).contains(QStringLiteral("'shape': (%1, %1)").arg(T).toUtf8()));
  QCOMPARE(bytes.size() - 10 - headerLen, int(T * T * 8));
  QVERIFY(QFileInfo(base + QStringLiteral("-matrix.csv")).size() > T * T);
}

void InspectorTest::playgroundFollowsItsSliders() {
  Fixture f(m_tmp.filePath(QStringLiteral("i.ini")));
  MainWindow& w = f.window;
  QVERIFY(w.presentView(QStringLiteral("playground"), QSize(1300, 760)));
  InspectorView* view = w.inspectorView(QStringLiteral("playground"));
  auto* matrix = view->findChild<QCustomPlot*>(QStringLiteral("toyMatrix"));
  auto* map = qobject_cast<QCPColorMap*>(matrix->plottable(0));
  auto* tokens = view->findChild<QSlider*>(QStringLiteral("tokens"));
  auto* chunk = view->findChild<QSlider*>(QStringLiteral("chunkSize"));
  QVERIFY(map && tokens && chunk);
  tokens->setValue(37);
  chunk->setValue(5);
  QCOMPARE(map->data()->keySize(), 37);
  // the three computations agree as the sliders move
  auto* outputs = view->findChild<QCustomPlot*>(QStringLiteral("toyOutputs"));
  for (int v : {0, 60, 200}) {
    view->findChild<QSlider*>(QStringLiteral("forgetting"))->setValue(v);
    QCPTextElement* title = nullptr;
    for (int i = 0; i < outputs->plotLayout()->elementCount(); ++i)
      if (auto* t = qobject_cast<QCPTextElement*>(outputs->plotLayout()->elementAt(i))) title = t;
    QVERIFY(title);
    const double diff = title->text().section(QStringLiteral("difference "), 1, 1).toDouble();
    QVERIFY2(diff < 1e-12, qPrintable(title->text()));
  }
  // hand-set B and C: a zero C row makes that token read nothing
  auto* bc = view->findChild<QComboBox*>(QStringLiteral("bcChoice"));
  bc->setCurrentIndex(bc->findText(QStringLiteral("hand-set")));
  auto* table = view->findChild<QTableWidget*>(QStringLiteral("handSet"));
  QVERIFY(table && table->isVisible());
  const int N = table->columnCount() / 2;
  for (int n = 0; n < N; ++n) table->item(10, N + n)->setText(QStringLiteral("0"));
  for (int s = 0; s <= 10; ++s) QCOMPARE(map->data()->cell(s, 10), 0.0);
}

}  // namespace studio::test
