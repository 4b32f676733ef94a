#pragma once
// The command line of mamba-studio.
#include <QMap>
#include <QSize>
#include <QString>
#include <QStringList>
#include <optional>

namespace studio {

struct StudioOptions {
  QString model;                // --model DIR
  QString screenshot;           // --screenshot FILE: headless capture, then exit
  QString prompt;               // --prompt TEXT
  int generate = 0;             // --generate N
  std::optional<quint64> seed;  // --seed S
  QString view;                 // --view NAME ("window" when empty)
  QSize size;                   // --size WxH
  int hoverToken = -1;          // --hover-token K: draw token K's hover card into the capture
  // What an inspection view shows in the capture: --layer L, --head H, --chunk Q, --colour log|signed|rows,
  // --step 0..4 (the SSD matrix view), by option name.
  QMap<QString, QString> viewOptions;
  bool snapshotDemo = false;  // --snapshot-demo: after --generate, snapshot, branch, edit a head and compare

  // Screenshots are bounded: a side of 8192 pixels is a 256 MB image, 4096 tokens a long page.
  static constexpr int kMaxSide = 8192;
  static constexpr int kMaxGenerate = 4096;

  // Parses arguments (argv[0] first). On a bad value returns nullopt and sets `error`;
  // --help and --version print and exit as QCommandLineParser does.
  static std::optional<StudioOptions> parse(const QStringList& arguments, QString* error);
};

}  // namespace studio
