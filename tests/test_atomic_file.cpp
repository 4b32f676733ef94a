// write_file_atomic: the old file or the complete new one, never a part, whatever fails.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/test_util.h"

using namespace mamba;
using namespace mamba::test;
namespace fs = std::filesystem;

namespace {

// Files in `dir` other than the named ones (a leftover temporary file would show here).
std::vector<std::string> others(const fs::path& dir, const std::vector<std::string>& known) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(known.begin(), known.end(), name) == known.end()) out.push_back(name);
  }
  return out;
}

}  // namespace

TEST(AtomicFile, WritesAndReplaces) {
  TempDir d;
  const std::string f = d.file("a.bin");
  write_file_atomic(f, "first");
  EXPECT_EQ(read_text_file(f), "first");
  write_file_atomic(f, std::string(100000, 'x'));
  EXPECT_EQ(read_text_file(f), std::string(100000, 'x'));
  EXPECT_TRUE(others(d.path, {"a.bin"}).empty());
  // a replaced file keeps its permissions
  fs::permissions(f, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  write_file_atomic(f, "third");
  EXPECT_EQ(fs::status(f).permissions(), fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST(AtomicFile, StreamedPiecesAndAbandon) {
  TempDir d;
  const std::string f = d.file("b.bin");
  write_file_atomic(f, [](AtomicFile& out) {
    out.write("one ");
    out.write("two");
  });
  EXPECT_EQ(read_text_file(f), "one two");
  // the producer fails half way: the old file stays, nothing else is left behind
  EXPECT_THROW(write_file_atomic(f,
                                 [](AtomicFile& out) {
                                   out.write("half of a new file");
                                   throw Error("producer failed");
                                 }),
               Error);
  EXPECT_EQ(read_text_file(f), "one two");
  EXPECT_TRUE(others(d.path, {"b.bin"}).empty());
}

TEST(AtomicFile, MissingFolderAndFolderTarget) {
  TempDir d;
  try {
    write_file_atomic(d.file("no/such/folder/x.bin"), "x");
    FAIL() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_file_atomic(d.path.string(), "x"), Error);
}

// In a child process: the write must fail with a message naming the file and the cause. "" when it did.
std::string failing_write_in_child(const std::string& file, bool read_only_folder) {
  return in_child_process([&]() -> std::string {
    if (read_only_folder ? !drop_root() : !limit_file_size(4096)) return "could not set up the failure";
    try {
      write_file_atomic(file, std::string(1 << 20, 'n'));
      return "the write succeeded";
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.find(fs::path(file).filename().string()) == std::string::npos) return "message does not name the file: " + msg;
      if (msg.find(read_only_folder ? "permission denied" : "file size limit") == std::string::npos)
        return "message does not say why: " + msg;
    }
    return "";
  });
}

TEST(AtomicFile, ReadOnlyFolderLeavesOldFile) {
  TempDir d;
  const std::string f = d.file("keep.bin");
  write_file_atomic(f, "old content");
  fs::permissions(d.path, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  EXPECT_EQ(failing_write_in_child(f, true), "");
  fs::permissions(d.path, fs::perms::owner_all);
  EXPECT_EQ(read_text_file(f), "old content");
  EXPECT_TRUE(others(d.path, {"keep.bin"}).empty());
}

TEST(AtomicFile, FullDiskLeavesNoPartialFileAndOldFile) {
  TempDir d;
  const std::string f = d.file("big.bin");
  write_file_atomic(f, "old content");
  // the disk "fills" at 4 KiB (RLIMIT_FSIZE): the 1 MiB write fails part way
  EXPECT_EQ(failing_write_in_child(f, false), "");
  EXPECT_EQ(read_text_file(f), "old content");
  EXPECT_TRUE(others(d.path, {"big.bin"}).empty());
  // and a new file that cannot be written does not appear at all
  const std::string g = d.file("new.bin");
  EXPECT_EQ(failing_write_in_child(g, false), "");
  EXPECT_FALSE(fs::exists(g));
  EXPECT_TRUE(others(d.path, {"big.bin"}).empty());
}
