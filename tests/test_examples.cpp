#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/io/image.hpp"
#include "ember/io/io.hpp"
#include "kill_test.hpp"
#include "vision_data.hpp"

// Command-line smoke tests of the tutorial programs: they run the built binaries (CMake passes
// their paths, e.g. EMBER_MNIST_CNN_BIN) on tiny data made here, so they check what a user sees:
// exit codes, the per-epoch line, the files written, one-line errors on bad input.
// Without a binary path (a g++ build of the tests alone) every case says so and passes.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// A scratch directory removed at the end of the test case.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("ember_test_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Runs the shell command `command`, capturing stdout and stderr separately.
RunResult run_command(const std::string& command, const TempDir& tmp) {
  const std::string err_file = tmp / "stderr.txt";
  const std::string cmd = command + " 2>" + quote(err_file);
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.err = slurp(err_file);
  return r;
}

/// Runs `bin args` (args already quoted as needed), capturing stdout and stderr separately.
RunResult run(const std::string& bin, const std::string& args, const TempDir& tmp) {
  return run_command(quote(bin) + " " + args, tmp);
}

/// Starts `bin args` in the background, stdout and stderr to files; returns its pid.
pid_t spawn(const std::string& bin, const std::string& args, const std::string& out_file, const std::string& err_file) {
  const std::string cmd = "exec " + quote(bin) + " " + args + " >" + quote(out_file) + " 2>" + quote(err_file);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

/// Waits for `pid` up to `seconds`; its exit code, or 128 + signal; -1 on timeout (it is killed).
int wait_for(pid_t pid, double seconds) {
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Lines of a file (0 if it does not exist).
size_t line_count(const fs::path& p) {
  std::string s = slurp(p);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

/// Files in `dir` whose name contains ".tmp." (temporaries of atomic writes).
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) v.push_back(e.path().filename().string());
  return v;
}

/// Whether two checkpoints hold bit-identical tensors (model, optimizer, scheduler).
bool same_tensors(const std::string& a, const std::string& b) {
  auto x = ember::io::load_safetensors(a), y = ember::io::load_safetensors(b);
  if (x.keys() != y.keys()) return false;
  for (const auto& [k, t] : x) {
    const auto& u = y.at(k);
    if (t.dtype() != u.dtype() || t.sizes() != u.sizes()) return false;
    if (std::memcmp(t.contiguous().raw_data(), u.contiguous().raw_data(), static_cast<size_t>(t.numel()) * t.element_size()))
      return false;
  }
  return true;
}
// ---- a tiny MNIST in IDX format --------------------------------------------------------------

void put_be32(std::ofstream& f, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  f.write(b, 4);
}

/// Writes `digits` (28 x 28 ink maps) as the IDX pair `<prefix>-images-idx3-ubyte` / `-labels-idx1-ubyte`.
void write_idx(const fs::path& dir, const std::string& prefix, const std::vector<vision_data::Digit>& digits) {
  std::ofstream im(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  put_be32(im, 2051);
  put_be32(im, static_cast<uint32_t>(digits.size()));
  put_be32(im, 28);
  put_be32(im, 28);
  for (const auto& d : digits) {
    auto bytes = ember::vision::to_u8(d.ink);
    im.write(reinterpret_cast<const char*>(bytes.data()), 784);
  }
  std::ofstream lb(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  put_be32(lb, 2049);
  put_be32(lb, static_cast<uint32_t>(digits.size()));
  for (const auto& d : digits) lb.put(static_cast<char>(d.label));
}

/// A grey image as an 8-bit io::Image (1 channel).
ember::io::Image to_image(const ember::vision::GrayImage& g) {
  return {g.width, g.height, 1, ember::vision::to_u8(g)};
}

/// A single digit drawn dark on light paper, `scale` times MNIST's size.
ember::vision::GrayImage paper_digit(const vision_data::Digit& d, int scale) {
  auto big = ember::vision::resize_area(d.ink, 28 * scale, 28 * scale);
  ember::vision::GrayImage img(40 * scale, 40 * scale, 0.92f);
  for (int y = 0; y < big.height; ++y)
    for (int x = 0; x < big.width; ++x) img(x + 6 * scale, y + 6 * scale) = 0.92f - 0.8f * big(x, y);
  return img;
}

/// Lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string l; std::getline(is, l);)
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  return out;
}

/// The last line of `text` that is not empty (the one-line error).
std::string last_line(const std::string& text) {
  std::istringstream is(text);
  std::string last;
  for (std::string l; std::getline(is, l);)
    if (!l.empty()) last = l;
  return last;
}

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// "path: 1234  (confidence ...)" → {path → "1234"} ("" for "no digits found").
std::map<std::string, std::string> parse_read_output(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream is(out);
  for (std::string l; std::getline(is, l);) {
    auto colon = l.find(": ");
    if (colon == std::string::npos) continue;
    std::string rest = l.substr(colon + 2);
    if (rest.rfind("no digits found", 0) == 0) {
      m[l.substr(0, colon)] = "";
      continue;
    }
    auto sp = rest.find("  (");
    m[l.substr(0, colon)] = rest.substr(0, sp);
  }
  return m;
}

}  // namespace

#ifndef EMBER_MNIST_CNN_BIN

TEST_CASE("mnist_cnn command line") {
  MESSAGE("skipped: EMBER_MNIST_CNN_BIN is not defined (build the tests with CMake, which builds examples/mnist_cnn)");
}

#else

TEST_CASE("mnist_cnn: --help, and bad arguments fail with a one-line message") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_cli");

  auto help = run(bin, "--help", tmp);
  CHECK(help.code == 0);
  for (const char* sub : {"train", "eval", "predict", "read"}) CHECK(help.out.find(sub) != std::string::npos);
  for (const char* sub : {"train", "eval", "predict", "read"}) {
    auto h = run(bin, std::string(sub) + " --help", tmp);
    CHECK_MESSAGE(h.code == 0, sub);
    CHECK(h.out.find("--checkpoint") != std::string::npos);
  }
  CHECK(run(bin, "train --help", tmp).out.find("--resume") != std::string::npos);
  CHECK(run(bin, "read --help", tmp).out.find("--debug-out") != std::string::npos);

  auto none = run(bin, "", tmp);  // a subcommand is required
  CHECK(none.code != 0);
  auto unknown = run(bin, "fly", tmp);
  CHECK(unknown.code != 0);
  auto epochs = run(bin, "train --epochs 0", tmp);
  CHECK(epochs.code != 0);
  CHECK(epochs.err.find("--epochs") != std::string::npos);
  auto model = run(bin, "train --model huge", tmp);
  CHECK(model.code != 0);
  CHECK(model.err.find("--model") != std::string::npos);
  auto device = run(bin, "eval --device tpu", tmp);
  CHECK(device.code != 0);

  // Missing data directory and missing checkpoint: one line starting with "error:".
  auto nodata = run(bin, "train --data " + quote(tmp / "no_such_dir") + " --out " + quote(tmp / "o"), tmp);
  CHECK(nodata.code != 0);
  CHECK(last_line(nodata.err).rfind("error: ", 0) == 0);
  CHECK(nodata.err.find("no_such_dir") != std::string::npos);
  auto nockpt = run(bin, "eval --out " + quote(tmp / "empty"), tmp);
  CHECK(nockpt.code != 0);
  CHECK(nockpt.err.find("no checkpoint") != std::string::npos);
  auto nopredict = run(bin, "predict", tmp);  // IMAGE... is required
  CHECK(nopredict.code != 0);
}

TEST_CASE("mnist_cnn: train on a tiny IDX set, resume exactly, eval, predict, read") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_run");
  fs::create_directories(tmp.path / "data");
  auto train_digits = vision_data::synthetic_digits(96, 11);
  auto test_digits = vision_data::synthetic_digits(40, 12);
  write_idx(tmp.path / "data", "train", train_digits);
  write_idx(tmp.path / "data", "t10k", test_digits);
  const std::string common = "--data " + quote(tmp / "data") + " --threads 1 ";

  // Two epochs in one go ...
  auto full = run(bin, "train " + common + "--epochs 2 --batch-size 16 --workers 0 --out " + quote(tmp / "full"), tmp);
  REQUIRE_MESSAGE(full.code == 0, full.err);
  auto epoch_lines = lines_starting(full.out, "Epoch: ");
  REQUIRE(epoch_lines.size() == 2);
  CHECK(epoch_lines[0].find("Epoch: 1, Train_acc:") == 0);
  CHECK(epoch_lines[0].find(", Train_loss:") != std::string::npos);
  CHECK(epoch_lines[0].find(", Test_acc:") != std::string::npos);
  CHECK(epoch_lines[0].find(", Test_loss:") != std::string::npos);
  for (const char* f : {"last.safetensors", "best.safetensors", "metrics.csv", "metrics.json", "curves.png"})
    CHECK_MESSAGE(fs::exists(tmp.path / "full" / f), f);
  CHECK(lines_starting(slurp(tmp.path / "full" / "metrics.csv"), "2,").size() == 1);

  // ... equals one epoch, then --resume for the second (model, optimizer, RNG, data order).
  auto first = run(bin, "train " + common + "--epochs 1 --batch-size 16 --workers 0 --out " + quote(tmp / "split"), tmp);
  REQUIRE_MESSAGE(first.code == 0, first.err);
  CHECK(lines_starting(first.out, "Epoch: ") == std::vector<std::string>{epoch_lines[0]});
  auto resumed = run(bin, "train " + common + "--epochs 2 --resume --out " + quote(tmp / "split"), tmp);
  REQUIRE_MESSAGE(resumed.code == 0, resumed.err);
  CHECK(lines_starting(resumed.out, "Epoch: ") == std::vector<std::string>{epoch_lines[1]});
  CHECK(lines_starting(slurp(tmp.path / "split" / "metrics.csv"), "2,").size() == 1);

  // The improved network trains through the same code path (1 epoch, tiny).
  auto improved = run(bin, "train " + common + "--model improved --epochs 1 --batch-size 16 --out " + quote(tmp / "imp"), tmp);
  CHECK_MESSAGE(improved.code == 0, improved.err);

  // eval: accuracy line, confusion matrix, confusion.png in --out.
  const std::string ckpt = " --checkpoint " + quote((tmp.path / "full" / "last.safetensors").string());
  auto ev = run(bin, "eval " + common + "--out " + quote(tmp / "full") + ckpt, tmp);
  REQUIRE_MESSAGE(ev.code == 0, ev.err);
  CHECK(ev.out.find("Test_acc:") != std::string::npos);
  CHECK(fs::exists(tmp.path / "full" / "confusion.png"));
  // A checkpoint of the other network, or not a checkpoint at all: a clear error.
  auto bad_ckpt = run(bin, "eval " + common + "--checkpoint " + quote(tmp / "data/train-labels-idx1-ubyte"), tmp);
  CHECK(bad_ckpt.code != 0);
  CHECK(last_line(bad_ckpt.err).rfind("error: ", 0) == 0);

  // predict: the images people have. Dark on light, light on dark, RGBA on a transparent
  // background, a PNG named .jpg, a blank page; a text file and a missing file fail per image.
  const auto& d = test_digits[0];
  auto paper = paper_digit(d, 4);
  ember::io::write_png(tmp / "dark_on_light.png", to_image(paper));
  ember::io::write_png(tmp / "light_on_dark.png", to_image(ember::vision::invert(paper)));
  ember::io::Image rgba = ember::io::Image::filled(paper.width, paper.height, 4, 0);
  for (int y = 0; y < paper.height; ++y)
    for (int x = 0; x < paper.width; ++x) rgba.at(x, y, 3) = static_cast<uint8_t>(std::lround(255 * (0.92f - paper(x, y))));
  ember::io::write_png(tmp / "transparent.png", rgba);
  ember::io::write_png(tmp / "lying.jpg", to_image(paper));
  ember::io::write_png(tmp / "blank.png", to_image(ember::vision::GrayImage(64, 64, 0.9f)));
  std::ofstream(tmp / "notes.png") << "not an image";

  std::string imgs;
  for (const char* f : {"dark_on_light.png", "light_on_dark.png", "transparent.png", "lying.jpg", "blank.png"})
    imgs += " " + quote(tmp / f);
  auto pr = run(bin, "predict " + common + ckpt + imgs, tmp);
  REQUIRE_MESSAGE(pr.code == 0, pr.err);
  for (const char* f : {"dark_on_light.png", "light_on_dark.png", "transparent.png", "lying.jpg"}) {
    auto l = lines_starting(pr.out, tmp / f);
    REQUIRE_MESSAGE(l.size() == 1, f);
    CHECK(l[0].find("(p=") != std::string::npos);
  }
  // Every polarity and container gives the same framed digit, hence the same answer.
  auto digit_of = [&](const char* f) { return lines_starting(pr.out, tmp / f)[0].substr((tmp / f).size() + 2, 1); };
  CHECK(digit_of("light_on_dark.png") == digit_of("dark_on_light.png"));
  CHECK(digit_of("lying.jpg") == digit_of("dark_on_light.png"));
  CHECK(lines_starting(pr.out, tmp / "blank.png") == std::vector<std::string>{tmp / "blank.png" + ": no digits found"});

  auto pr_bad = run(bin, "predict " + common + ckpt + " " + quote(tmp / "notes.png") + " " + quote(tmp / "missing.png") +
                             " " + quote(tmp / "dark_on_light.png"),
                    tmp);
  CHECK(pr_bad.code != 0);  // some images could not be read ...
  CHECK(lines_starting(pr_bad.out, tmp / "dark_on_light.png").size() == 1);  // ... the others still are
  CHECK(pr_bad.err.find("notes.png") != std::string::npos);
  CHECK(pr_bad.err.find("missing.png") != std::string::npos);

  // read: a composed number; one output digit per written digit, and the debug image.
  vision_data::Rng rng(5);
  auto scene = vision_data::compose(test_digits, rng, vision_data::Style::Clean);
  ember::io::write_png(tmp / "number.png", to_image(scene.image));
  auto rd = run(bin, "read " + common + ckpt + " " + quote(tmp / "number.png") + " " + quote(tmp / "blank.png") +
                         " --debug-out " + quote(tmp / "debug.png"),
                tmp);
  REQUIRE_MESSAGE(rd.code == 0, rd.err);
  auto got = parse_read_output(rd.out);
  REQUIRE(got.count(tmp / "number.png") == 1);
  CHECK(got[tmp / "number.png"].size() == scene.labels.size());
  CHECK(got[tmp / "blank.png"] == "");
  CHECK(fs::exists(tmp.path / "debug.png"));
  CHECK(fs::exists(tmp.path / "debug_2.png"));  // the second image's
  auto dbg = ember::io::read_image(tmp / "debug.png");
  CHECK(dbg.width == scene.image.width);
  CHECK(dbg.height == scene.image.height);
}

/// A tiny MNIST in `dir`/data (96 training, 40 test digits) and the options every run shares.
std::string tiny_mnist(const TempDir& tmp) {
  fs::create_directories(tmp.path / "data");
  write_idx(tmp.path / "data", "train", vision_data::synthetic_digits(96, 11));
  write_idx(tmp.path / "data", "t10k", vision_data::synthetic_digits(40, 12));
  return "--data " + quote(tmp / "data") + " --threads 1 --batch-size 16 ";
}

// train --reject-class: an 11th output "not one digit", trained on pieces of the training digits;
// recorded in the checkpoint, kept on --resume; eval/predict/read load it; read --split-checkpoint
// lets it choose the cuts while --checkpoint's network reads. Without the flag nothing changes.
TEST_CASE("mnist_cnn: train --reject-class and read --split-checkpoint") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_reject");
  const std::string common = tiny_mnist(tmp);  // train's options
  const std::string use = "--data " + quote(tmp / "data") + " --threads 1 ";  // eval, predict, read
  auto classes_of = [](const fs::path& p) {
    auto ckpt = ember::io::read_checkpoint(p.string());
    auto meta = nlohmann::json::parse(ckpt.info.metadata);
    return std::pair<int64_t, int64_t>{meta.value("classes", int64_t{-1}), ckpt.model.at("fc2.weight").size(0)};
  };
  auto rej = run(bin, "train " + common + "--model improved --reject-class --epochs 1 --out " + quote(tmp / "rej"), tmp);
  REQUIRE_MESSAGE(rej.code == 0, rej.err);
  const fs::path rej_ckpt = tmp.path / "rej" / "last.safetensors";
  CHECK(classes_of(rej_ckpt) == std::pair<int64_t, int64_t>{11, 11});
  auto resumed = run(bin, "train " + common + "--epochs 2 --resume --out " + quote(tmp / "rej"), tmp);
  REQUIRE_MESSAGE(resumed.code == 0, resumed.err);
  CHECK(lines_starting(resumed.out, "Epoch: 2, ").size() == 1);
  CHECK(classes_of(rej_ckpt) == std::pair<int64_t, int64_t>{11, 11});
  // The default: ten classes and no "classes" entry, as before.
  auto plain = run(bin, "train " + common + "--epochs 1 --out " + quote(tmp / "plain"), tmp);
  REQUIRE_MESSAGE(plain.code == 0, plain.err);
  const fs::path plain_ckpt = tmp.path / "plain" / "last.safetensors";
  CHECK(classes_of(plain_ckpt) == std::pair<int64_t, int64_t>{-1, 10});

  auto ev = run(bin, "eval " + use + "--out " + quote(tmp / "rej") + " --checkpoint " + quote(rej_ckpt.string()), tmp);
  REQUIRE_MESSAGE(ev.code == 0, ev.err);
  CHECK(ev.out.find("Test_acc:") != std::string::npos);
  ember::io::write_png(tmp / "one.png", to_image(paper_digit(vision_data::synthetic_digits(1, 3)[0], 4)));
  auto pr = run(bin, "predict " + use + "--checkpoint " + quote(rej_ckpt.string()) + " " + quote(tmp / "one.png"), tmp);
  REQUIRE_MESSAGE(pr.code == 0, pr.err);
  REQUIRE(lines_starting(pr.out, tmp / "one.png").size() == 1);
  const std::string answer = lines_starting(pr.out, tmp / "one.png")[0].substr((tmp / "one.png").size() + 2);
  CHECK(answer[0] >= '0');  // a digit, never the 11th class
  CHECK(answer[0] <= '9');

  vision_data::Rng rng(5);
  auto scene = vision_data::compose(vision_data::synthetic_digits(40, 12), rng, vision_data::Style::Clean);
  ember::io::write_png(tmp / "number.png", to_image(scene.image));
  auto rd = run(bin, "read " + use + "--checkpoint " + quote(plain_ckpt.string()) + " --split-checkpoint " +
                         quote(rej_ckpt.string()) + " " + quote(tmp / "number.png"),
                tmp);
  REQUIRE_MESSAGE(rd.code == 0, rd.err);
  auto got = parse_read_output(rd.out);
  REQUIRE(got.count(tmp / "number.png") == 1);
  const std::string digits = got[tmp / "number.png"];
  CHECK(!digits.empty());
  CHECK(std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }));
  // A network without the 11th class cannot choose cuts this way: a clear error.
  auto wrong = run(bin, "read " + use + "--checkpoint " + quote(plain_ckpt.string()) + " --split-checkpoint " +
                            quote(plain_ckpt.string()) + " " + quote(tmp / "number.png"),
                   tmp);
  CHECK(wrong.code != 0);
  CHECK(last_line(wrong.err).find("--reject-class") != std::string::npos);
}

TEST_CASE("mnist_cnn: stopping mid-epoch and resuming gives the same losses and weights, bit for bit") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_resume");
  const std::string common = tiny_mnist(tmp);
  // 6 steps per epoch. The improved network adds dropout, BatchNorm, augmentation, AdamW and a
  // cosine schedule, all of whose state must survive; its stop lands in the second epoch.
  for (const auto& case_ : {std::pair<std::string, int>{"original", 5}, {"improved", 8}}) {
    const std::string model = case_.first;
    const int stop = case_.second;
    CAPTURE(model);
    const std::string run_args = common + "--model " + model + " --epochs 2 --save-every 4 ";
    const std::string straight = tmp / ("straight_" + model), split = tmp / ("split_" + model);
    auto full = run(bin, "train " + run_args + "--workers 2 --out " + quote(straight), tmp);
    REQUIRE_MESSAGE(full.code == 0, full.err);
    REQUIRE(lines_starting(full.out, "Epoch: ").size() == 2);
    REQUIRE(line_count(fs::path(straight) / "steps.csv") == 13);  // header + 12 steps

    auto first = run(bin, "train " + run_args + "--workers 0 --max-steps " + std::to_string(stop) + " --out " + quote(split), tmp);
    REQUIRE_MESSAGE(first.code == 0, first.err);
    CHECK(first.err.find("Stopped after step " + std::to_string(stop)) != std::string::npos);
    CHECK(first.err.find("Resume with:") != std::string::npos);
    auto ckpt = ember::io::read_checkpoint(fs::path(split) / "last.safetensors");
    CHECK(ckpt.info.step == stop);
    CHECK(ckpt.info.epoch == stop / 6);
    auto meta = nlohmann::json::parse(ckpt.info.metadata);
    CHECK(meta["position"]["batch"].get<int>() == stop % 6);
    CHECK(line_count(fs::path(split) / "steps.csv") == static_cast<size_t>(stop) + 1);

    // Another worker count on purpose: the data order does not depend on it.
    auto second = run(bin, "train " + run_args + "--resume --out " + quote(split), tmp);
    REQUIRE_MESSAGE(second.code == 0, second.err);
    CHECK(second.err.find("Resuming") != std::string::npos);
    auto epochs = lines_starting(first.out, "Epoch: ");
    for (const auto& l : lines_starting(second.out, "Epoch: ")) epochs.push_back(l);
    CHECK(epochs == lines_starting(full.out, "Epoch: "));
    // Every step's loss (printed exactly), the weights, the optimizer and scheduler state.
    CHECK(slurp(fs::path(split) / "steps.csv") == slurp(fs::path(straight) / "steps.csv"));
    CHECK(same_tensors(split + "/last.safetensors", straight + "/last.safetensors"));
    CHECK(slurp(fs::path(split) / "last.safetensors") == slurp(fs::path(straight) / "last.safetensors"));
  }
  // The comparison can fail: another seed changes the losses.
  auto other = run(bin, "train " + common + "--epochs 1 --max-steps 3 --seed 2 --out " + quote(tmp / "other"), tmp);
  REQUIRE_MESSAGE(other.code == 0, other.err);
  auto head = [](const std::string& text, size_t lines) {
    std::istringstream is(text);
    std::string out, l;
    for (size_t i = 0; i < lines && std::getline(is, l); ++i) out += l + "\n";
    return out;
  };
  CHECK(head(slurp(tmp.path / "other" / "steps.csv"), 4) != head(slurp(tmp.path / "straight_original" / "steps.csv"), 4));
}

TEST_CASE("mnist_cnn: SIGINT and SIGTERM finish the step, save, print the resume command, exit 130 / 143") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_signal");
  const std::string common = tiny_mnist(tmp);
  for (const auto& case_ : {std::tuple<int, int, std::string>{SIGINT, 130, "SIGINT"}, {SIGTERM, 143, "SIGTERM"}}) {
    const int sig = std::get<0>(case_), code = std::get<1>(case_);
    const std::string name = std::get<2>(case_);
    CAPTURE(name);
    const fs::path out = tmp.path / ("run_" + name);
    const std::string err_file = tmp / ("err_" + name);
    pid_t pid = spawn(bin, "train " + common + "--epochs 100000 --out " + quote(out.string()), tmp / "out.txt", err_file);
    REQUIRE(pid > 0);
    // Signal it while it trains: once a few steps are logged.
    auto t0 = std::chrono::steady_clock::now();
    while (line_count(out / "steps.csv") < 4 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(line_count(out / "steps.csv") >= 4);
    ::kill(pid, sig);
    const int rc = wait_for(pid, 60);
    const std::string err = slurp(err_file);
    REQUIRE_MESSAGE(rc == code, err);
    CHECK(err.find("interrupt: finishing the current step") != std::string::npos);
    CHECK(err.find("Interrupted (" + name + ") after step ") != std::string::npos);
    // The checkpoint holds the last logged step: the step in progress was finished, then saved.
    const size_t steps = line_count(out / "steps.csv") - 1;
    auto ckpt = ember::io::read_checkpoint((out / "last.safetensors").string());
    CHECK(ckpt.info.step == static_cast<int64_t>(steps));
    CHECK(temporaries(out).empty());
    // The printed command resumes (two more steps here, to end the test).
    const auto at = err.find("Resume with:\n  ");
    REQUIRE(at != std::string::npos);
    const std::string cmd = err.substr(at + 15, err.find('\n', at + 15) - (at + 15));
    CHECK(cmd.find("--resume") != std::string::npos);
    auto resumed = run_command(cmd + " --max-steps " + std::to_string(steps + 2), tmp);
    REQUIRE_MESSAGE(resumed.code == 0, resumed.err);
    CHECK(resumed.err.find("(step " + std::to_string(steps) + ")") != std::string::npos);
    CHECK(line_count(out / "steps.csv") == steps + 3);
  }
}

TEST_CASE("mnist_cnn: a non-finite loss stops training with a hint and keeps the last good checkpoint") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_nan");
  const std::string common = tiny_mnist(tmp);
  auto r = run(bin, "train " + common + "--epochs 3 --lr 1e12 --save-every 1 --out " + quote(tmp / "o"), tmp);
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.err.find("error: training diverged: ") != std::string::npos, r.err);
  CHECK(r.err.find("Try a lower --lr (this run: 1e+12)") != std::string::npos);
  CHECK(lines_starting(r.out, "Epoch: ").empty());
  const fs::path last = tmp.path / "o" / "last.safetensors";
  REQUIRE_MESSAGE(fs::exists(last), r.err);  // the first steps are still finite and saved
  CHECK(r.err.find("The last good checkpoint is " + last.string()) != std::string::npos);
  auto ckpt = ember::io::read_checkpoint(last.string());
  int64_t non_finite = 0;
  for (const auto& [k, t] : ckpt.model)
    for (float v : t.to(ember::kFloat32).to_vector<float>()) non_finite += !std::isfinite(v);
  CHECK(non_finite == 0);
  CHECK(ckpt.info.step >= 1);
  // The step that diverged is the one after the checkpoint's (saved every step).
  CHECK(r.err.find("(step " + std::to_string(ckpt.info.step) + ")") != std::string::npos);
  CHECK(r.err.find("at step " + std::to_string(ckpt.info.step + 1) + " ") != std::string::npos);
}

TEST_CASE("mnist_cnn: a failed save (file size limit) names the file, keeps the previous checkpoint, exits non-zero") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  TempDir tmp("mnist_efbig");
  const std::string common = tiny_mnist(tmp);
  const fs::path out = tmp.path / "o", last = out / "last.safetensors";
  auto first = run(bin, "train " + common + "--epochs 1 --max-steps 2 --out " + quote(out.string()), tmp);
  REQUIRE_MESSAGE(first.code == 0, first.err);
  const std::string before = slurp(last);
  REQUIRE(before.size() > 200 * 1024);
  // 64 blocks (32 or 64 KiB, depending on the shell) hold the step log but not a checkpoint;
  // with SIGXFSZ ignored, write() fails with EFBIG as on a full disk.
  auto r = run_command("ulimit -f 64; trap '' XFSZ; exec " + quote(bin) + " train " + common +
                           "--epochs 1 --resume --save-every 1 --out " + quote(out.string()),
                       tmp);
  CHECK(r.code == 1);
  CHECK_MESSAGE(last_line(r.err).rfind("error: could not save the checkpoint (the previous '" + last.string() + "' is intact)", 0) == 0,
                r.err);
  CHECK(r.err.find("File too large") != std::string::npos);
  CHECK(slurp(last) == before);
  CHECK(temporaries(out).empty());
  CHECK(ember::io::read_checkpoint(last.string()).info.step == 2);
}

TEST_CASE("mnist_cnn: SIGKILL at random moments never loses a checkpoint (scripts/kill_test.sh, 10 kills)") {
  TempDir tmp("mnist_kill");
#ifdef EMBER_SANITIZED
  ember_test::check_kill_test("mnist_cnn", EMBER_MNIST_CNN_BIN, 3, 11, tmp.path);  // the sanitized binary trains ~50x slower
#else
  ember_test::check_kill_test("mnist_cnn", EMBER_MNIST_CNN_BIN, 10, 11, tmp.path);
#endif
}

// The multi-digit reading benchmark: the trained network (runs/mnist_cnn/best.safetensors, or
// $EMBER_MNIST_CHECKPOINT) reads numbers composed from MNIST test digits in four styles plus
// synthetic phone photos. Skipped without a trained checkpoint or the MNIST test set.
TEST_CASE("mnist_cnn: reading accuracy on the composed multi-digit set") {
  const std::string bin = EMBER_MNIST_CNN_BIN;
  std::string ckpt;
  if (const char* env = std::getenv("EMBER_MNIST_CHECKPOINT")) ckpt = env;
#ifdef EMBER_SOURCE_DIR
  if (ckpt.empty()) ckpt = std::string(EMBER_SOURCE_DIR) + "/runs/mnist_cnn/best.safetensors";
#endif
  if (ckpt.empty() || !fs::exists(ckpt)) {
    MESSAGE("skipped: no trained checkpoint (run `mnist_cnn train` or set EMBER_MNIST_CHECKPOINT)");
    return;
  }
  bool real = false;
  auto pool = vision_data::digit_source(3000, real);
  if (!real) {
    MESSAGE("skipped: the MNIST test set is not on this machine");
    return;
  }
  TempDir tmp("mnist_read");
  // $EMBER_COMPOSED_SEED: another composed set from the same generator (the figures in the README
  // are for the default 2024; 7 is the second set).
  vision_data::Rng rng(std::getenv("EMBER_COMPOSED_SEED") ? static_cast<uint32_t>(std::stoul(std::getenv("EMBER_COMPOSED_SEED"))) : 2024u);
  std::vector<std::pair<std::string, std::string>> truth;  // file, digits
  std::string files;
  const int kScenes = 200;
  for (int i = 0; i < kScenes; ++i) {
    auto style = static_cast<vision_data::Style>(i % 4);
    auto sc = vision_data::compose(pool, rng, style);
    std::string label;
    for (int l : sc.labels) label += static_cast<char>('0' + l);
    std::string f = tmp / ("scene_" + std::to_string(i) + ".pgm");
    vision_data::write_pgm(f, sc.image);
    truth.emplace_back(f, label);
    files += " " + quote(f);
  }
  for (int i = 0; i < 4; ++i) {
    std::string digits;
    for (int k = 0; k < 6; ++k) digits += static_cast<char>('0' + rng.integer(0, 9));
    auto sc = vision_data::phone_photo(digits, 100 + i);
    std::string f = tmp / ("photo_" + std::to_string(i) + ".pgm");
    vision_data::write_pgm(f, sc.image);
    truth.emplace_back(f, digits);
    files += " " + quote(f);
  }
  // $EMBER_READ_ARGS: more options of `read`, e.g. --recognize-splits.
  const std::string read_args = std::getenv("EMBER_READ_ARGS") ? std::string(" ") + std::getenv("EMBER_READ_ARGS") : "";
  auto rd = run(bin, "read --checkpoint " + quote(ckpt) + read_args + files, tmp);
  REQUIRE_MESSAGE(rd.code == 0, rd.err);
  auto got = parse_read_output(rd.out);
  int64_t digits = 0, wrong = 0, strings_ok = 0, photos_ok = 0, counted_digits = 0, misread = 0;
  auto names_of_style = [](size_t k) {
    const char* n[] = {"clean", "light on dark", "low contrast", "photo-like", "phone photos"};
    return std::string(n[k]);
  };
  std::vector<int64_t> style_digits(5, 0), style_wrong(5, 0), length_wrong(5, 0);  // 4 = photos
  for (size_t i = 0; i < truth.size(); ++i) {
    const auto& [f, want] = truth[i];
    const std::string have = got.count(f) ? got[f] : std::string("?");
    const int64_t w = std::min<int64_t>(edit_distance(have, want), static_cast<int64_t>(want.size()));
    const size_t style = i < static_cast<size_t>(kScenes) ? i % 4 : 4;
    digits += static_cast<int64_t>(want.size());
    wrong += w;
    style_digits[style] += static_cast<int64_t>(want.size());
    style_wrong[style] += w;
    length_wrong[style] += have.size() != want.size();  // segmentation errors, not classification
    if (have.size() == want.size()) {  // classification errors: misread digits of strings segmented right
      counted_digits += static_cast<int64_t>(want.size());
      for (size_t k = 0; k < want.size(); ++k) misread += have[k] != want[k];
    }
    strings_ok += have == want;
    if (have != want && std::getenv("EMBER_COMPOSED_VERBOSE"))  // which strings fail, for working on them
      MESSAGE(names_of_style(style), " ", fs::path(f).filename().string(), ": want ", want, ", read ", have);
    if (style == 4) photos_ok += have == want;
  }
  const char* names[] = {"clean", "light on dark", "low contrast", "photo-like", "phone photos"};
  for (size_t k = 0; k < 5; ++k)
    MESSAGE(std::string(names[k]), ": digit accuracy ", 1.0 - static_cast<double>(style_wrong[k]) / static_cast<double>(style_digits[k]),
            ", strings with a wrong digit count ", length_wrong[k]);
  const double digit_acc = 1.0 - static_cast<double>(wrong) / static_cast<double>(digits);
  const double string_acc = static_cast<double>(strings_ok) / static_cast<double>(truth.size());
  MESSAGE("composed set: ", truth.size(), " images, ", digits, " digits; digit accuracy ", digit_acc,
          ", whole strings ", string_acc, ", phone photos read exactly: ", photos_ok, "/4; misread digits of strings "
          "with the right digit count ", misread, "/", counted_digits);
  CHECK(digit_acc >= 0.97);
  CHECK(string_acc >= 0.90);
  CHECK(photos_ok == 4);
}

#endif  // EMBER_MNIST_CNN_BIN
