// mamba-studio: the desktop app. With --screenshot it renders itself headless and exits.
#include <QApplication>
#include <QTemporaryDir>
#include <cstdio>
#include <cstdlib>
#include <memory>

#ifdef __linux__
#include <unistd.h>
#endif

#include "ui/MainWindow.h"
#include "ui/ScreenshotRunner.h"
#include "ui/StudioOptions.h"
#include "ui/StudioSettings.h"

namespace {
// OpenMP threads that spin between parallel regions fight the GUI thread for cores: on 2 cores the
// default policy decoded at 3-6 tok/s where passive waiting gave 30-50. libgomp reads its wait policy
// once, when it is loaded, so it can only be chosen before the process starts: re-exec once with it set.
// A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
void preferPassiveOpenMp(char** argv) {
#ifdef __linux__
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run on with the default policy
#else
  (void)argv;
#endif
}
}  // namespace

int main(int argc, char** argv) {
  preferPassiveOpenMp(argv);
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("MambaStudio"));
  QApplication::setApplicationName(QStringLiteral("Mamba Studio"));
  QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/mamba-studio.png")));

  QString error;
  const std::optional<studio::StudioOptions> options = studio::StudioOptions::parse(QApplication::arguments(), &error);
  if (!options) {
    std::fprintf(stderr, "mamba-studio: %s\n", qPrintable(error));
    return 2;
  }
  const bool capture = !options->screenshot.isEmpty();

  // A capture must look the same wherever it runs, so it neither reads nor writes the user's settings.
  QTemporaryDir scratch;
  std::unique_ptr<studio::StudioSettings> settings =
      capture ? std::make_unique<studio::StudioSettings>(scratch.filePath(QStringLiteral("settings.ini")))
              : std::make_unique<studio::StudioSettings>();

  studio::MainWindow window(settings.get());
  if (!options->prompt.isEmpty()) window.setPrompt(options->prompt);
  std::unique_ptr<studio::ScreenshotRunner> runner;
  if (capture) {
    window.resize(options->size.isValid() ? options->size : QSize(1280, 800));
    runner = std::make_unique<studio::ScreenshotRunner>(&window, *options);
  }
  window.show();
  if (capture && options->size.isValid()) window.resize(options->size);  // show() may apply the minimum size first
  window.start(options->model);
  if (runner) runner->start();
  return QApplication::exec();
}
