// EngineWorker's snapshot slots: the live session's snapshots, kept in a SnapshotStore on this thread.
#include <QFileInfo>
#include <new>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/session.h"
#include "engine/snapshot.h"
#include "engine/tokenizer.h"
#include "ui/EngineWorker.h"
#include "ui/SnapshotStore.h"

namespace studio {

namespace {
QString why(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return QObject::tr("out of memory");
  return QString::fromStdString(e.what());
}
}  // namespace

void registerSnapshotMetaTypes() {
  qRegisterMetaType<studio::SnapshotInfo>();
  qRegisterMetaType<studio::SnapshotEdit>();
  qRegisterMetaType<studio::SnapshotDiff>();
  qRegisterMetaType<studio::BranchTraces>();
  qRegisterMetaType<studio::RestoredSequence>();
  qRegisterMetaType<studio::CheckpointInfo>();
}

void EngineWorker::sessionRestarted() {
  m_liveSnapshot = -1;
  m_liveFromStart = true;
}

void EngineWorker::snapshotsAfterModelChange() {
  sessionRestarted();
  // snapshots of the previous model stay listed (marked, and refused if restored)
  if (!m_snapshots || !m_model) return;
  for (int id : m_snapshots->ids()) emitSnapshot(id, false);
  reportCheckpoints();
}

void EngineWorker::emitSnapshot(int id, bool added) {
  const SnapshotInfo info = m_snapshots->info(id, *m_model, m_tokenizer.get());
  if (added) emit snapshotAdded(info);
  else emit snapshotChanged(info);
}

void EngineWorker::takeSnapshot(const QString& label, qint64 position) {
  const QString what = tr("Could not take a snapshot");
  try {
    if (!m_session) throw mamba::Error(tr("no model is loaded").toStdString());
    if (m_session->tokens().empty()) throw mamba::Error(tr("there is no text yet: generate first").toStdString());
    if (!m_snapshots) m_snapshots = std::make_unique<SnapshotStore>();
    const qint64 last = qint64(m_session->tokens().size()) - 1;
    const bool now = position < 0 || position == last;
    mamba::Snapshot snap = now ? m_session->snapshot() : m_session->snapshot_at(position);
    int parent = m_liveSnapshot;
    if (!now) {
      // hangs from the last snapshot of the live line at or before that token
      parent = -1;
      for (int k = m_liveSnapshot; k != -1; k = m_snapshots->get(k).parent)
        if (m_snapshots->get(k).snap.tokens.size() <= snap.tokens.size()) {
          parent = k;
          break;
        }
    }
    const QString base = label.isEmpty() ? (now ? tr("token %1").arg(last) : tr("token %1").arg(position)) : label;
    const int id = m_snapshots->add(std::move(snap), parent, now ? QStringLiteral("taken") : QStringLiteral("at token"),
                                    m_snapshots->nextLabel(base), m_liveFromStart && parent == -1);
    if (now) m_liveSnapshot = id;  // what is generated next continues this one
    emitSnapshot(id, true);
  } catch (const std::exception& e) {
    emit snapshotFailed(what, why(e));
  }
}

void EngineWorker::restoreSnapshot(int id) {
  try {
    if (!m_session) throw mamba::Error(tr("no model is loaded").toStdString());
    if (!m_snapshots) throw mamba::Error(tr("there are no snapshots").toStdString());
    const SnapshotStore::Node& n = m_snapshots->get(id);
    // the checks come first inside: a refusal leaves the session as it was
    m_session->restore_snapshot(n.snap, n.label.toStdString());
    m_liveSnapshot = id;
    m_liveFromStart = false;
    RestoredSequence seq;
    seq.id = id;
    if (m_decoder) m_decoder->reset();
    for (int32_t t : n.snap.tokens) {
      seq.ids.push_back(t);
      seq.pieces.push_back(m_decoder ? QString::fromUtf8(m_decoder->push(t)) : QStringLiteral("⟨%1⟩ ").arg(t));
      seq.text += seq.pieces.back();
    }
    emit snapshotRestored(seq);
    if (m_probesOn) {
      // the inspection views follow: the restored text's probes, recomputed as when a view opens
      m_probesOn = false;
      setProbesEnabled(true);
    }
    reportCheckpoints();
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not restore the snapshot"), why(e));
  }
}

void EngineWorker::editSnapshot(int id, const SnapshotEdit& edit) {
  try {
    if (!m_session) throw mamba::Error(tr("no model is loaded").toStdString());
    if (!m_snapshots) throw mamba::Error(tr("there are no snapshots").toStdString());
    const SnapshotStore::Node& src = m_snapshots->get(id);
    mamba::Snapshot snap = m_snapshots->edited(id, edit, *m_model);
    const QString source = edit.kind == SnapshotEdit::Kind::CopyLayer ? m_snapshots->get(edit.source).label : QString();
    const QString what = SnapshotStore::describe(edit, source);
    const QString srcLabel = src.label;
    // restore first: a backend that cannot run the edit (dt edits on CUDA) refuses before anything is added
    m_session->restore_snapshot(snap, (srcLabel + QStringLiteral(" · ") + what).toStdString());
    const int child = m_snapshots->add(std::move(snap), id, QStringLiteral("edit"),
                                       m_snapshots->nextLabel(srcLabel + QStringLiteral(" · ") + what), false);
    m_snapshots->find(child)->edit = what;
    emitSnapshot(child, true);
    restoreSnapshot(child);
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not edit the state"), why(e));
  }
}

void EngineWorker::renameSnapshot(int id, const QString& label) {
  if (!m_snapshots || !m_snapshots->find(id) || label.trimmed().isEmpty()) return;
  SnapshotStore::Node* n = m_snapshots->find(id);
  n->label = label.trimmed();
  n->snap.label = n->label.toStdString();
  emitSnapshot(id, false);
}

void EngineWorker::deleteSnapshot(int id) {
  if (!m_snapshots || !m_snapshots->find(id)) return;
  if (m_liveSnapshot == id) m_liveSnapshot = m_snapshots->get(id).parent;
  const std::vector<int> moved = m_snapshots->remove(id);
  emit snapshotRemoved(id);
  for (int k : moved) emitSnapshot(k, false);
}

void EngineWorker::exportSnapshot(int id, const QString& path) {
  try {
    if (!m_snapshots) throw mamba::Error(tr("there are no snapshots").toStdString());
    SnapshotStore::Node* n = m_snapshots->find(id);
    if (!n) throw mamba::Error(tr("the snapshot was deleted").toStdString());
    mamba::save_snapshot(n->snap, path.toStdString());
    n->path = path;
    emitSnapshot(id, false);
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not export the snapshot"), why(e));
  }
}

void EngineWorker::importSnapshot(const QString& path) {
  try {
    if (!m_model) throw mamba::Error(tr("no model is loaded").toStdString());
    mamba::Snapshot snap = mamba::load_snapshot(path.toStdString());
    mamba::check_snapshot_fits(snap, *m_model, path.toStdString());
    if (!m_snapshots) m_snapshots = std::make_unique<SnapshotStore>();
    const QString label = snap.label.empty() ? QFileInfo(path).completeBaseName() : QString::fromStdString(snap.label);
    const int id = m_snapshots->add(std::move(snap), -1, QStringLiteral("file"), m_snapshots->nextLabel(label), false);
    m_snapshots->find(id)->path = path;
    emitSnapshot(id, true);
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not import %1").arg(QFileInfo(path).fileName()), why(e));
  }
}

void EngineWorker::diffSnapshots(int a, int b) {
  try {
    if (!m_model || !m_snapshots) throw mamba::Error(tr("no model or no snapshots").toStdString());
    emit snapshotDiffReady(m_snapshots->diff(a, b, *m_model));
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not compare the snapshots"), why(e));
  }
}

void EngineWorker::traceBranches(int a, int b) {
  try {
    if (!m_model || !m_snapshots) throw mamba::Error(tr("no model or no snapshots").toStdString());
    emit branchTracesReady(m_snapshots->traces(a, b, m_model));
  } catch (const std::exception& e) {
    emit snapshotFailed(tr("Could not trace the branches"), why(e));
  }
}

void EngineWorker::setCheckpointInterval(qint64 every) {
  m_checkpointEvery = std::max<qint64>(0, every);
  if (m_session) m_session->set_checkpoints(checkpointEvery());
  reportCheckpoints();
}

void EngineWorker::reportCheckpoints() {
  CheckpointInfo info;
  if (m_session) {
    const mamba::Session::CheckpointStats st = m_session->checkpoint_stats();
    info.every = st.every;
    info.count = st.count;
    info.bytes = st.bytes;
    info.maxReplay = st.max_replay;
    info.first = st.first;
    info.tokens = qint64(m_session->tokens().size());
  }
  emit checkpointsChanged(info);
}

}  // namespace studio
