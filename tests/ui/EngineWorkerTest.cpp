#include "tests/ui/EngineWorkerTest.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>
#include <atomic>

#include "backends/backend_factory.h"
#include "engine/session.h"
#include "tests/ui/TestModels.h"
#include "ui/EngineThread.h"
#include "ui/EngineWorker.h"

namespace studio::test {

namespace {

constexpr int kWaitMs = 30000;

void adopt(EngineWorker* w, std::shared_ptr<const mamba::Model> m, std::shared_ptr<const mamba::Tokenizer> t) {
  QSignalSpy changed(w, &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(
      w, [=] { w->adoptModel(m, t, QStringLiteral("test")); }, Qt::QueuedConnection);
  QVERIFY(waitForCount(changed, 1));
}

void requestGenerate(EngineWorker* w, const GenerationRequest& req) {
  QMetaObject::invokeMethod(w, "generate", Qt::QueuedConnection, Q_ARG(studio::GenerationRequest, req));
}

// Runs one request to the end and returns the streamed tokens.
QVector<TokenData> run(EngineWorker* w, const GenerationRequest& req, GenerationStats* stats = nullptr) {
  QSignalSpy tokens(w, &EngineWorker::tokenGenerated);
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  QSignalSpy failed(w, &EngineWorker::generationFailed);
  requestGenerate(w, req);
  if (!QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, kWaitMs)) qWarning("generation did not end");
  if (!failed.isEmpty()) qWarning() << "generation failed:" << failed.first().first().toString();
  QVector<TokenData> out;
  for (const QList<QVariant>& args : tokens) out.push_back(args.first().value<TokenData>());
  if (stats && !finished.isEmpty()) *stats = finished.first().first().value<GenerationStats>();
  return out;
}

QVector<qint32> idsOf(const QVector<TokenData>& tokens) {
  QVector<qint32> ids;
  for (const TokenData& t : tokens) ids.push_back(t.id);
  return ids;
}

GenerationRequest request(const QString& prompt, int n, quint64 seed) {
  GenerationRequest r;
  r.prompt = prompt;
  r.sampling.maxNewTokens = n;
  r.sampling.temperature = 0.9;
  r.sampling.topK = 40;
  r.sampling.topP = 0.95;
  r.sampling.minP = 0.01;
  r.sampling.repeatPenalty = 1.1;
  r.sampling.seed = seed;
  r.sampling.randomSeed = false;
  return r;
}

}  // namespace

void EngineWorkerTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("small"));
  writeModelFolder(*smallModel(), m_modelDir, true);
}

void EngineWorkerTest::streamsSameIdsAsDirectSession() {
  const auto model = smallModel();
  const auto tok = smallTokenizer();
  EngineThread engine;
  adopt(engine.worker(), model, tok);

  const GenerationRequest req = request(QStringLiteral("ROMEO:\nBut soft"), 48, 1234);
  const QVector<TokenData> streamed = run(engine.worker(), req);
  QVERIFY(!streamed.isEmpty());

  // the same call mamba-cli makes
  mamba::Session session(mamba::make_backend("cpu", model));
  mamba::GenerateOptions go;
  go.max_new_tokens = 48;
  go.sampling.temperature = 0.9f;
  go.sampling.top_k = 40;
  go.sampling.top_p = 0.95f;
  go.sampling.min_p = 0.01f;
  go.sampling.repeat_penalty = 1.1f;
  go.sampling.seed = 1234;
  go.sampling.n_valid = tok->vocab_size();
  go.eos_id = *tok->eos_id();
  const auto r = session.generate(tok->encode("ROMEO:\nBut soft"), go);
  QCOMPARE(idsOf(streamed), QVector<qint32>(r.ids.begin(), r.ids.end()));

  // the pieces are the streamed decode of those ids, and every token carries its top-10
  QString text;
  for (const TokenData& t : streamed) {
    text += t.piece;
    QCOMPARE(t.alternatives.size(), 10);
    QVERIFY(t.prob > 0.f && t.prob <= 1.f);
    QVERIFY(t.alternatives.first().prob >= t.alternatives.last().prob);
  }
  QVERIFY(QString::fromStdString(tok->decode(r.ids)).startsWith(text));
}

void EngineWorkerTest::matchesCliGenerate_data() {
  QTest::addColumn<QString>("dir");
  QTest::addColumn<QString>("scan");
  QTest::addColumn<double>("temperature");
  QTest::addColumn<quint64>("seed");
  QTest::newRow("chunked t=0.8") << m_modelDir << "chunked" << 0.8 << quint64(42);
  QTest::newRow("recurrent t=1.2") << m_modelDir << "recurrent" << 1.2 << quint64(7);
  QTest::newRow("greedy") << m_modelDir << "chunked" << 0.0 << quint64(1);
  // the embedded default model (bf16 weights, its own tokenizer), once it is in the tree
  const QString builtIn = QString::fromStdString(mamba::default_model_dir());
  if (QFileInfo::exists(QDir(builtIn).filePath(QStringLiteral("config.json"))))
    QTest::newRow("default model") << builtIn << "chunked" << 0.8 << quint64(3);
}

void EngineWorkerTest::matchesCliGenerate() {
  QFETCH(QString, dir);
  QFETCH(QString, scan);
  QFETCH(double, temperature);
  QFETCH(quint64, seed);
  EngineThread engine;
  QSignalSpy changed(engine.worker(), &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(engine.worker(), "loadModel", Qt::QueuedConnection, Q_ARG(QString, dir));
  QVERIFY(waitForCount(changed, 1));

  GenerationRequest req;
  req.prompt = QStringLiteral("First Citizen:");
  req.scan = scan;
  req.sampling.maxNewTokens = 32;
  req.sampling.temperature = temperature;
  req.sampling.topK = 20;
  req.sampling.seed = seed;
  const QVector<qint32> gui = idsOf(run(engine.worker(), req));

  QProcess cli;
  cli.start(cliBinary(),
            {QStringLiteral("generate"), QStringLiteral("-m"), dir, QStringLiteral("-i"), req.prompt, QStringLiteral("-n"),
             QStringLiteral("32"), QStringLiteral("-t"), QString::number(temperature), QStringLiteral("--top-k"), QStringLiteral("20"),
             QStringLiteral("--seed"), QString::number(seed), QStringLiteral("--scan"), scan, QStringLiteral("--print-ids")});
  QVERIFY(cli.waitForFinished(kWaitMs));
  QCOMPARE(cli.exitCode(), 0);
  const QList<QByteArray> lines = cli.readAllStandardOutput().trimmed().split('\n');
  const QJsonArray arr = QJsonDocument::fromJson(lines.last()).array();
  QVERIFY(!arr.isEmpty());
  QVector<qint32> ids;
  for (const QJsonValue& v : arr) ids.push_back(v.toInt());
  QCOMPARE(gui, ids);
}

void EngineWorkerTest::continueExtendsTheSequence() {
  EngineThread engine;
  adopt(engine.worker(), smallModel(), smallTokenizer());
  GenerationStats first, second;
  const auto a = run(engine.worker(), request(QStringLiteral("To be"), 6, 5), &first);
  GenerationRequest more = request({}, 6, 6);
  more.kind = GenerationRequest::Kind::Continue;
  const auto b = run(engine.worker(), more, &second);
  QCOMPARE(first.stopReason, QStringLiteral("length"));
  QCOMPARE(b.size(), 6);
  QCOMPARE(second.promptTokens, 0);
  QCOMPARE(second.totalTokens, first.totalTokens + 6);
}

void EngineWorkerTest::stopEndsGenerationWithin200ms() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, midModel(), nullptr);

  // the GUI thread must keep running its event loop while the worker decodes
  int ticks = 0;
  QTimer ticker;
  connect(&ticker, &QTimer::timeout, [&] { ++ticks; });
  ticker.start(5);

  QSignalSpy tokens(w, &EngineWorker::tokenGenerated);
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  GenerationRequest req = request(QStringLiteral("1 2 3 4 5"), 1'000'000, 3);
  requestGenerate(w, req);
  QTRY_VERIFY_WITH_TIMEOUT(tokens.count() >= 20, kWaitMs);
  QTest::qWait(300);
  QVERIFY2(finished.isEmpty(), "generation should still be running");
  QVERIFY2(ticks >= 20, qPrintable(QStringLiteral("GUI timer ticked only %1 times while decoding").arg(ticks)));

  // timed where the worker emits, not where the GUI thread notices (its wait polls in steps)
  QElapsedTimer t;
  std::atomic<qint64> stoppedAfterMs{-1};
  connect(
      w, &EngineWorker::generationFinished, w, [&] { stoppedAfterMs = t.elapsed(); }, Qt::DirectConnection);
  t.start();
  w->requestStop();
  QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), 5000);
  const qint64 ms = stoppedAfterMs.load();
  qInfo("stopped after %lld ms, %lld tokens", static_cast<long long>(ms), static_cast<long long>(tokens.count()));
  QVERIFY(ms >= 0);
  QVERIFY2(ms < 200, qPrintable(QStringLiteral("stop took %1 ms").arg(ms)));
  QCOMPARE(finished.first().first().value<GenerationStats>().stopReason, QStringLiteral("cancelled"));
}

void EngineWorkerTest::malformedFolderKeepsPreviousModel() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());

  const QString bad = m_tmp.filePath(QStringLiteral("bad"));
  QDir().mkpath(bad);
  QFile f(QDir(bad).filePath(QStringLiteral("config.json")));
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write("{\"hidden_size\": 64, \"num_hidden_layers\": ");
  f.close();

  QSignalSpy failed(w, &EngineWorker::loadFailed);
  QSignalSpy changed(w, &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(w, "loadModel", Qt::QueuedConnection, Q_ARG(QString, bad));
  QVERIFY(waitForCount(failed, 1));
  QVERIFY(changed.isEmpty());
  const QString error = failed.first().at(1).toString();
  QVERIFY2(error.contains(QStringLiteral("config.json")), qPrintable(error));

  QSignalSpy failedMissing(w, &EngineWorker::loadFailed);
  QMetaObject::invokeMethod(w, "loadModel", Qt::QueuedConnection, Q_ARG(QString, m_tmp.filePath(QStringLiteral("nowhere"))));
  QVERIFY(waitForCount(failedMissing, 1));

  // the old model still generates
  QCOMPARE(run(w, request(QStringLiteral("Hello"), 4, 9)).size(), 4);
}

void EngineWorkerTest::cancelledLoadKeepsPreviousModel() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());
  // cancel from the first progress report, as the Cancel button would mid-load
  connect(
      w, &EngineWorker::loadProgressChanged, w,
      [w](qint64 done, qint64) {
        if (done > 0) w->requestCancelLoad();
      },
      Qt::DirectConnection);
  QSignalSpy failed(w, &EngineWorker::loadFailed);
  QSignalSpy changed(w, &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(w, "loadModel", Qt::QueuedConnection, Q_ARG(QString, m_modelDir));
  QVERIFY(waitForCount(failed, 1));
  QVERIFY(changed.isEmpty());
  QVERIFY2(failed.first().at(1).toString().contains(QStringLiteral("cancel")), qPrintable(failed.first().at(1).toString()));
  QCOMPARE(run(w, request(QStringLiteral("Hello"), 3, 9)).size(), 3);
}

void EngineWorkerTest::promptOfIdsWithoutTokenizer() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), nullptr);
  const auto tokens = run(w, request(QStringLiteral("5, 6 7"), 4, 2));
  QCOMPARE(tokens.size(), 4);
  QVERIFY(tokens.first().piece.contains(QString::number(tokens.first().id)));

  QSignalSpy failed(w, &EngineWorker::generationFailed);
  requestGenerate(w, request(QStringLiteral("hello"), 4, 2));
  QVERIFY(waitForCount(failed, 1));
  QVERIFY(failed.first().first().toString().contains(QStringLiteral("token ids")));
}

// Folders and single files of every format load through the worker, the dock learns the format and the
// tokenizer's source, and generation runs on each (ids when the model brings no tokenizer).
void EngineWorkerTest::opensEveryCheckpointFormat() {
  const QString root = QStringLiteral(MAMBA_SOURCE_DIR "/tests/fixtures/formats/");
  struct Case {
    const char* path;
    const char* arch;
    const char* format;
    bool tokenizer;
  };
  const Case cases[] = {{"mamba1_hf", "Mamba-1", "safetensors", false},       {"mamba1_original", "Mamba-1", "PyTorch zip", false},
                        {"mamba2_original", "Mamba-2", "PyTorch zip", false}, {"mambac/model.bin", "Mamba-1", "mamba.c", false},
                        {"gguf_mamba1/model.gguf", "Mamba-1", "GGUF", true},  {"gguf_mamba2/model.gguf", "Mamba-2", "GGUF", true}};
  EngineThread engine;
  for (const Case& c : cases) {
    QSignalSpy changed(engine.worker(), &EngineWorker::modelChanged);
    QSignalSpy failed(engine.worker(), &EngineWorker::loadFailed);
    QMetaObject::invokeMethod(engine.worker(), "loadModel", Qt::QueuedConnection, Q_ARG(QString, root + QLatin1String(c.path)));
    QVERIFY(QTest::qWaitFor([&] { return changed.count() + failed.count() > 0; }, kWaitMs));
    QVERIFY2(failed.isEmpty(), qPrintable(failed.isEmpty() ? QString() : failed.first().at(1).toString()));
    const ModelInfo info = changed.first().first().value<ModelInfo>();
    QCOMPARE(info.arch, QString::fromLatin1(c.arch));
    QVERIFY2(info.format.startsWith(QLatin1String(c.format)), qPrintable(info.format));
    QVERIFY(!info.tokenizerSource.isEmpty());
    QCOMPARE(info.tokenizerVocab > 0, c.tokenizer);
    GenerationRequest req = request(c.tokenizer ? QStringLiteral("Hello world") : QStringLiteral("1, 2, 3"), 5, 7);
    const QVector<TokenData> out = run(engine.worker(), req);
    QCOMPARE(out.size(), 5);
    for (const TokenData& t : out) QVERIFY(t.id < info.vocabValid);
  }
}

}  // namespace studio::test
