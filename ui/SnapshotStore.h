#pragma once
// The snapshots of a studio session, kept on the engine thread: a tree (each branch, edit or later
// snapshot is a child of the one it came from), plus the engine work on them that is not the live
// session's: edits, diffs and probe traces along the tree, recomputed on a scratch CPU backend.
// Every function runs on the worker thread; the panel sees only the plain values of SnapshotTypes.h.
#include <QString>
#include <map>
#include <memory>
#include <vector>

#include "engine/snapshot.h"
#include "ui/SnapshotTypes.h"

namespace mamba {
struct Model;
class Tokenizer;
}  // namespace mamba

namespace studio {

class SnapshotStore {
 public:
  struct Node {
    int id = -1, parent = -1;
    QString label, origin, edit, path;
    bool fromStart = false;  // its history began with an empty state (a trace may start at token 0)
    mamba::Snapshot snap;
  };

  int add(mamba::Snapshot snap, int parent, const QString& origin, const QString& label, bool fromStart);
  Node* find(int id);
  const Node& get(int id) const;  // throws mamba::Error when there is none
  // Removes `id`; its children hang from its parent. Returns the ids whose parent changed.
  std::vector<int> remove(int id);
  std::vector<int> ids() const;
  int size() const { return int(m_nodes.size()); }
  QString nextLabel(const QString& base) const;  // "base", "base 2", ...

  SnapshotInfo info(int id, const mamba::Model& model, const mamba::Tokenizer* tokenizer) const;
  // A copy of `id` with the edit applied (CopyLayer reads edit.source); throws on a bad edit.
  mamba::Snapshot edited(int id, const SnapshotEdit& edit, const mamba::Model& model) const;
  static QString describe(const SnapshotEdit& edit, const QString& sourceLabel);
  SnapshotDiff diff(int a, int b, const mamba::Model& model) const;
  // Both branches' dt and ||h|| from their last common snapshot (or each one's start) to their ends.
  BranchTraces traces(int a, int b, const std::shared_ptr<const mamba::Model>& model) const;

 private:
  std::vector<int> chain(int id) const;  // id, its parent, ..., the root
  BranchTrace trace(int id, int from, const std::shared_ptr<const mamba::Model>& model) const;
  std::map<int, Node> m_nodes;
  int m_next = 1;
};

}  // namespace studio
