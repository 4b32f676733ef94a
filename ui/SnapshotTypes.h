#pragma once
// Plain values about snapshots that cross between the engine thread and the Snapshots panel. The
// snapshots themselves (engine objects) stay on the engine thread, in the worker's SnapshotStore.
#include <QDateTime>
#include <QMetaType>
#include <QString>
#include <QVector>

namespace studio {

struct SnapshotInfo {
  int id = -1;
  int parent = -1;  // -1: a root (the start of a text, or a file)
  QString label;
  QString origin;     // "taken" | "at token" | "branch" | "edit" | "file"
  QString edit;       // what an "edit" node changed, in words
  qint64 tokens = 0;  // the sequence's length (fed + pending)
  qint64 fed = 0;     // tokens run through the model; the last token is pending
  quint64 stateBytes = 0;
  quint64 fileBytes = 0;
  quint64 kvBytes = 0;  // a transformer's KV cache for as many tokens (engine/snapshot.h)
  QString device, dtype, modelId, engineVersion;
  bool otherModel = false;  // made with another model than the loaded one
  QDateTime created;
  QString sampler;  // the sampler's settings in words, or "" when it never sampled
  QString dtEdits;  // the dt edits in force, in words
  QString tail;     // the end of its text, for the list
  QString path;     // the file it came from or was last exported to
};

// An intervention that makes a new branch (engine/state_edit.h, engine/dt_edit.h).
struct SnapshotEdit {
  enum class Kind { ZeroHead, ScaleHead, CopyLayer, ScaleDt, ClampDt };
  Kind kind = Kind::ZeroHead;
  int layer = 0, head = 0;
  double factor = 0.5;         // ScaleHead, ScaleDt
  int source = -1;             // CopyLayer: the snapshot to copy from
  double lo = 0.0, hi = 0.01;  // ClampDt
};

// ||h_a - h_b|| per layer and head (row-major (layers, heads)), with each side's ||h||.
struct SnapshotDiff {
  int a = -1, b = -1;
  QString labelA, labelB;
  qint64 layers = 0, heads = 0;
  QVector<float> delta, normA, normB;
  QVector<float> convDelta;  // (layers) the conv windows' difference
};

// The probe traces of a branch from the point where the compared branches part, recomputed on the CPU:
// positions [first, first + count), (count, layers, heads) row-major.
struct BranchTrace {
  int id = -1;
  QString label;
  qint64 first = 0, count = 0, layers = 0, heads = 0;
  QVector<float> dt, stateNorm;
};

struct BranchTraces {
  int fork = -1;                      // the common ancestor, or -1
  qint64 forkPosition = 0;            // where they part
  int focusLayer = 0, focusHead = 0;  // where the two ends' states differ most (||Δh||)
  QVector<BranchTrace> traces;
};

// The sequence of a restored snapshot, for the transcript.
struct RestoredSequence {
  int id = -1;
  QVector<qint32> ids;
  QVector<QString> pieces;  // each token's text (empty inside a split UTF-8 character)
  QString text;
};

struct CheckpointInfo {
  qint64 every = 0;  // 0: off
  qint64 count = 0;
  quint64 bytes = 0;
  qint64 maxReplay = 0;  // tokens a snapshot at an earlier token replays at most
  qint64 first = 0;      // the earliest token that can be rebuilt
  qint64 tokens = 0;     // the sequence's length
};

void registerSnapshotMetaTypes();

}  // namespace studio

Q_DECLARE_METATYPE(studio::SnapshotInfo)
Q_DECLARE_METATYPE(studio::SnapshotEdit)
Q_DECLARE_METATYPE(studio::SnapshotDiff)
Q_DECLARE_METATYPE(studio::BranchTraces)
Q_DECLARE_METATYPE(studio::RestoredSequence)
Q_DECLARE_METATYPE(studio::CheckpointInfo)
