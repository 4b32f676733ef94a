#include "ui/SnapshotStore.h"

#include <QLocale>
#include <algorithm>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/probes.h"
#include "engine/state_edit.h"
#include "engine/tokenizer.h"

namespace studio {

namespace {

constexpr qint64 kSharedContext = 24;  // tokens of the common history shown before two branches part

QString samplerText(const mamba::Snapshot& s) {
  if (!s.sampler) return {};
  const mamba::SamplerParams& p = s.sampler->params;
  QStringList parts;
  parts << (p.temperature == 0.f ? QStringLiteral("greedy") : QStringLiteral("T %1").arg(double(p.temperature), 0, 'g', 3));
  if (p.top_k > 0) parts << QStringLiteral("top-k %1").arg(p.top_k);
  if (p.top_p < 1.f) parts << QStringLiteral("top-p %1").arg(double(p.top_p), 0, 'g', 3);
  if (p.min_p > 0.f) parts << QStringLiteral("min-p %1").arg(double(p.min_p), 0, 'g', 3);
  if (p.repeat_penalty != 1.f) parts << QStringLiteral("penalty %1").arg(double(p.repeat_penalty), 0, 'g', 3);
  parts << QStringLiteral("seed %1").arg(p.seed);
  return parts.join(QStringLiteral(", "));
}

QString tailText(const mamba::Snapshot& s, const mamba::Tokenizer* tok) {
  const size_t n = std::min<size_t>(s.tokens.size(), 24);
  const std::vector<int32_t> last(s.tokens.end() - int64_t(n), s.tokens.end());
  QString text;
  if (tok) {
    text = QString::fromUtf8(tok->decode(last));
  } else {
    QStringList ids;
    for (int32_t id : last) ids << QString::number(id);
    text = ids.join(QLatin1Char(' '));
  }
  text.replace(QLatin1Char('\n'), QChar(0x21B5));  // ↵
  return text.right(40);
}

}  // namespace

int SnapshotStore::add(mamba::Snapshot snap, int parent, const QString& origin, const QString& label, bool fromStart) {
  Node n;
  n.id = m_next++;
  n.parent = m_nodes.count(parent) ? parent : -1;
  n.label = label;
  n.origin = origin;
  n.fromStart = fromStart;
  n.snap = std::move(snap);
  n.snap.label = label.toStdString();
  const int id = n.id;
  m_nodes.emplace(id, std::move(n));
  return id;
}

SnapshotStore::Node* SnapshotStore::find(int id) {
  auto it = m_nodes.find(id);
  return it == m_nodes.end() ? nullptr : &it->second;
}

const SnapshotStore::Node& SnapshotStore::get(int id) const {
  auto it = m_nodes.find(id);
  if (it == m_nodes.end()) throw mamba::Error("there is no snapshot #" + std::to_string(id) + " (deleted?)");
  return it->second;
}

std::vector<int> SnapshotStore::remove(int id) {
  std::vector<int> moved;
  auto it = m_nodes.find(id);
  if (it == m_nodes.end()) return moved;
  const int parent = it->second.parent;
  m_nodes.erase(it);
  for (auto& [k, n] : m_nodes)
    if (n.parent == id) {
      n.parent = parent;
      moved.push_back(k);
    }
  return moved;
}

std::vector<int> SnapshotStore::ids() const {
  std::vector<int> out;
  for (const auto& [k, n] : m_nodes) out.push_back(k);
  return out;
}

QString SnapshotStore::nextLabel(const QString& base) const {
  auto used = [&](const QString& l) {
    return std::any_of(m_nodes.begin(), m_nodes.end(), [&](const auto& kv) { return kv.second.label == l; });
  };
  if (!used(base)) return base;
  for (int i = 2;; ++i)
    if (!used(QStringLiteral("%1 %2").arg(base).arg(i))) return QStringLiteral("%1 %2").arg(base).arg(i);
}

SnapshotInfo SnapshotStore::info(int id, const mamba::Model& model, const mamba::Tokenizer* tokenizer) const {
  const Node& n = get(id);
  const mamba::Snapshot& s = n.snap;
  SnapshotInfo i;
  i.id = n.id;
  i.parent = n.parent;
  i.label = n.label;
  i.origin = n.origin;
  i.edit = n.edit;
  i.path = n.path;
  i.tokens = qint64(s.tokens.size());
  i.fed = s.state.n_tokens;
  i.stateBytes = s.shape.state_bytes();
  i.fileBytes = s.file_bytes();
  mamba::Config shape = model.config;  // the comparison uses the snapshot's own model's depth and width
  shape.n_layer = s.shape.n_layer;
  i.kvBytes = mamba::transformer_kv_bytes(shape, i.tokens);
  i.device = QString::fromStdString(s.device);
  i.dtype = QString::fromStdString(s.weights_dtype);
  i.modelId = QString::fromStdString(s.model_id);
  i.engineVersion = QString::fromStdString(s.engine_version);
  i.otherModel = s.model_id != model.identity();
  i.created = QDateTime::fromSecsSinceEpoch(s.created_unix);
  i.sampler = samplerText(s);
  QStringList edits;
  for (const mamba::DtEdit& e : s.dt_edits) edits << QString::fromStdString(e.describe());
  i.dtEdits = edits.join(QStringLiteral("; "));
  if (!i.otherModel) i.tail = tailText(s, tokenizer);
  return i;
}

QString SnapshotStore::describe(const SnapshotEdit& e, const QString& sourceLabel) {
  const QString at = QStringLiteral("L%1 H%2").arg(e.layer).arg(e.head);
  switch (e.kind) {
    case SnapshotEdit::Kind::ZeroHead: return QStringLiteral("zero h of %1").arg(at);
    case SnapshotEdit::Kind::ScaleHead: return QStringLiteral("h x%1 in %2").arg(e.factor, 0, 'g', 4).arg(at);
    case SnapshotEdit::Kind::CopyLayer: return QStringLiteral("L%1 state from \u201c%2\u201d").arg(e.layer).arg(sourceLabel);
    case SnapshotEdit::Kind::ScaleDt: return QStringLiteral("dt x%1 in %2").arg(e.factor, 0, 'g', 4).arg(at);
    case SnapshotEdit::Kind::ClampDt:
      return QStringLiteral("dt clamped to [%1, %2] in %3").arg(e.lo, 0, 'g', 4).arg(e.hi, 0, 'g', 4).arg(at);
  }
  return {};
}

mamba::Snapshot SnapshotStore::edited(int id, const SnapshotEdit& e, const mamba::Model& model) const {
  const Node& n = get(id);
  mamba::check_snapshot_fits(n.snap, model, n.label.toStdString());
  mamba::Snapshot s = n.snap;
  const mamba::Config& c = model.config;
  switch (e.kind) {
    case SnapshotEdit::Kind::ZeroHead: mamba::scale_head_state(s.state, c, e.layer, e.head, 0.f); break;
    case SnapshotEdit::Kind::ScaleHead: mamba::scale_head_state(s.state, c, e.layer, e.head, float(e.factor)); break;
    case SnapshotEdit::Kind::CopyLayer: {
      const Node& src = get(e.source);
      mamba::check_snapshot_fits(src.snap, model, src.label.toStdString());
      mamba::copy_layer_state(s.state, src.snap.state, c, e.layer);
      break;
    }
    case SnapshotEdit::Kind::ScaleDt:
    case SnapshotEdit::Kind::ClampDt: {
      mamba::DtEdit d;
      d.layer = e.layer;
      d.head = e.head;
      if (e.kind == SnapshotEdit::Kind::ScaleDt) d.scale = float(e.factor);
      else {
        d.lo = float(e.lo);
        d.hi = float(e.hi);
      }
      // one edit per head: a new one replaces what was there
      std::erase_if(s.dt_edits, [&](const mamba::DtEdit& x) { return x.layer == d.layer && x.head == d.head; });
      s.dt_edits.push_back(d);
      mamba::check_dt_edits(s.dt_edits, c);
      break;
    }
  }
  return s;
}

SnapshotDiff SnapshotStore::diff(int a, int b, const mamba::Model& model) const {
  const Node &na = get(a), &nb = get(b);
  mamba::check_snapshot_fits(na.snap, model, na.label.toStdString());
  mamba::check_snapshot_fits(nb.snap, model, nb.label.toStdString());
  const mamba::StateDiff d = mamba::state_diff(na.snap.state, nb.snap.state, model.config);
  SnapshotDiff out;
  out.a = a;
  out.b = b;
  out.labelA = na.label;
  out.labelB = nb.label;
  out.layers = d.L;
  out.heads = d.H;
  out.delta = QVector<float>(d.delta.begin(), d.delta.end());
  out.normA = QVector<float>(d.norm_a.begin(), d.norm_a.end());
  out.normB = QVector<float>(d.norm_b.begin(), d.norm_b.end());
  out.convDelta = QVector<float>(d.conv_delta.begin(), d.conv_delta.end());
  return out;
}

std::vector<int> SnapshotStore::chain(int id) const {
  std::vector<int> out;
  for (int k = id; k != -1; k = get(k).parent) out.push_back(k);
  return out;
}

// Replays the tree path from `from` (an ancestor of `id`, or -1: the root's start) down to `id`: each
// edge feeds the tokens between the two snapshots with the child's dt edits, recording the probes, then
// takes the child's state exactly (edits, and any rounding between devices, are in it).
BranchTrace SnapshotStore::trace(int id, int from, const std::shared_ptr<const mamba::Model>& model) const {
  std::vector<int> path = chain(id);
  if (from != -1) path.erase(std::find(path.begin(), path.end(), from) + 1, path.end());
  std::reverse(path.begin(), path.end());
  const Node& first = get(path.front());
  BranchTrace t;
  t.id = id;
  t.label = get(id).label;
  t.layers = model->config.n_layer;
  t.heads = model->config.n_heads;
  mamba::BackendOptions bo;
  auto backend = mamba::make_cpu_backend(model, bo);
  const mamba::Snapshot* at = nullptr;  // where the backend is
  std::vector<int32_t> tokens;
  if (from == -1 && first.fromStart) {
    t.first = 0;
  } else {
    backend->set_state(first.snap.state);
    at = &first.snap;
    t.first = first.snap.state.n_tokens;
    path.erase(path.begin());
  }
  const int64_t end = get(id).snap.state.n_tokens;
  mamba::ProbeRecorder rec(model->config, model->weights, std::max<int64_t>(1, end - t.first));
  for (int k : path) {
    const mamba::Snapshot& s = get(k).snap;
    mamba::check_snapshot_fits(s, *model, get(k).label.toStdString());
    const int64_t done = at ? at->state.n_tokens : 0;
    const bool continues = s.state.n_tokens > done && (!at || std::equal(at->tokens.begin(), at->tokens.begin() + done, s.tokens.begin()));
    if (continues) {
      backend->set_dt_edits(s.dt_edits);
      mamba::ForwardOptions fo;
      fo.probes = &rec;
      backend->forward(std::span<const int32_t>(s.tokens.data() + done, size_t(s.state.n_tokens - done)), fo, nullptr);
    }
    backend->set_state(s.state);
    at = &s;
  }
  const mamba::ProbeFrames f = rec.frames(t.first, end);
  t.first = f.first;
  t.count = f.count;
  t.dt = QVector<float>(f.dt.begin(), f.dt.end());
  t.stateNorm = QVector<float>(f.state_norm.begin(), f.state_norm.end());
  return t;
}

BranchTraces SnapshotStore::traces(int a, int b, const std::shared_ptr<const mamba::Model>& model) const {
  const std::vector<int> ca = chain(a), cb = chain(b);
  BranchTraces out;
  for (int k : ca)
    if (std::find(cb.begin(), cb.end(), k) != cb.end()) {
      out.fork = k;
      break;
    }
  out.forkPosition = out.fork == -1 ? 0 : get(out.fork).snap.state.n_tokens;
  out.traces.push_back(trace(a, out.fork, model));
  out.traces.push_back(trace(b, out.fork, model));
  if (out.fork != -1) {
    // the shared text just before they part, for context: the same values in both
    const BranchTrace shared = trace(out.fork, -1, model);
    const qint64 keep = std::min<qint64>(shared.count, kSharedContext), skip = shared.count - keep;
    const qint64 row = shared.layers * shared.heads;
    for (BranchTrace& t : out.traces) {
      if (t.count > 0 && t.first != shared.first + shared.count) continue;  // not contiguous (cannot happen on one tree path)
      t.dt = shared.dt.mid(skip * row) + t.dt;
      t.stateNorm = shared.stateNorm.mid(skip * row) + t.stateNorm;
      t.first = shared.first + skip;
      t.count += keep;
    }
  }
  const SnapshotDiff d = diff(a, b, *model);
  const int top = int(std::max_element(d.delta.begin(), d.delta.end()) - d.delta.begin());
  out.focusLayer = top / int(d.heads);
  out.focusHead = top % int(d.heads);
  return out;
}

}  // namespace studio
