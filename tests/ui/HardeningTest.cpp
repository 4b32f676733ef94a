#include "tests/ui/HardeningTest.h"

#include <sys/stat.h>

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QRandomGenerator>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>
#include <filesystem>

#include "tests/hostile_models.h"
#include "tests/ui/TestModels.h"
#include "ui/EngineThread.h"
#include "ui/EngineWorker.h"
#include "ui/StudioOptions.h"

namespace studio::test {

namespace {

void adopt(EngineWorker* w, std::shared_ptr<const mamba::Model> m, std::shared_ptr<const mamba::Tokenizer> t) {
  QSignalSpy changed(w, &EngineWorker::modelChanged);
  QMetaObject::invokeMethod(
      w, [=] { w->adoptModel(m, t, QStringLiteral("test")); }, Qt::QueuedConnection);
  QVERIFY(waitForCount(changed, 1));
}

GenerationRequest request(const QString& prompt, int n) {
  GenerationRequest r;
  r.prompt = prompt;
  r.sampling.maxNewTokens = n;
  r.sampling.temperature = 0.0;
  r.sampling.seed = 1;
  r.sampling.randomSeed = false;
  return r;
}

void requestGenerate(EngineWorker* w, const GenerationRequest& req) {
  QMetaObject::invokeMethod(w, "generate", Qt::QueuedConnection, Q_ARG(studio::GenerationRequest, req));
}

void loadModel(EngineWorker* w, const QString& dir) {
  QMetaObject::invokeMethod(w, "loadModel", Qt::QueuedConnection, Q_ARG(QString, dir));
}

void writeText(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  f.write(bytes);
}

}  // namespace

void HardeningTest::initTestCase() {
  QVERIFY(m_tmp.isValid());
  m_modelDir = m_tmp.filePath(QStringLiteral("good"));
  writeModelFolder(*smallModel(), m_modelDir, true);
}

void HardeningTest::brokenFoldersKeepPreviousModel() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());

  struct Broken {
    const char* name;
    std::function<void(const QString& dir)> breakIt;
    const char* file;  // the error names it
  };
  const QByteArray deep = QByteArray(200000, '[') + QByteArray(200000, ']');
  const std::vector<Broken> cases = {
      {"nested config", [&](const QString& d) { writeText(d + "/config.json", "{\"hidden_size\": " + deep + "}"); }, "config.json"},
      {"FIFO tokenizer",
       [](const QString& d) {
         QFile::remove(d + "/tokenizer.json");
         QCOMPARE(::mkfifo(QFile::encodeName(d + "/tokenizer.json").constData(), 0644), 0);
       },
       "tokenizer.json"},
      {"FIFO weights",
       [](const QString& d) {
         QFile::remove(d + "/model.safetensors");
         QCOMPARE(::mkfifo(QFile::encodeName(d + "/model.safetensors").constData(), 0644), 0);
       },
       "model.safetensors"},
      {"truncated weights",
       [](const QString& d) {
         QFile f(d + "/model.safetensors");
         QVERIFY(f.resize(f.size() / 2));
       },
       "model.safetensors"},
      {"nested tokenizer", [&](const QString& d) { writeText(d + "/tokenizer.json", "{\"model\": " + deep + "}"); }, "tokenizer.json"},
  };
  int i = 0;
  for (const Broken& c : cases) {
    const QString dir = m_tmp.filePath(QStringLiteral("broken%1").arg(i++));
    writeModelFolder(*smallModel(), dir, true);
    c.breakIt(dir);
    QSignalSpy failed(w, &EngineWorker::loadFailed);
    QSignalSpy changed(w, &EngineWorker::modelChanged);
    loadModel(w, dir);
    QVERIFY2(waitForCount(failed, 1, 20000), c.name);
    QVERIFY2(changed.isEmpty(), c.name);
    const QString error = failed.first().at(1).toString();
    QVERIFY2(error.contains(QLatin1String(c.file)), qPrintable(QStringLiteral("%1: %2").arg(QLatin1String(c.name), error)));
  }
  // the previous model still generates
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  requestGenerate(w, request(QStringLiteral("Hello"), 4));
  QVERIFY(waitForCount(finished, 1));
  QCOMPARE(finished.first().first().value<GenerationStats>().newTokens, 4);
}

void HardeningTest::malformedModelSuiteThroughTheWorker() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());
  const std::vector<mamba::test::hostile::Case> all = mamba::test::hostile::cases();
  QVERIFY(all.size() >= 30);
  int i = 0;
  for (const auto& c : all) {
    const std::filesystem::path dir = QFile::encodeName(m_tmp.filePath(QStringLiteral("hostile%1").arg(i++))).toStdString();
    try {
      mamba::test::hostile::make(c, dir);
    } catch (const std::exception& e) {
      QFAIL(qPrintable(QStringLiteral("%1: %2").arg(QLatin1String(c.name), QString::fromUtf8(e.what()))));
    }
    QSignalSpy failed(w, &EngineWorker::loadFailed);
    QSignalSpy changed(w, &EngineWorker::modelChanged);
    loadModel(w, QString::fromStdString(dir.string()));
    QVERIFY2(waitForCount(failed, 1, 60000), c.name);
    QVERIFY2(changed.isEmpty(), c.name);
    // the same specific error the command line prints: the file and the problem
    const QString error = failed.first().at(1).toString();
    for (const std::string& part : c.expect)
      QVERIFY2(error.contains(QString::fromStdString(part)),
               qPrintable(QStringLiteral("%1: '%2' not in: %3").arg(QLatin1String(c.name), QString::fromStdString(part), error)));
  }
  // after all of them, the model loaded before still generates
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  requestGenerate(w, request(QStringLiteral("Hello"), 4));
  QVERIFY(waitForCount(finished, 1));
  QCOMPARE(finished.first().first().value<GenerationStats>().newTokens, 4);
}

void HardeningTest::longPromptPrefillReportsProgressAndStops() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());
  QString prompt;
  for (int k = 0; k < 40000; ++k) prompt += QStringLiteral("to be or not ");  // ~160k tokens

  // To the end: progress rises to the prompt's length.
  QSignalSpy progress(w, &EngineWorker::prefillProgressChanged);
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  requestGenerate(w, request(prompt.left(40000), 2));
  QVERIFY(waitForCount(finished, 1, 120000));
  QVERIFY(progress.count() >= 2);
  qint64 last = -1;
  for (const auto& args : progress) {
    QVERIFY(args.at(0).toLongLong() >= last);
    last = args.at(0).toLongLong();
  }
  QCOMPARE(last, progress.last().at(1).toLongLong());
  QCOMPARE(finished.first().first().value<GenerationStats>().newTokens, 2);

  // Stopped once the first progress arrives: the run ends "cancelled", without new tokens, long
  // before the prompt could have been read.
  QSignalSpy progress2(w, &EngineWorker::prefillProgressChanged);
  QSignalSpy finished2(w, &EngineWorker::generationFinished);
  QSignalSpy tokens(w, &EngineWorker::tokenGenerated);
  connect(
      w, &EngineWorker::prefillProgressChanged, w,
      [w](qint64 done, qint64) {
        if (done > 0) w->requestStop();
      },
      Qt::DirectConnection);
  QElapsedTimer t;
  t.start();
  requestGenerate(w, request(prompt, 8));
  QVERIFY(waitForCount(finished2, 1, 120000));
  const GenerationStats st = finished2.first().first().value<GenerationStats>();
  QCOMPARE(st.stopReason, QStringLiteral("cancelled"));
  QCOMPARE(st.newTokens, 0);
  QVERIFY(tokens.isEmpty());
  QVERIFY(progress2.last().at(0).toLongLong() < progress2.last().at(1).toLongLong());
  disconnect(w, &EngineWorker::prefillProgressChanged, w, nullptr);
  // and the worker is ready for the next request
  QSignalSpy finished3(w, &EngineWorker::generationFinished);
  requestGenerate(w, request(QStringLiteral("Hello"), 3));
  QVERIFY(waitForCount(finished3, 1));
  QCOMPARE(finished3.first().first().value<GenerationStats>().newTokens, 3);
}

void HardeningTest::randomStopsAndCancels() {
  EngineThread engine;
  EngineWorker* w = engine.worker();
  adopt(w, smallModel(), smallTokenizer());
  QRandomGenerator rng(17);
  QSignalSpy ended(w, &EngineWorker::generationFinished);
  QSignalSpy failed(w, &EngineWorker::generationFailed);
  QSignalSpy loaded(w, &EngineWorker::modelChanged);
  QSignalSpy loadFailed(w, &EngineWorker::loadFailed);
  int generations = 0, loads = 0;
  for (int it = 0; it < 40; ++it) {
    if (it % 4 == 3) {
      loadModel(w, m_modelDir);
      ++loads;
      QTest::qWait(int(rng.bounded(3)));
      w->requestCancelLoad();
    } else {
      requestGenerate(w, request(QStringLiteral("to be or not ").repeated(1 + int(rng.bounded(400))), 1 + int(rng.bounded(30))));
      ++generations;
      QTest::qWait(int(rng.bounded(5)));
      w->requestStop();
    }
    QVERIFY(QTest::qWaitFor([&] { return ended.count() + failed.count() == generations && loaded.count() + loadFailed.count() == loads; },
                            30000));
  }
  QCOMPARE(failed.count(), 0);
  // still usable after all of it
  QSignalSpy finished(w, &EngineWorker::generationFinished);
  requestGenerate(w, request(QStringLiteral("Hello"), 3));
  QVERIFY(waitForCount(finished, 1));
  QCOMPARE(finished.first().first().value<GenerationStats>().newTokens, 3);
}

void HardeningTest::studioOptionsAreBounded() {
  const QString exe = QStringLiteral("mamba-studio");
  QString error;
  for (const QStringList& bad :
       {QStringList{QStringLiteral("--screenshot"), QStringLiteral("x.png"), QStringLiteral("--size"), QStringLiteral("100000x100000")},
        QStringList{QStringLiteral("--screenshot"), QStringLiteral("x.png"), QStringLiteral("--size"), QStringLiteral("8193x600")},
        QStringList{QStringLiteral("--screenshot"), QStringLiteral("x.png"), QStringLiteral("--size"), QStringLiteral("0x600")},
        QStringList{QStringLiteral("--screenshot"), QStringLiteral("x.png"), QStringLiteral("--prompt"), QStringLiteral("a"),
                    QStringLiteral("--generate"), QStringLiteral("2147483647")}}) {
    error.clear();
    QVERIFY2(!StudioOptions::parse(QStringList{exe} + bad, &error).has_value(), qPrintable(bad.join(u' ')));
    QVERIFY(!error.isEmpty());
  }
  const auto ok = StudioOptions::parse(
      {exe, QStringLiteral("--screenshot"), QStringLiteral("x.png"), QStringLiteral("--size"), QStringLiteral("8192x600"),
       QStringLiteral("--prompt"), QStringLiteral("a"), QStringLiteral("--generate"), QStringLiteral("4096")},
      &error);
  QVERIFY2(ok.has_value(), qPrintable(error));
  QCOMPARE(ok->size, QSize(8192, 600));
}

}  // namespace studio::test
