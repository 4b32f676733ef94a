#include "tests/ui/SnapshotPanelTest.h"

#include <QImage>
#include <QProcess>
#include <QSet>
#include <QSignalSpy>
#include <QTest>
#include <QTreeWidget>

#include "engine/session.h"
#include "engine/snapshot.h"
#include "tests/test_util.h"
#include "tests/ui/TestModels.h"
#include "ui/BranchTracePlot.h"
#include "ui/ErrorBanner.h"
#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/SnapshotDiffPlot.h"
#include "ui/SnapshotPanel.h"
#include "ui/StudioSettings.h"
#include "ui/TokenView.h"
#include "ui/views/InspectorView.h"

namespace studio::test {

namespace {
constexpr int kWaitMs = 60000;

// Big enough to have a real state (4 layers x 8 heads of 32 x 32), small enough to be quick; no
// end-of-text id and no tokenizer, so every run has its full length and prompts are ids.
mamba::Config testConfig() {
  mamba::Config c;
  c.d_model = 128;
  c.n_layer = 4;
  c.n_heads = 8;
  c.head_dim = 32;
  c.expand = 2;
  c.d_state = 32;
  c.n_groups = 1;
  c.chunk_size = 16;
  c.d_conv = 4;
  c.vocab_size = 512;
  c.tie_embeddings = true;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.finalize("snapshot-ui-test");
  return c;
}

void writeFolder(const mamba::Model& m, const QString& dir) {
  QDir().mkpath(dir);
  nlohmann::json cfg = mamba::test::config_json(m.config);
  cfg.erase("eos_token_id");
  mamba::test::write_file((dir + QStringLiteral("/config.json")).toStdString(), cfg.dump(2));
  mamba::test::write_file((dir + QStringLiteral("/model.safetensors")).toStdString(),
                          mamba::test::safetensors_bytes(mamba::test::model_tensors(m)));
}

struct Fixture {
  explicit Fixture(const QString& ini) : settings(ini), window(&settings) {
    window.resize(1400, 950);
    window.show();
  }
  StudioSettings settings;
  MainWindow window;
  SnapshotPanel* panel() { return window.snapshotPanel(); }
};

bool startAndLoad(MainWindow& w, const QString& dir) {
  QSignalSpy loaded(&w, &MainWindow::modelLoaded);
  w.start(dir);
  return loaded.wait(kWaitMs);
}

bool generate(MainWindow& w, const QString& prompt, int n, double temperature = 0.8) {
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = n;
  s.temperature = temperature;
  s.seed = 5;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
  w.setPrompt(prompt);
  QSignalSpy done(&w, &MainWindow::generationFinished);
  w.generate();
  return done.wait(kWaitMs);
}

// Runs one panel task to its end; returns "" or the failure.
QString runTask(SnapshotPanel* p, const std::function<void()>& start) {
  QSignalSpy ok(p, &SnapshotPanel::taskFinished), failed(p, &SnapshotPanel::taskFailed);
  start();
  if (!QTest::qWaitFor([&] { return ok.count() + failed.count() > 0; }, kWaitMs)) return QStringLiteral("timed out");
  return failed.isEmpty() ? QString() : failed.first().first().toString();
}

int findOrigin(SnapshotPanel* p, const QString& origin) {
  int id = -1;
  for (const SnapshotInfo& i : p->snapshots())
    if (i.origin == origin) id = std::max(id, i.id);
  return id;
}

QVector<qint32> lastRunIds(const MainWindow& w) {
  return w.transcript().runs.isEmpty() ? QVector<qint32>{} : w.transcript().runs.last().ids;
}

const QString kPrompt = QStringLiteral("5, 17, 3, 99, 42, 8, 250");
constexpr qint64 kPromptTokens = 7;
}  // namespace

void SnapshotPanelTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("model"));
  m_otherDir = m_tmp.filePath(QStringLiteral("other"));
  writeFolder(*mamba::Model::random(testConfig(), 3), m_modelDir);
  writeFolder(*mamba::Model::random(testConfig(), 4), m_otherDir);
}

void SnapshotPanelTest::takeRestoreAndBranchContinueExactly() {
  Fixture f(m_tmp.filePath(QStringLiteral("a.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 20));
  const QVector<qint32> twenty = lastRunIds(w);
  QCOMPARE(twenty.size(), 20);

  QVERIFY(generate(w, kPrompt, 10));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("ten")); }), QString());
  const SnapshotInfo ten = f.panel()->info(f.panel()->lastAdded());
  QCOMPARE(ten.label, QStringLiteral("ten"));
  QCOMPARE(ten.tokens, kPromptTokens + 10);
  QCOMPARE(ten.fed, kPromptTokens + 9);  // the last id is pending
  QVERIFY(ten.stateBytes > 0 && ten.kvBytes > 0);
  QCOMPARE(ten.origin, QStringLiteral("taken"));
  QVERIFY(f.panel()->tree()->topLevelItemCount() == 1);

  // the branch continues the snapshot with its own sampler: the uninterrupted run's last ten ids
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(ten.id, QString(), true, 10); }), QString());
  QCOMPARE(lastRunIds(w), twenty.mid(10));
  const SnapshotInfo end = f.panel()->info(f.panel()->lastAdded());
  QCOMPARE(end.parent, ten.id);
  QCOMPARE(end.tokens, kPromptTokens + 20);
  QCOMPARE(f.panel()->tree()->topLevelItem(0)->childCount(), 1);

  // a second branch with the same settings is the same text; one with other text hangs beside it
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(ten.id, QString(), true, 10); }), QString());
  QCOMPARE(lastRunIds(w), twenty.mid(10));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(ten.id, QStringLiteral("1, 2, 3"), false, 4); }), QString());
  QCOMPARE(f.panel()->info(f.panel()->lastAdded()).tokens, kPromptTokens + 10 + 3 + 4);
  QCOMPARE(f.panel()->tree()->topLevelItem(0)->childCount(), 3);

  // restoring shows the snapshot's text, and Continue (keeping its sampler) goes on exactly
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->restore(ten.id); }), QString());
  QCOMPARE(w.transcript().runs.size(), 1);
  QCOMPARE(w.transcript().runs[0].kind, QStringLiteral("restore"));
  QCOMPARE(w.transcript().runs[0].promptTokens, kPromptTokens + 10);
  QSignalSpy done(&w, &MainWindow::generationFinished);
  w.continueWith(QString(), true, 10);
  QVERIFY(done.wait(kWaitMs));
  QCOMPARE(lastRunIds(w), twenty.mid(10));
  // the checkpoints are reported with what they cost
  QTRY_VERIFY_WITH_TIMEOUT(f.panel()->checkpoints().count > 0, kWaitMs);
  QVERIFY(f.panel()->checkpoints().bytes > 0);
  QVERIFY(f.panel()->checkpointText().contains(QStringLiteral("replays at most")));
}

void SnapshotPanelTest::snapshotAtAPickedOrTypedToken() {
  Fixture f(m_tmp.filePath(QStringLiteral("b.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  f.panel()->setCheckpointInterval(4);
  QVERIFY(generate(w, kPrompt, 16));
  const QVector<qint32> ids = lastRunIds(w);
  TokenView* view = w.tokenView();
  QCOMPARE(view->tokenCount(), 16);
  const int pick = 6;  // the 7th generated token; checkpoints are 4 apart, so this one is replayed
  const qint64 position = view->spans()[pick].token.position;
  QCOMPARE(position, kPromptTokens + pick);
  view->ensureCursorVisible();
  const QRect r = view->spanRect(pick);
  QVERIFY(r.isValid());
  f.panel()->setPickMode(true);
  QSignalSpy ok(f.panel(), &SnapshotPanel::taskFinished);
  QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, r.center());
  QVERIFY(ok.wait(kWaitMs));
  QVERIFY(!f.panel()->pickMode());
  const SnapshotInfo at = f.panel()->info(f.panel()->lastAdded());
  QCOMPARE(at.origin, QStringLiteral("at token"));
  QCOMPARE(at.tokens, position + 1);
  // rebuilt exactly, generator included: continuing gives the ids the run gave after it
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(at.id, QString(), true, 5); }), QString());
  QCOMPARE(lastRunIds(w), ids.mid(pick + 1, 5));
  // a typed position inside the prompt
  QVERIFY(generate(w, kPrompt, 3));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotAt(2); }), QString());
  QCOMPARE(f.panel()->info(f.panel()->lastAdded()).tokens, qint64(3));
  // past the end is refused with a message
  QVERIFY(runTask(f.panel(), [&] { f.panel()->snapshotAt(500); }).contains(QStringLiteral("has 10 tokens")));
}

void SnapshotPanelTest::diffShowsPerHeadDistance() {
  Fixture f(m_tmp.filePath(QStringLiteral("c.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 6));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("a")); }), QString());
  const int a = f.panel()->lastAdded();
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(a, QString(), true, 8); }), QString());
  const int b = f.panel()->lastAdded();
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->diff(a, b); }), QString());
  const mamba::Config c = testConfig();
  const SnapshotDiff& d = f.panel()->lastDiff();
  QCOMPARE(d.layers, c.n_layer);
  QCOMPARE(d.heads, c.n_heads);
  QCOMPARE(d.delta.size(), int(c.n_layer * c.n_heads));
  for (float v : d.delta) QVERIFY(v > 0.f);  // eight more tokens move every head
  // the view shows it, the hover tells the exact value, the CSV export has every cell
  auto* plot = w.inspectorView(QStringLiteral("snapshot-diff"))->findChild<SnapshotDiffPlot*>();
  QVERIFY(plot && plot->hasDiff());
  QVERIFY(plot->cellText(2, 5).contains(QString::number(double(d.delta[2 * c.n_heads + 5]), 'g', 6)));
  QVERIFY(plot->cellText(2, 5).contains(QStringLiteral("layer 2, head 5")));
  QCOMPARE(plot->table().rows.size(), int(c.n_layer * c.n_heads));
  // a snapshot against itself: nothing
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->diff(a, a); }), QString());
  for (float v : f.panel()->lastDiff().delta) QCOMPARE(v, 0.f);
}

void SnapshotPanelTest::zeroAndCopyEditsDoWhatTheySay() {
  Fixture f(m_tmp.filePath(QStringLiteral("d.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 8));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("A")); }), QString());
  const int A = f.panel()->lastAdded();
  const mamba::Config c = testConfig();

  // zero L1 H2: the edited child has ||h|| = 0 there and differs nowhere else
  SnapshotEdit zero;
  zero.kind = SnapshotEdit::Kind::ZeroHead;
  zero.layer = 1;
  zero.head = 2;
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->editAndBranch(A, zero, 4, false); }), QString());
  const int edited = findOrigin(f.panel(), QStringLiteral("edit"));
  QVERIFY(edited > 0);
  QCOMPARE(f.panel()->info(edited).parent, A);
  QVERIFY(f.panel()->info(edited).edit.contains(QStringLiteral("zero h of L1 H2")));
  QCOMPARE(f.panel()->info(f.panel()->lastAdded()).parent, edited);  // its continuation
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->diff(A, edited); }), QString());
  const SnapshotDiff d = f.panel()->lastDiff();
  for (int i = 0; i < d.delta.size(); ++i) {
    if (i == 1 * c.n_heads + 2) {
      QCOMPARE(d.normB[i], 0.f);
      QVERIFY(d.normA[i] > 0.f);
      QCOMPARE(d.delta[i], d.normA[i]);
    } else {
      QCOMPARE(d.delta[i], 0.f);
    }
  }

  // copy layer 3 from another snapshot: equal to its source there (conv window too), A elsewhere
  QVERIFY(generate(w, QStringLiteral("100, 200, 300"), 9));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("B")); }), QString());
  const int B = f.panel()->lastAdded();
  SnapshotEdit copy;
  copy.kind = SnapshotEdit::Kind::CopyLayer;
  copy.layer = 3;
  copy.source = B;
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->editAndBranch(A, copy, 3, false); }), QString());
  const int copied = findOrigin(f.panel(), QStringLiteral("edit"));
  QVERIFY(copied != edited);
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->diff(copied, B); }), QString());
  for (qint64 h = 0; h < c.n_heads; ++h) QCOMPARE(f.panel()->lastDiff().delta[int(3 * c.n_heads + h)], 0.f);
  QCOMPARE(f.panel()->lastDiff().convDelta[3], 0.f);
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->diff(copied, A); }), QString());
  for (qint64 l = 0; l < 3; ++l)
    for (qint64 h = 0; h < c.n_heads; ++h) QCOMPARE(f.panel()->lastDiff().delta[int(l * c.n_heads + h)], 0.f);
}

void SnapshotPanelTest::dtEditShowsInTheBranchTraces() {
  Fixture f(m_tmp.filePath(QStringLiteral("e.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 6));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("A")); }), QString());
  const int A = f.panel()->lastAdded();
  SnapshotEdit e;
  e.kind = SnapshotEdit::Kind::ScaleDt;
  e.layer = 0;
  e.head = 1;
  e.factor = 0.0;
  // with a control: both continued, then diffed and traced
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->editAndBranch(A, e, 8, true); }), QString());
  const BranchTraces& t = f.panel()->lastTraces();
  QCOMPARE(t.traces.size(), 2);
  const BranchTrace &control = t.traces[0], &edited = t.traces[1];
  QVERIFY(edited.label.contains(QStringLiteral("dt x0")));
  QVERIFY(control.count > 8 && edited.count == control.count);  // the shared context, then both branches
  const qint64 H = edited.heads, L = edited.layers;
  int zeros = 0;
  for (qint64 r = 0; r < edited.count; ++r) {
    const qint64 pos = edited.first + r;
    const float de = edited.dt[int((r * L + 0) * H + 1)], dc = control.dt[int((r * L + 0) * H + 1)];
    if (pos < t.forkPosition) {
      QCOMPARE(de, dc);  // the common text
    } else {
      QCOMPARE(de, 0.f);  // the edit, in force for every following token
      QVERIFY(dc > 0.f);
      ++zeros;
    }
  }
  QCOMPARE(zeros, 8);
  // the branches view plots them, with the exact values on hover
  auto* plot = w.inspectorView(QStringLiteral("branches"))->findChild<BranchTracePlot*>();
  QVERIFY(plot && plot->hasTraces());
  plot->setHead(0, 1);
  QVERIFY(plot->pointText(t.forkPosition + 1).contains(QStringLiteral("dt = 0,")));
  QVERIFY(plot->table().rows.size() > 0);
}

void SnapshotPanelTest::exportImportRenameDelete() {
  Fixture f(m_tmp.filePath(QStringLiteral("g.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 5));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(QStringLiteral("keep")); }), QString());
  const SnapshotInfo keep = f.panel()->info(f.panel()->lastAdded());
  const QString path = m_tmp.filePath(QStringLiteral("keep.msnap"));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->exportTo(keep.id, path); }), QString());
  QCOMPARE(quint64(QFileInfo(path).size()), keep.fileBytes);
  QCOMPARE(f.panel()->info(keep.id).path, path);
  // the file is a snapshot of this model, as the CLI reads it
  const mamba::Snapshot s = mamba::load_snapshot(path.toStdString());
  QCOMPARE(qint64(s.tokens.size()), keep.tokens);
  QCOMPARE(QString::fromStdString(s.label), QStringLiteral("keep"));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->importFrom(path); }), QString());
  const SnapshotInfo imported = f.panel()->info(f.panel()->lastAdded());
  QCOMPARE(imported.origin, QStringLiteral("file"));
  QCOMPARE(imported.tokens, keep.tokens);
  QCOMPARE(imported.parent, -1);
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->restore(imported.id); }), QString());
  QCOMPARE(w.transcript().runs[0].promptTokens, keep.tokens);

  f.panel()->rename(keep.id, QStringLiteral("renamed"));
  QTRY_COMPARE_WITH_TIMEOUT(f.panel()->info(keep.id).label, QStringLiteral("renamed"), kWaitMs);
  const int before = int(f.panel()->snapshots().size());
  f.panel()->remove(keep.id);
  QTRY_COMPARE_WITH_TIMEOUT(int(f.panel()->snapshots().size()), before - 1, kWaitMs);
  QVERIFY(!f.panel()->tree()->findItems(QStringLiteral("renamed"), Qt::MatchRecursive).size());
}

void SnapshotPanelTest::refusalsLeaveEverythingAsItWas() {
  // a snapshot of another model, and a damaged one
  const QString other = m_tmp.filePath(QStringLiteral("other.msnap"));
  {
    auto m = mamba::Model::load(m_otherDir.toStdString());
    mamba::Session s(mamba::make_cpu_backend(m));
    mamba::GenerateOptions go;
    go.max_new_tokens = 4;
    s.generate(std::vector<int32_t>{1, 2, 3}, go);
    mamba::save_snapshot(s.snapshot(), other.toStdString());
  }
  std::string bytes = mamba::read_text_file(other.toStdString());
  bytes[bytes.size() / 2] ^= 0x20;
  const QString damaged = m_tmp.filePath(QStringLiteral("damaged.msnap"));
  mamba::test::write_file(damaged.toStdString(), bytes);

  Fixture f(m_tmp.filePath(QStringLiteral("h.ini")));
  MainWindow& w = f.window;
  QVERIFY(startAndLoad(w, m_modelDir));
  QVERIFY(generate(w, kPrompt, 5));
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->snapshotNow(); }), QString());
  const int count = int(f.panel()->snapshots().size());
  const QString text = w.transcript().text;
  QVERIFY(runTask(f.panel(), [&] { f.panel()->importFrom(other); }).contains(QStringLiteral("another model")));
  QVERIFY(runTask(f.panel(), [&] { f.panel()->importFrom(damaged); }).contains(QStringLiteral("altered or damaged")));
  QVERIFY(runTask(f.panel(), [&] {
            f.panel()->exportTo(f.panel()->lastAdded(), m_tmp.filePath(QStringLiteral("no/such/x.msnap")));
          }).contains(QStringLiteral("x.msnap")));
  QCOMPARE(int(f.panel()->snapshots().size()), count);
  QCOMPARE(w.transcript().text, text);
  QVERIFY(w.errorBanner()->isVisible());
  // the panel and the session still work
  QCOMPARE(runTask(f.panel(), [&] { f.panel()->branch(f.panel()->lastAdded(), QString(), true, 3); }), QString());
}

void SnapshotPanelTest::screenshotOfTheDemo() {
  for (const QString& view : {QStringLiteral("snapshots"), QStringLiteral("snapshot-diff")}) {
    const QString png = m_tmp.filePath(view + QStringLiteral(".png"));
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    p.setProcessEnvironment(env);
    p.start(studioBinary(), {QStringLiteral("--model"), m_modelDir, QStringLiteral("--screenshot"), png, QStringLiteral("--view"), view,
                             QStringLiteral("--prompt"), kPrompt, QStringLiteral("--generate"), QStringLiteral("8"),
                             QStringLiteral("--snapshot-demo"), QStringLiteral("--size"), QStringLiteral("900x700")});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 0);
    const QImage image(png);
    QCOMPARE(image.size(), QSize(900, 700));
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 2)
      for (int x = 0; x < image.width(); x += 2) colours.insert(image.pixel(x, y));
    QVERIFY2(colours.size() > (view == QLatin1String("snapshot-diff") ? 60 : 20),
             qPrintable(QStringLiteral("%1: %2 colours").arg(view).arg(colours.size())));
  }
}

}  // namespace studio::test
