#include "tests/ui/TestModels.h"

#include <unistd.h>

#include <QDir>
#include <QFile>
#include <cmath>

#include "tests/test_util.h"

namespace studio::test {

QString sourceDir() { return QStringLiteral(MAMBA_SOURCE_DIR); }
QString tokenizerPath() { return sourceDir() + QStringLiteral("/tests/fixtures/tokenizer/small_tokenizer.json"); }
QString studioBinary() { return QStringLiteral(MAMBA_STUDIO_BIN); }
QString cliBinary() { return QStringLiteral(MAMBA_CLI_BIN); }

namespace {
mamba::Config config(int64_t d_model, int64_t layers, int64_t heads, int64_t head_dim, int64_t d_state, int64_t vocab, int64_t eos) {
  mamba::Config c;
  c.d_model = d_model;
  c.n_layer = layers;
  c.n_heads = heads;
  c.head_dim = head_dim;
  c.expand = heads * head_dim / d_model;
  c.d_state = d_state;
  c.n_groups = 1;
  c.chunk_size = 16;
  c.d_conv = 4;
  c.vocab_size = vocab;
  c.tie_embeddings = true;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = eos;
  c.finalize("ui-test");
  return c;
}
}  // namespace

std::shared_ptr<const mamba::Model> smallModel(uint64_t seed) { return mamba::Model::random(config(64, 2, 4, 32, 16, 1024, 0), seed); }

std::shared_ptr<const mamba::Model> midModel(uint64_t seed) { return mamba::Model::random(config(1024, 6, 32, 64, 64, 4096, -1), seed); }

std::shared_ptr<const mamba::Tokenizer> smallTokenizer() {
  return std::make_shared<const mamba::Tokenizer>(mamba::Tokenizer::from_file(tokenizerPath().toStdString()));
}

void writeModelFolder(const mamba::Model& model, const QString& dir, bool withTokenizer) {
  QDir().mkpath(dir);
  const std::string d = dir.toStdString();
  mamba::test::write_file(d + "/config.json", mamba::test::config_json(model.config).dump(2));
  mamba::test::write_file(d + "/model.safetensors", mamba::test::safetensors_bytes(mamba::test::model_tensors(model)));
  if (withTokenizer) QFile::copy(tokenizerPath(), QDir(dir).filePath(QStringLiteral("tokenizer.json")));
}

}  // namespace studio::test
