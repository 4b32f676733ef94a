#pragma once
// Plain values that cross from the engine thread to the GUI thread in queued signals.
// They copy engine results into Qt types so no engine object is ever shared between threads.
#include <QMetaType>
#include <QString>
#include <QVector>

namespace studio {

struct SamplingSettings {
  int maxNewTokens = 200;
  double temperature = 0.8;
  int topK = 0;
  double topP = 1.0;
  double minP = 0.0;
  double repeatPenalty = 1.0;
  quint64 seed = 1;
  bool randomSeed = true;  // the GUI draws a fresh seed per run and writes it back, so every run is reproducible
  bool operator==(const SamplingSettings&) const = default;
};

struct GenerationRequest {
  enum class Kind { Fresh, Continue };
  Kind kind = Kind::Fresh;
  QString prompt;             // text, or "1, 2, 3" ids when the model has no tokenizer
  SamplingSettings sampling;  // seed already resolved (randomSeed is informational here)
  // Continue: text to append first (may be empty), and whether to keep the session's sampler settings
  // and generator as they are (e.g. a restored snapshot's) instead of `sampling`
  bool keepSampler = false;
  QString scan = QStringLiteral("chunked");
};

struct TokenAlternative {
  qint32 id = 0;
  QString text;  // how the token reads on its own (escaped by the view, not here)
  float prob = 0.f;
};

struct TokenData {
  qint64 index = 0;     // 0-based among the tokens of this run
  qint64 position = 0;  // 0-based in the whole sequence (prompt tokens first)
  qint32 id = 0;
  QString piece;                           // newly completed text; may be empty while a UTF-8 character is split across tokens
  float prob = 0.f;                        // model probability of the chosen id
  QVector<TokenAlternative> alternatives;  // best first
  double tokensPerSecond = 0;              // decode rate so far in this run (0 until there are two tokens)
};

// The tokens of a prompt as the model sees them, from sequence position `first` on.
struct PromptTokens {
  qint64 first = 0;
  QVector<qint32> ids;
  QVector<QString> pieces;  // each token's text (empty while a UTF-8 character is split across tokens)
};

// Probe values (engine/probes.h) of consecutive positions [first, first + count), every layer and head,
// as the worker batches them: (count, layers, heads) / (count, layers) row-major.
struct ProbeBatch {
  qint64 first = 0, count = 0, layers = 0, heads = 0;
  QVector<float> dt, decay, stateNorm, yNorm, residNorm;
};

struct GenerationStats {
  qint64 promptTokens = 0;
  qint64 newTokens = 0;
  double prefillSeconds = 0;
  double decodeSeconds = 0;
  double tokensPerSecond = 0;  // decode rate over tokens after the first (the first one costs the prefill)
  qint64 totalTokens = 0;      // the whole sequence so far
  QString stopReason;          // length | eos | cancelled
};

struct ModelInfo {
  QString dir;
  QString label;  // folder name, or what a test called it
  QString hash;   // the model's identity (config and weights), when known
  qint64 layers = 0, dModel = 0, heads = 0, headDim = 0, dState = 0, groups = 0, convKernel = 0, chunkSize = 0;
  qint64 vocabSize = 0, params = 0;
  qint64 tokenizerVocab = 0;  // 0: no tokenizer, prompts are typed as ids
  bool tiedEmbeddings = false;
  QString dtype;
  quint64 fileBytes = 0;
  quint64 stateBytes = 0;  // per sequence, constant in its length
  double loadSeconds = 0;
  QString backendName;
  QString summary;
};

struct DeviceInfo {
  bool cudaAvailable = false;
  QString cudaWhyNot;
};

// Once per process, before any queued connection carries these types.
void registerEngineMetaTypes();

}  // namespace studio

Q_DECLARE_METATYPE(studio::SamplingSettings)
Q_DECLARE_METATYPE(studio::GenerationRequest)
Q_DECLARE_METATYPE(studio::TokenData)
Q_DECLARE_METATYPE(studio::GenerationStats)
Q_DECLARE_METATYPE(studio::PromptTokens)
Q_DECLARE_METATYPE(studio::ProbeBatch)
Q_DECLARE_METATYPE(studio::ModelInfo)
Q_DECLARE_METATYPE(studio::DeviceInfo)
