// Faults from outside: model files truncated, replaced or deleted while they load and after; writes that
// meet a full disk or a read-only folder. Nothing may crash, and nothing written may be left half done.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "engine/atomic_file.h"
#include "engine/input_file.h"
#include "engine/session.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using mamba::Error;
using mamba::test::TempDir;

// A model folder with enough tensors that loading reports progress several times.
std::string write_model(const TempDir& d, const std::string& name = "m") {
  const fs::path dir = d.path / name;
  fs::create_directories(dir);
  auto c = mamba::test::tiny_config();
  c.n_layer = 6;
  c.finalize("tiny");
  const auto m = mamba::Model::random(c, 3);
  mamba::test::write_file((dir / "config.json").string(), mamba::test::config_json(c).dump());
  mamba::test::write_file((dir / "model.safetensors").string(), mamba::test::safetensors_bytes(mamba::test::model_tensors(*m)));
  return dir.string();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Files in `dir` other than `keep`.
std::vector<std::string> others(const fs::path& dir, const std::string& keep) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != keep) out.push_back(e.path().filename().string());
  return out;
}

}  // namespace

TEST(Faults, ModelFileTruncatedWhileLoading) {
  TempDir d;
  const std::string dir = write_model(d);
  const std::string file = dir + "/model.safetensors";
  mamba::LoadOptions lo;
  bool cut = false;
  lo.progress = [&](uint64_t done, uint64_t) {
    if (done > 0 && !cut) {
      fs::resize_file(file, fs::file_size(file) / 2);  // another program rewrites it in place
      cut = true;
    }
  };
  const std::string msg = error_of([&] { mamba::Model::load(dir, lo); });
  EXPECT_TRUE(cut);
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("shorter"), std::string::npos) << msg;
}

TEST(Faults, ModelFileReplacedOrDeletedWhileLoading) {
  TempDir d;
  const std::string dir = write_model(d), other = write_model(d, "other");
  const std::string file = dir + "/model.safetensors";
  for (int mode = 0; mode < 2; ++mode) {
    SCOPED_TRACE(mode ? "deleted" : "replaced");
    fs::copy_file(other + "/model.safetensors", file, fs::copy_options::overwrite_existing);
    mamba::LoadOptions lo;
    bool done_it = false;
    lo.progress = [&](uint64_t done, uint64_t) {
      if (done == 0 || done_it) return;
      done_it = true;
      if (mode == 0) {  // a download finishing: a new file renamed over the old one
        mamba::write_file_atomic(file, "not a model any more");
      } else {
        fs::remove(file);
      }
    };
    // The open file keeps its contents: the load completes with what was opened.
    const auto m = mamba::Model::load(dir, lo);
    EXPECT_TRUE(done_it);
    EXPECT_EQ(m->config.n_layer, 6);
  }
}

TEST(Faults, ModelDeletedAfterLoadStillGenerates) {
  TempDir d;
  const std::string dir = write_model(d);
  const auto m = mamba::Model::load(dir);
  fs::remove_all(dir);
  mamba::Session s(mamba::make_cpu_backend(m));
  mamba::GenerateOptions go;
  go.max_new_tokens = 8;
  go.stop_at_eos = false;
  EXPECT_EQ(s.generate(std::vector<int32_t>{1, 2, 3}, go).ids.size(), 8u);
}

TEST(Faults, FifoIsRefusedWithoutBlocking) {
  TempDir d;
  const std::string fifo = d.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string msg = error_of([&] { mamba::InputFile f(fifo); });
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { mamba::read_text_file(d.path.string()); }).find("folder"), std::string::npos);
  EXPECT_NE(error_of([&] { mamba::read_text_file(fifo); }).find(fifo), std::string::npos);
}

TEST(Faults, ReadOfAShrunkFileIsAnError) {
  TempDir d;
  const std::string f = d.file("x");
  mamba::test::write_file(f, std::string(1000, 'a'));
  const mamba::InputFile in(f);
  fs::resize_file(f, 10);
  char buf[100];
  EXPECT_NE(error_of([&] { in.read(500, buf, 100); }).find("shorter"), std::string::npos);
  EXPECT_NE(error_of([&] { in.read(990, buf, 100); }).find("past the end"), std::string::npos);
  EXPECT_NE(error_of([&] { mamba::read_file(f, 5); }).find("more than the 5"), std::string::npos);
}

TEST(Faults, AtomicWriteReplacesWhole) {
  TempDir d;
  const std::string f = d.file("state.bin");
  mamba::write_file_atomic(f, "first");
  mamba::write_file_atomic(f, std::string(100000, 'z'));
  EXPECT_EQ(mamba::read_text_file(f), std::string(100000, 'z'));
  EXPECT_TRUE(others(d.path, "state.bin").empty());
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask) << "permissions as a plain create would give";
}

// A full disk, simulated by the file-size limit: writes past it fail with EFBIG, as they would with ENOSPC.
TEST(Faults, AtomicWriteOnAFullDiskKeepsTheOldFile) {
  TempDir d;
  const std::string f = d.file("snapshot.bin");
  mamba::write_file_atomic(f, "old contents");
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string msg = error_of([&] { mamba::write_file_atomic(f, std::string(1 << 20, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  EXPECT_NE(msg.find(f), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot write"), std::string::npos) << msg;
  EXPECT_EQ(mamba::read_text_file(f), "old contents");
  EXPECT_TRUE(others(d.path, "snapshot.bin").empty()) << "a temporary file was left behind";
}

TEST(Faults, AtomicWriteIntoAReadOnlyFolder) {
  // /proc refuses new files even to root; a chmod'ed folder covers ordinary users.
  std::string msg = error_of([] { mamba::write_file_atomic("/proc/mamba_test_file", "x"); });
  EXPECT_NE(msg.find("/proc/mamba_test_file: cannot create a file in its folder"), std::string::npos) << msg;
  TempDir d;
  const std::string ro = d.file("ro");
  fs::create_directories(ro);
  mamba::test::write_file(ro + "/keep", "old");
  ::chmod(ro.c_str(), 0555);
  if (::geteuid() != 0) {
    msg = error_of([&] { mamba::write_file_atomic(ro + "/keep", "new"); });
    EXPECT_NE(msg.find("cannot create"), std::string::npos) << msg;
    EXPECT_EQ(mamba::read_text_file(ro + "/keep"), "old");
  }
  ::chmod(ro.c_str(), 0755);
  msg = error_of([&] { mamba::write_file_atomic(d.file("missing/folder/x"), "x"); });
  EXPECT_NE(msg.find("missing/folder/x"), std::string::npos) << msg;
}
