#include "ui/StudioOptions.h"

#include <QCommandLineParser>
#include <QRegularExpression>

namespace studio {

std::optional<StudioOptions> StudioOptions::parse(const QStringList& arguments, QString* error) {
  QCommandLineParser p;
  p.setApplicationDescription(QStringLiteral("Mamba Studio: run and inspect Mamba-2 language models."));
  p.addHelpOption();
  p.addVersionOption();
  const QCommandLineOption model(QStringLiteral("model"), QStringLiteral("Open this model folder instead of the last or default one."),
                                 QStringLiteral("DIR"));
  const QCommandLineOption screenshot(QStringLiteral("screenshot"), QStringLiteral("Render the window to a PNG and exit (works headless)."),
                                      QStringLiteral("FILE"));
  const QCommandLineOption prompt(QStringLiteral("prompt"), QStringLiteral("Prompt text for --generate."), QStringLiteral("TEXT"));
  const QCommandLineOption generate(QStringLiteral("generate"), QStringLiteral("Generate N tokens before the screenshot."),
                                    QStringLiteral("N"));
  const QCommandLineOption seed(QStringLiteral("seed"), QStringLiteral("Sampling seed (default for screenshots: 1)."), QStringLiteral("S"));
  const QCommandLineOption view(QStringLiteral("view"), QStringLiteral("Capture only this view: window, tokens, prompt, model, sampling."),
                                QStringLiteral("NAME"));
  const QCommandLineOption size(QStringLiteral("size"), QStringLiteral("Window size for the screenshot, e.g. 1280x800."),
                                QStringLiteral("WxH"));
  const QCommandLineOption hover(QStringLiteral("hover-token"), QStringLiteral("Show generated token K's hover card in the screenshot."),
                                 QStringLiteral("K"));
  p.addOptions({model, screenshot, prompt, generate, seed, view, size, hover});
  p.process(arguments);  // exits on --help, --version and unknown options, with the message

  StudioOptions o;
  o.model = p.value(model);
  o.screenshot = p.value(screenshot);
  o.prompt = p.value(prompt);
  o.view = p.value(view);
  bool ok = true;
  if (p.isSet(generate)) {
    o.generate = p.value(generate).toInt(&ok);
    if (!ok || o.generate < 0 || o.generate > kMaxGenerate) {
      *error = QStringLiteral("--generate wants a token count in 0..%1, not '%2'").arg(kMaxGenerate).arg(p.value(generate));
      return std::nullopt;
    }
  }
  if (p.isSet(seed)) {
    o.seed = p.value(seed).toULongLong(&ok);
    if (!ok) {
      *error = QStringLiteral("--seed wants a non-negative integer, not '%1'").arg(p.value(seed));
      return std::nullopt;
    }
  }
  if (p.isSet(size)) {
    const auto m = QRegularExpression(QStringLiteral("^(\\d{1,5})[xX](\\d{1,5})$")).match(p.value(size));
    const auto inRange = [](int v) { return v >= 1 && v <= kMaxSide; };
    if (!m.hasMatch() || !inRange(m.captured(1).toInt()) || !inRange(m.captured(2).toInt())) {
      *error = QStringLiteral("--size wants WxH with sides in 1..%1, e.g. 1280x800, not '%2'").arg(kMaxSide).arg(p.value(size));
      return std::nullopt;
    }
    o.size = QSize(m.captured(1).toInt(), m.captured(2).toInt());
  }
  if (p.isSet(hover)) {
    o.hoverToken = p.value(hover).toInt(&ok);
    if (!ok || o.hoverToken < 0) {
      *error = QStringLiteral("--hover-token wants a token index >= 0, not '%1'").arg(p.value(hover));
      return std::nullopt;
    }
  }
  if (o.screenshot.isEmpty() && (o.generate > 0 || !o.view.isEmpty() || o.size.isValid() || o.hoverToken >= 0)) {
    *error = QStringLiteral("--generate, --view, --size and --hover-token go with --screenshot FILE");
    return std::nullopt;
  }
  if (o.generate > 0 && o.prompt.isEmpty()) {
    *error = QStringLiteral("--generate needs --prompt TEXT");
    return std::nullopt;
  }
  return o;
}

}  // namespace studio
