#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/utils/utils.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#ifdef EMBER_HAVE_CAIRO
#include "ember/utils/image_grid.hpp"
#include "ember/utils/plot.hpp"
#endif

using namespace ember;
namespace fs = std::filesystem;

namespace {

// A temporary directory removed at the end of the test case.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("ember_test_utils_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + what.size())) ++n;
  return n;
}

// A progress bar on a string stream with a hand-driven clock.
struct FakeBar {
  std::ostringstream out;
  double now = 100.0;
  utils::ProgressOptions options(bool tty, int ncols = 200) {
    utils::ProgressOptions o;
    o.out = &out;
    o.tty = tty;
    o.ncols = ncols;
    o.clock = [this] { return now; };
    return o;
  }
};

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ProgressBar
// ---------------------------------------------------------------------------------------------

TEST_CASE("ProgressBar: terminal line format (percentage, bar, counts, times, rate, metrics)") {
  FakeBar f;
  utils::ProgressBar bar(1875, "Epoch 1/8", f.options(true));
  // The empty bar is drawn at once.
  std::string bar0 = "\rEpoch 1/8   0%|" + std::string(25, ' ') + "| 0/1875 [00:00<?, ?it/s]";
  CHECK(f.out.str() == bar0);

  f.now += 843 / 190.2;  // 843 steps at 190.2 it/s
  bar.update(843, {{"loss", 0.31}, {"acc", 0.97}});
  // 843/1875 of 25 cells = 11.24 cells: 11 full blocks and one eighth.
  std::string line = "Epoch 1/8  44%|" + repeat("█", 11) + "▏" + std::string(13, ' ') +
                     "| 843/1875 [00:04<00:05, 190.2it/s, loss=0.3100, acc=0.9700]";
  CHECK(f.out.str() == bar0 + "\r" + line);
  CHECK(bar.n() == 843);

  bar.close();
  CHECK(f.out.str().back() == '\n');
  CHECK(f.out.str().find('\n') == f.out.str().size() - 1);  // one line, redrawn in place
  // Updates after close are ignored.
  std::string closed = f.out.str();
  f.now += 1;
  bar.update(10);
  CHECK(f.out.str() == closed);
  CHECK(bar.n() == 843);
}

TEST_CASE("ProgressBar: redraws at most every min_interval on a terminal") {
  FakeBar f;
  utils::ProgressBar bar(1000, "train", f.options(true));
  for (int i = 0; i < 1000; ++i) {
    f.now += 1.0 / 512;  // 1.95 s in total at 512 it/s (binary fractions keep the clock exact)
    bar.update(1, {{"loss", 1.0 / (i + 1)}});
  }
  size_t draws = count_of(f.out.str(), "\r");
  // One initial draw, then one per 0.1 s: about 20 in 1.95 s, never one per step.
  CHECK(draws >= 18);
  CHECK(draws <= 22);
  bar.close();
  std::string s = f.out.str();
  std::string last = s.substr(s.rfind('\r') + 1);
  CHECK(last.rfind("train 100%|" + repeat("█", 25) + "| 1000/1000 [00:02<00:00, 512.0it/s, loss=0.0010]", 0) == 0);
  CHECK(last.back() == '\n');
}

TEST_CASE("ProgressBar: plain lines at 10% steps when not a terminal") {
  FakeBar f;
  {
    utils::ProgressBar bar(200, "Epoch 2/8", f.options(false));
    CHECK(f.out.str().empty());  // no empty bar in a log
    for (int i = 0; i < 200; ++i) {
      f.now += 1.0 / 128;
      bar.update(1, {{"acc", 0.5}});
    }
    // The destructor closes the bar.
  }
  std::string s = f.out.str();
  CHECK(s.find('\r') == std::string::npos);
  CHECK(count_of(s, "\n") == 10);  // 10 %, 20 %, ..., 90 %, then the final 100 % line
  CHECK(s.rfind("Epoch 2/8  10%|", 0) == 0);
  CHECK(s.find("| 20/200 [00:00<00:01, 128.0it/s, acc=0.5000]\n") != std::string::npos);
  CHECK(count_of(s, " 100%|") == 1);
  CHECK(s.find("| 200/200 [00:02<00:00, 128.0it/s, acc=0.5000]\n") != std::string::npos);
}

TEST_CASE("ProgressBar: big steps, unknown total, slow rates, long durations, narrow terminals") {
  SUBCASE("one update crossing several 10% steps prints one line") {
    FakeBar f;
    utils::ProgressBar bar(10, "", f.options(false));
    f.now += 1;
    bar.update(5);
    CHECK(count_of(f.out.str(), "\n") == 1);
    CHECK(f.out.str().rfind(" 50%|", 0) == 0);
  }
  SUBCASE("unknown total: count and rate") {
    FakeBar f;
    utils::ProgressBar bar(0, "Loading", f.options(true));
    f.now += 1;
    bar.update(5);
    bar.close();
    CHECK(f.out.str().find("\rLoading 5it [00:01, 5.00it/s]\n") != std::string::npos);
  }
  SUBCASE("seconds per step below 1 it/s") {
    FakeBar f;
    utils::ProgressBar bar(4, "slow", f.options(true));
    f.now += 5;
    bar.update(2);
    CHECK(bar.format(f.now).find("[00:05<00:05, 2.50s/it]") != std::string::npos);
  }
  SUBCASE("hours") {
    FakeBar f;
    utils::ProgressBar bar(2, "", f.options(true));
    f.now += 3725;
    bar.update(1);
    CHECK(bar.format(f.now).find("[1:02:05<1:02:05,") != std::string::npos);
  }
  SUBCASE("the line fits a narrow terminal: the bar shrinks") {
    FakeBar f;
    utils::ProgressBar bar(1000, "Epoch 1/8", f.options(true, 70));
    f.now += 1;
    bar.update(500, {{"loss", 0.25}});
    std::string line = bar.format(f.now);
    CHECK(utils::detail::display_width(line) <= 69);
    CHECK(line.find("| 500/1000 [00:01<00:01, 500.0it/s, loss=0.2500]") != std::string::npos);
    CHECK(line.find("█") != std::string::npos);
  }
  SUBCASE("metric formatting") {
    CHECK(utils::detail::format_metric(0.31) == "0.3100");
    CHECK(utils::detail::format_metric(0.0) == "0.0000");
    CHECK(utils::detail::format_metric(2.5e-5) == "2.500e-05");
    CHECK(utils::detail::format_metric(-1.5) == "-1.5000");
  }
}

TEST_CASE("ProgressBar: writes to stderr by default, never to stdout") {
  std::ostringstream cout_capture, cerr_capture;
  auto* old_out = std::cout.rdbuf(cout_capture.rdbuf());
  auto* old_err = std::cerr.rdbuf(cerr_capture.rdbuf());
  {
    utils::ProgressBar bar(3, "stdout-free");
    bar.update(1, {{"loss", 1.0}});
    bar.write("a message above the bar");
    bar.update(2);
    bar.close();
  }
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  CHECK(cout_capture.str().empty());
  CHECK(cerr_capture.str().find("stdout-free 100%|") != std::string::npos);
  CHECK(cerr_capture.str().find("a message above the bar\n") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

TEST_CASE("AverageMeter: weighted running mean") {
  utils::AverageMeter m;
  CHECK(m.avg() == 0.0);
  m.update(1.0, 2);
  m.update(4.0, 1);
  CHECK(m.avg() == doctest::Approx(2.0));
  CHECK(m.sum() == doctest::Approx(6.0));
  CHECK(m.count() == 3);
  CHECK(m.val() == 4.0);
  m.reset();
  CHECK(m.count() == 0);
  CHECK(m.avg() == 0.0);
}

TEST_CASE("accuracy and count_correct from logits and targets") {
  Tensor logits = tensor<float>({0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f}, {3, 2});
  Tensor y = tensor<int64_t>({1, 1, 1});
  CHECK(utils::count_correct(logits, y) == 2);
  CHECK(utils::accuracy(logits, y) == doctest::Approx(2.0 / 3.0));
  // Non-contiguous logits (a transposed view) and float64.
  Tensor lt = tensor<double>({0.1, 0.8, 0.3, 0.9, 0.2, 0.7}, {2, 3}).transpose(0, 1);
  CHECK(utils::count_correct(lt, y) == 2);
  CHECK(utils::predicted_classes(lt) == std::vector<int64_t>{1, 0, 1});
  CHECK_THROWS_WITH_AS(utils::count_correct(logits, tensor<int64_t>({1, 1})), doctest::Contains("count_correct"),
                       ember::Error);
  CHECK_THROWS_AS(utils::accuracy(tensor<float>({1.f, 2.f}), y), ember::Error);
}

TEST_CASE("ConfusionMatrix: counts, precision, recall, table") {
  utils::ConfusionMatrix cm(3);
  cm.update(tensor<int64_t>({0, 1, 2, 2, 1}), tensor<int64_t>({0, 1, 1, 2, 2}));
  CHECK(cm.at(0, 0) == 1);
  CHECK(cm.at(1, 1) == 1);
  CHECK(cm.at(1, 2) == 1);  // a true 1 predicted as 2
  CHECK(cm.at(2, 2) == 1);
  CHECK(cm.at(2, 1) == 1);
  CHECK(cm.total() == 5);
  CHECK(cm.accuracy() == doctest::Approx(0.6));
  CHECK(cm.precision(2) == doctest::Approx(0.5));
  CHECK(cm.recall(1) == doctest::Approx(0.5));
  CHECK(cm.precision(0) == doctest::Approx(1.0));
  CHECK(cm.f1(1) == doctest::Approx(0.5));

  // Logits are argmax-ed.
  cm.update(tensor<float>({0.f, 0.f, 5.f}, {1, 3}), tensor<int64_t>({0}));
  CHECK(cm.at(0, 2) == 1);
  CHECK(cm.recall(0) == doctest::Approx(0.5));
  CHECK(cm.to_tensor().sizes() == Shape{3, 3});
  CHECK(cm.to_tensor().sum().item<int64_t>() == 6);

  std::string table = cm.to_string({"cat", "dog", "emu"});
  CHECK(table.find("true\\pred") != std::string::npos);
  CHECK(table.find("recall") != std::string::npos);
  CHECK(table.find("precision") != std::string::npos);
  CHECK(table.find("emu") != std::string::npos);
  CHECK(table.find("accuracy 0.5000 (6 samples)") != std::string::npos);
  // The "dog" row: 0 1 1, recall 0.500.
  CHECK(table.find("\ndog           0     1     1  0.500\n") != std::string::npos);

  CHECK_THROWS_WITH_AS(cm.update(3, 0), doctest::Contains("ConfusionMatrix::update"), ember::Error);
  CHECK_THROWS_AS(cm.update(tensor<float>({0.f, 1.f}, {1, 2}), tensor<int64_t>({0})), ember::Error);
  CHECK_THROWS_AS(utils::ConfusionMatrix(0), ember::Error);
  cm.reset();
  CHECK(cm.total() == 0);
}

TEST_CASE("MetricsLog: CSV and JSON files, written atomically, read back") {
  TempDir dir;
  utils::MetricsLog log(dir.path / "run" / "metrics");
  log.append({{"epoch", 1}, {"train_loss", 0.5}, {"test_acc", 0.9}});
  log.append({{"epoch", 2}, {"train_loss", 0.25}, {"test_acc", 0.95}, {"lr", 0.001}});
  log.append({{"epoch", 3}, {"train_loss", NAN}});

  CHECK(read_text(dir.path / "run" / "metrics.csv") ==
        "epoch,train_loss,test_acc,lr\n"
        "1,0.5,0.9,\n"
        "2,0.25,0.95,0.001\n"
        "3,nan,,\n");
  CHECK(read_text(dir.path / "run" / "metrics.json") ==
        "[\n"
        "  {\"epoch\": 1, \"train_loss\": 0.5, \"test_acc\": 0.9},\n"
        "  {\"epoch\": 2, \"train_loss\": 0.25, \"test_acc\": 0.95, \"lr\": 0.001},\n"
        "  {\"epoch\": 3, \"train_loss\": null}\n"
        "]\n");
  // Only the two files: no temporary left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path / "run")) ++files;
  CHECK(files == 2);

  auto acc = log.column("test_acc");
  REQUIRE(acc.size() == 3);
  CHECK(acc[1] == 0.95);
  CHECK(std::isnan(acc[2]));
  CHECK_THROWS_WITH_AS(log.column("nope"), doctest::Contains("no column 'nope'"), ember::Error);

  auto back = utils::MetricsLog::read_csv(dir.path / "run" / "metrics.csv");
  CHECK(back.columns() == log.columns());
  CHECK(back.size() == 3);
  CHECK(back.to_csv() == log.to_csv());

  // An empty log is an empty JSON array; a bad CSV names the file and line.
  CHECK(utils::MetricsLog().to_json() == "[]\n");
  std::ofstream(dir.path / "bad.csv") << "a,b\n1,2\n3,x\n";
  CHECK_THROWS_WITH_AS(utils::MetricsLog::read_csv(dir.path / "bad.csv"), doctest::Contains("line 3"), ember::Error);
  CHECK_THROWS_AS(utils::MetricsLog::read_csv(dir.path / "missing.csv"), ember::Error);
}

TEST_CASE("MetricsLog::resume: rows of epochs after the checkpoint's are dropped, the rest continue") {
  TempDir dir;
  {
    utils::MetricsLog log(dir.path / "metrics");
    log.append({{"epoch", 1}, {"loss", 0.5}});
    log.append({{"note", 7}});  // a row without an epoch is kept
    log.append({{"epoch", 2}, {"loss", 0.25}});
    log.append({{"epoch", 3}, {"loss", 0.125}});  // written after the checkpoint of epoch 2, before a crash
  }
  utils::MetricsLog log = utils::MetricsLog::resume(dir.path / "metrics", 2);
  CHECK(log.size() == 3);
  CHECK(read_text(dir.path / "metrics.csv") == "epoch,loss,note\n1,0.5,\n,,7\n2,0.25,\n3,0.125,\n");  // untouched so far
  log.append({{"epoch", 3}, {"loss", 0.1}});
  CHECK(read_text(dir.path / "metrics.csv") == "epoch,loss,note\n1,0.5,\n,,7\n2,0.25,\n3,0.1,\n");
  // No file yet: an empty log that saves where asked.
  utils::MetricsLog fresh = utils::MetricsLog::resume(dir.path / "new" / "metrics", 4);
  CHECK(fresh.size() == 0);
  fresh.append({{"epoch", 5}});
  CHECK(read_text(dir.path / "new" / "metrics.csv") == "epoch\n5\n");
}

TEST_CASE("setup_device and save_or_fail: --threads/--device and a failed save, as every program reports them") {
  const int before = get_num_threads();
  CHECK(utils::setup_device(1, "cpu") == kCPU);
  CHECK(get_num_threads() == 1);
  CHECK_THROWS_WITH_AS(utils::setup_device(1, "tpu"), doctest::Contains("expected cpu or cuda, got 'tpu'"), ember::Error);
  if (!cuda_is_available())
    CHECK_THROWS_WITH_AS(utils::setup_device(1, "cuda"), doctest::Contains("--device cuda: no CUDA device available"), ember::Error);
  set_num_threads(before);

  TempDir dir;
  const fs::path ck = dir.path / "last.safetensors";
  auto failing = [] { EMBER_FAIL("disk full"); };
  CHECK_THROWS_WITH_AS(utils::save_or_fail(ck, failing), "could not save the checkpoint (no earlier one exists): disk full", ember::Error);
  std::ofstream(ck) << "x";
  CHECK_THROWS_WITH_AS(utils::save_or_fail(ck, failing),
                       ("could not save the checkpoint (the previous '" + ck.string() + "' is intact): disk full").c_str(), ember::Error);
  bool ran = false;
  utils::save_or_fail(ck, [&] { ran = true; });
  CHECK(ran);
}

TEST_CASE("read_trained_checkpoint / load_trained_weights: the CLI's checkpoint, errors that say what to do") {
  TempDir dir;
  CHECK(utils::fixed(0.98765) == "0.9877");
  CHECK(utils::fixed(2.0, 1) == "2.0");

  // Missing: how to make one, with --out repeated only when it is not the default.
  CHECK_THROWS_WITH_AS(utils::read_trained_checkpoint("prog", "", (dir.path / "o").string(), "runs/prog"),
                       doctest::Contains(("train first (prog train --out " + (dir.path / "o").string() + ") or pass --checkpoint FILE").c_str()),
                       ember::Error);
  CHECK_THROWS_WITH_AS(utils::read_trained_checkpoint("prog", "", "runs/prog_that_is_not_there", "runs/prog_that_is_not_there"),
                       doctest::Contains("no checkpoint at 'runs/prog_that_is_not_there/best.safetensors': train first (prog train) or"),
                       ember::Error);

  nn::Linear saved(3, 2);
  io::Checkpoint ck;
  ck.model = saved.state_dict();
  ck.info.metadata = R"({"model": "tiny"})";
  fs::create_directories(dir.path / "o");
  io::save_checkpoint((dir.path / "o" / "best.safetensors").string(), ck);

  utils::TrainedCheckpoint c = utils::read_trained_checkpoint("prog", "", (dir.path / "o").string(), "runs/prog");
  CHECK(c.path == dir.path / "o" / "best.safetensors");
  CHECK(c.meta["model"] == "tiny");
  nn::Linear loaded(3, 2);
  loaded.train();
  utils::load_trained_weights(loaded, c.ckpt.model, c.path, Device::CPU);
  CHECK_FALSE(loaded.is_training());
  CHECK(loaded.weight.to_vector<float>() == saved.weight.to_vector<float>());
  // --checkpoint wins over --out; a network of another shape names the file.
  utils::TrainedCheckpoint same = utils::read_trained_checkpoint("prog", c.path.string(), "elsewhere", "runs/prog");
  nn::Linear other(4, 2);
  CHECK_THROWS_WITH_AS(utils::load_trained_weights(other, same.ckpt.model, same.path, Device::CPU),
                       doctest::Contains(("checkpoint '" + c.path.string() + "': ").c_str()), ember::Error);
}

// ---------------------------------------------------------------------------------------------
// PNG outputs (Cairo)
// ---------------------------------------------------------------------------------------------

#ifdef EMBER_HAVE_CAIRO

namespace {

// A PNG read back with Cairo, as opaque 0xRRGGBB pixels.
struct Png {
  int w = 0, h = 0;
  std::vector<uint32_t> px;
  uint32_t at(int x, int y) const { return px[static_cast<size_t>(y) * w + x] & 0xFFFFFF; }
};

Png read_png(const fs::path& p) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(p.c_str());
  REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
  Png img;
  img.w = cairo_image_surface_get_width(s);
  img.h = cairo_image_surface_get_height(s);
  int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < img.h; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<ptrdiff_t>(y) * stride);
    img.px.insert(img.px.end(), row, row + img.w);
  }
  cairo_surface_destroy(s);
  return img;
}

bool near(uint32_t a, uint32_t b, int tol) {
  for (int shift : {0, 8, 16}) {
    int ca = static_cast<int>((a >> shift) & 0xFF), cb = static_cast<int>((b >> shift) & 0xFF);
    if (std::abs(ca - cb) > tol) return false;
  }
  return true;
}

// Pixels in [x0, x1) × [y0, y1) within `tol` of colour `rgb`.
int count_color(const Png& img, uint32_t rgb, int x0, int y0, int x1, int y1, int tol = 20) {
  int n = 0;
  for (int y = std::max(0, y0); y < std::min(img.h, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(img.w, x1); ++x) n += near(img.at(x, y), rgb, tol);
  }
  return n;
}

// Dark pixels (text) in a region.
int count_dark(const Png& img, int x0, int y0, int x1, int y1) {
  int n = 0;
  for (int y = std::max(0, y0); y < std::min(img.h, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(img.w, x1); ++x) {
      uint32_t c = img.at(x, y);
      n += ((c >> 16) & 0xFF) < 100 && ((c >> 8) & 0xFF) < 100 && (c & 0xFF) < 100;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("nice_ticks and tick_labels") {
  CHECK(utils::nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0});
  CHECK(utils::nice_ticks(0.55, 8.35, 8, true) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(utils::nice_ticks(0.9712, 0.9921, 5) == std::vector<double>{0.975, 0.98, 0.985, 0.99});
  CHECK(utils::nice_ticks(-3, 7, 5) == std::vector<double>{-2, 0, 2, 4, 6});
  CHECK(utils::tick_labels({0, 0.25, 0.5}) == std::vector<std::string>{"0.00", "0.25", "0.50"});
  CHECK(utils::tick_labels({1, 2, 3}) == std::vector<std::string>{"1", "2", "3"});
  CHECK(utils::tick_labels({0.975, 0.98, 0.985}) == std::vector<std::string>{"0.975", "0.980", "0.985"});
  CHECK(utils::nice_ticks(2, 2) == std::vector<double>{2});
  CHECK(utils::nice_ticks(NAN, 1).empty());
}

TEST_CASE("LinePlot: PNG with the line, text and frame where expected") {
  TempDir dir;
  utils::LinePlot p("A rising line", "x", "y");
  utils::SeriesStyle red;
  red.color = utils::Color::hex(0xd62728);
  red.line_width = 3;
  p.add("rising", {0, 10}, {0, 10}, red);
  p.save_png(dir.path / "line.png", 800, 500);

  Png img = read_png(dir.path / "line.png");
  REQUIRE(img.w == 800);
  REQUIRE(img.h == 500);
  CHECK(img.at(0, 0) == 0xFFFFFF);  // white background
  // The line goes from the lower left to the upper right of the axes.
  CHECK(count_color(img, 0xd62728, 60, 250, 400, 480) > 200);
  CHECK(count_color(img, 0xd62728, 400, 30, 800, 250) > 200);
  // Up there: at most the legend's short sample line (the legend goes to the emptiest corner).
  CHECK(count_color(img, 0xd62728, 0, 0, 300, 200, 30) < 150);
  // Text: the title at the top centre, tick labels left of the axes and below them.
  CHECK(count_dark(img, 250, 0, 550, 40) > 50);
  CHECK(count_dark(img, 0, 60, 70, 440) > 100);
  CHECK(count_dark(img, 60, 440, 800, 500) > 100);
  // Antialiasing: the line's edges blend into the background (intermediate colours).
  CHECK(count_color(img, 0xEB9394, 60, 30, 800, 480, 40) > 20);
}

TEST_CASE("plot_training_curves: two panels, train and test curves in each") {
  TempDir dir;
  std::vector<double> tl = {0.9, 0.4, 0.2, 0.15, 0.1}, vl = {0.5, 0.3, 0.25, 0.2, 0.18};
  std::vector<double> ta = {0.8, 0.9, 0.95, 0.97, 0.98}, va = {0.85, 0.92, 0.94, 0.96, 0.97};
  utils::plot_training_curves(dir.path / "curves.png", tl, vl, ta, va);
  Png img = read_png(dir.path / "curves.png");
  REQUIRE(img.w == 1200);
  REQUIRE(img.h == 450);
  uint32_t blue = 0x1f77b4, orange = 0xff7f0e;
  CHECK(count_color(img, blue, 0, 0, 600, 450) > 300);
  CHECK(count_color(img, orange, 0, 0, 600, 450) > 300);
  CHECK(count_color(img, blue, 600, 0, 1200, 450) > 300);
  CHECK(count_color(img, orange, 600, 0, 1200, 450) > 300);
  CHECK(count_dark(img, 150, 0, 450, 40) > 30);   // "Loss"
  CHECK(count_dark(img, 750, 0, 1050, 40) > 30);  // "Accuracy"
  // An empty curve is left out rather than failing.
  utils::plot_training_curves(dir.path / "partial.png", tl, {}, ta, {});
  CHECK(count_color(read_png(dir.path / "partial.png"), orange, 0, 0, 1200, 450) == 0);
}

TEST_CASE("plot_confusion_matrix: a long title over a 2-class matrix is not cut off") {
  TempDir dir;
  utils::ConfusionMatrix cm(2);
  cm.update(0, 0);
  cm.update(1, 1);
  utils::plot_confusion_matrix(dir.path / "cm2.png", cm, {"Cat", "Dog"}, "Confusion matrix (test accuracy 93.60 %)");
  Png img = read_png(dir.path / "cm2.png");
  // The title's ink (dark grey text) in the top band stays clear of the left and right edges.
  int minx = img.w, maxx = -1;
  for (int y = 0; y < 30 && y < img.h; ++y)
    for (int x = 0; x < img.w; ++x)
      if (near(img.at(x, y), 0x222222, 60)) minx = std::min(minx, x), maxx = std::max(maxx, x);
  REQUIRE(maxx >= 0);
  CHECK(minx >= 4);
  CHECK(maxx <= img.w - 5);
  CHECK(maxx - minx > 200);  // the whole title, not a clipped piece
}

TEST_CASE("plot_confusion_matrix: heatmap cells with counts") {
  TempDir dir;
  utils::ConfusionMatrix cm(3);
  for (int i = 0; i < 50; ++i) cm.update(i % 3, i % 3);
  cm.update(0, 1);
  utils::plot_confusion_matrix(dir.path / "cm.png", cm, {"zero", "one", "two"});
  Png img = read_png(dir.path / "cm.png");
  CHECK(img.w > 300);
  CHECK(img.h > 300);
  // The diagonal is the darkest blue; find its cells and check they run down the diagonal.
  uint32_t darkest = 0x08306b;
  int minx = img.w, maxx = 0, miny = img.h, maxy = 0, n = 0;
  for (int y = 0; y < img.h; ++y) {
    for (int x = 0; x < img.w; ++x) {
      if (near(img.at(x, y), darkest, 12)) {
        minx = std::min(minx, x), maxx = std::max(maxx, x), miny = std::min(miny, y), maxy = std::max(maxy, y), ++n;
      }
    }
  }
  REQUIRE(n > 1000);
  // Rows 0 and 2 are all correct (darkest); row 1 has 17 of 18 right, a little lighter, and its
  // one mistake is shaded light blue (log scale), not white.
  int cell = (maxx - minx + 1) / 3;
  CHECK(std::abs((maxx - minx) - (maxy - miny)) <= 2);  // square cells
  CHECK(cell > 40);
  CHECK(near(img.at(minx + cell / 6, miny + cell / 6), darkest, 12));                      // (0, 0)
  CHECK(near(img.at(maxx - cell / 6, maxy - cell / 6), darkest, 12));                      // (2, 2)
  CHECK(near(img.at(minx + cell + cell / 6, miny + cell / 6), 0xf7fbff, 12));              // (0, 1): 0
  auto rgb = [](utils::Color c) {
    return (static_cast<uint32_t>(std::lround(c.r * 255)) << 16) | (static_cast<uint32_t>(std::lround(c.g * 255)) << 8) |
           static_cast<uint32_t>(std::lround(c.b * 255));
  };
  CHECK(utils::detail::cell_shade(17, 18) == doctest::Approx(std::log(18.0) / std::log(19.0)));
  CHECK(near(img.at(minx + cell + cell / 6, miny + cell + cell / 6), rgb(utils::blues(utils::detail::cell_shade(17, 18))), 3));
  CHECK(near(img.at(minx + cell / 6, miny + cell + cell / 6), rgb(utils::blues(utils::detail::cell_shade(1, 18))), 3));
  CHECK(!near(img.at(minx + cell / 6, miny + cell + cell / 6), 0xf7fbff, 12));
  // Counts: white text on the dark (0, 0) cell, black text on the light (1, 0) cell ("1").
  CHECK(count_color(img, 0xFFFFFF, minx + cell / 4, miny + cell / 4, minx + 3 * cell / 4, miny + 3 * cell / 4, 40) > 10);
  CHECK(count_dark(img, minx + cell / 4, miny + cell + cell / 4, minx + 3 * cell / 4, miny + cell + 3 * cell / 4) > 5);
  // Class names beside the rows (left of the matrix).
  CHECK(count_dark(img, 0, miny, minx - 2, maxy) > 50);
}

TEST_CASE("make_grid and save_image_grid: layout and exact pixel values") {
  // Three 2×2 greyscale images: image i has values (i+1)/10 * (1, 2, 3, 4).
  std::vector<float> v;
  for (int i = 0; i < 3; ++i) {
    for (int k = 1; k <= 4; ++k) v.push_back(static_cast<float>((i + 1) * k) / 20.0f);
  }
  Tensor x = tensor<float>(v, {3, 1, 2, 2});
  utils::GridOptions o;
  o.nrow = 2;
  o.padding = 1;
  o.scale = 1;
  Tensor g = utils::make_grid(x, o);
  REQUIRE(g.sizes() == Shape{1, 7, 7});
  auto gv = utils::to_vector<float>(g);
  auto at = [&](int y, int xx) { return gv[static_cast<size_t>(y * 7 + xx)]; };
  CHECK(at(0, 0) == 0.0f);                            // padding
  CHECK(at(1, 1) == doctest::Approx(0.05f));          // image 0, (0, 0)
  CHECK(at(2, 2) == doctest::Approx(0.20f));          // image 0, (1, 1)
  CHECK(at(1, 4) == doctest::Approx(0.10f));          // image 1 starts at x = 1 + 2 + 1
  CHECK(at(4, 1) == doctest::Approx(0.15f));          // image 2 on the second row
  CHECK(at(5, 5) == 0.0f);                            // the empty fourth cell

  TempDir dir;
  utils::save_image_grid(dir.path / "grid.png", x, o);
  Png img = read_png(dir.path / "grid.png");
  REQUIRE(img.w == 7);
  REQUIRE(img.h == 7);
  auto grey = [](double f) {
    uint32_t b = static_cast<uint32_t>(std::lround(f * 255));
    return (b << 16) | (b << 8) | b;
  };
  CHECK(img.at(0, 0) == 0x000000);
  CHECK(img.at(1, 1) == grey(0.05));
  CHECK(img.at(2, 2) == grey(0.20));
  CHECK(img.at(4, 1) == grey(0.10));
  CHECK(img.at(5, 2) == grey(0.40));  // image 1, (1, 1)
  CHECK(img.at(1, 4) == grey(0.15));
  CHECK(img.at(5, 5) == 0x000000);

  // Colour images, a value range (tanh outputs in [-1, 1]) and upscaling.
  Tensor c = tensor<float>({-1.f, 0.f, 1.f}, {1, 3, 1, 1});
  utils::GridOptions oc;
  oc.padding = 0;
  oc.scale = 3;
  oc.value_range = {{-1.0, 1.0}};
  utils::save_image_grid(dir.path / "rgb.png", c, oc);
  Png rgb = read_png(dir.path / "rgb.png");
  REQUIRE(rgb.w == 3);
  REQUIRE(rgb.h == 3);
  for (int y = 0; y < 3; ++y) {
    for (int xx = 0; xx < 3; ++xx) CHECK(rgb.at(xx, y) == 0x0080FF);
  }

  // normalize maps the batch's min..max to 0..1.
  utils::GridOptions on;
  on.padding = 0;
  on.scale = 1;
  on.normalize = true;
  Tensor t = tensor<float>({-3.f, 5.f}, {1, 1, 1, 2});
  Tensor gn = utils::make_grid(t, on);
  CHECK(utils::to_vector<float>(gn) == std::vector<float>{0.f, 1.f});

  CHECK_THROWS_WITH_AS(utils::make_grid(zeros({2, 2, 4, 4}), o), doctest::Contains("1 or 3 channels"), ember::Error);
  CHECK_THROWS_AS(utils::make_grid(zeros({4, 4}), o), ember::Error);
}

TEST_CASE("save_image_grid: labels under the images") {
  TempDir dir;
  Tensor x = full({4, 1, 28, 28}, 0.5);
  utils::save_image_grid(dir.path / "labelled.png", x, 2, 2, {"7 (0.99)", "1", "2", "3"});
  Png img = read_png(dir.path / "labelled.png");
  // Auto scale 2: 56-px cells, plus a label strip.
  CHECK(img.w == 2 + 2 * (56 + 2));
  CHECK(img.h > 2 + 2 * (56 + 2));
  int strip_top = 2 + 56, strip_bottom = strip_top + 17;  // strip height: ceil(1.5 * 11.2 px font)
  CHECK(count_color(img, 0xFFFFFF, 2, strip_top, 58, strip_bottom, 60) > 10);  // white text on black
  CHECK(img.at(30, 30) == 0x808080);
  CHECK_THROWS_AS(utils::save_image_grid(dir.path / "bad.png", x, 2, 2, {"only one"}), ember::Error);
}

TEST_CASE("draw_boxes: rectangles and labels on an image, saved as PNG") {
  TempDir dir;
  int w = 200, h = 100;
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3), 200);
  utils::Box box{60, 40, 40, 40, "7 0.98", utils::Color::hex(0xff0000)};
  utils::BoxOptions opts;
  opts.line_width = 2;
  opts.font_size = 14;
  opts.title = "read: 7";
  utils::draw_boxes(dir.path / "boxes.png", rgb, w, h, {box}, 3, opts);
  Png img = read_png(dir.path / "boxes.png");
  REQUIRE(img.w == w);
  REQUIRE(img.h == h);
  CHECK(img.at(80, 60) == 0xC8C8C8);                   // inside the box: untouched
  CHECK(img.at(80, 40) == 0xFF0000);                   // top edge
  CHECK(img.at(60, 70) == 0xFF0000);                   // left edge
  CHECK(img.at(199, 99) == 0xC8C8C8);                  // far corner untouched
  CHECK(count_color(img, 0xFF0000, 59, 18, 130, 39) > 200);   // the label tab above the box
  CHECK(count_color(img, 0xFFFFFF, 59, 18, 130, 39, 60) > 10);  // its white text
  CHECK(count_dark(img, 0, 0, 80, 22) > 100);           // the title banner
  CHECK_THROWS_WITH_AS(utils::draw_boxes(dir.path / "x.png", rgb, w + 1, h, {}), doctest::Contains("draw_boxes"),
                       ember::Error);
}

TEST_CASE("save_png: grey, RGB and RGBA buffers; errors name the path") {
  TempDir dir;
  utils::save_png(dir.path / "g.png", {0, 255, 10, 20}, 2, 2, 1);
  Png g = read_png(dir.path / "g.png");
  CHECK(g.at(1, 0) == 0xFFFFFF);
  CHECK(g.at(0, 1) == 0x0A0A0A);
  utils::save_png(dir.path / "a.png", {255, 0, 0, 0, 0, 0, 255, 255}, 2, 1, 4);  // transparent over white
  Png a = read_png(dir.path / "a.png");
  CHECK(a.at(0, 0) == 0xFFFFFF);
  CHECK(a.at(1, 0) == 0x0000FF);
  CHECK_THROWS_AS(utils::save_png(dir.path / "bad.png", {1, 2, 3}, 2, 2, 1), ember::Error);
  CHECK_THROWS_WITH_AS(utils::save_png("/proc/no/such/dir/x.png", {1}, 1, 1, 1), doctest::Contains("/proc/no/such"),
                       ember::Error);
}

#else

TEST_CASE("PNG outputs (plots, image grids): skipped") {
  MESSAGE("built without Cairo (EMBER_HAVE_CAIRO undefined): utils/plot.hpp and utils/image_grid.hpp are not tested");
}

#endif
