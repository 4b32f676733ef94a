#pragma once
// Models for the GUI tests: small random ones built in memory, and model folders written to disk
// with the small fixture tokenizer so the text paths (encode, stream decode, eos) are exercised.
#include <QSignalSpy>
#include <QString>
#include <QTest>
#include <memory>

#include "engine/model.h"
#include "engine/tokenizer.h"

namespace studio::test {

QString sourceDir();
QString tokenizerPath();  // tests/fixtures/tokenizer/small_tokenizer.json
QString studioBinary();
QString cliBinary();

// Small and fast (vocab 1024, covers the fixture tokenizer); eos 0 as in the tokenizer.
std::shared_ptr<const mamba::Model> smallModel(uint64_t seed = 7);
// Big enough that one token takes milliseconds, so stopping is measured against real work. No eos.
std::shared_ptr<const mamba::Model> midModel(uint64_t seed = 11);
std::shared_ptr<const mamba::Tokenizer> smallTokenizer();

// QSignalSpy::wait only counts emissions after it starts, and a worker-thread signal may come first.
inline bool waitForCount(QSignalSpy& spy, int count, int ms = 30000) {
  return QTest::qWaitFor([&] { return spy.count() >= count; }, ms);
}

// Writes `model` as config.json + model.safetensors (+ tokenizer.json when withTokenizer) into dir.
void writeModelFolder(const mamba::Model& model, const QString& dir, bool withTokenizer);

}  // namespace studio::test
