#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/data/data.hpp"

#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace ember;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// The message of the ember::Error thrown by f ("" when nothing is thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}

/// A fresh empty directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("ember_test_data_" + tag + "_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

void put_u32(std::vector<unsigned char>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

/// The bytes of an IDX file: magic, dims (big-endian), payload.
std::vector<unsigned char> idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const std::vector<unsigned char>& payload) {
  std::vector<unsigned char> b;
  put_u32(b, magic);
  for (uint32_t d : dims) put_u32(b, d);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

/// Writes bytes to `path`, gzipped with zlib's gzwrite when `gz`.
void write_file(const fs::path& path, const std::vector<unsigned char>& bytes, bool gz) {
  if (gz) {
    gzFile f = gzopen(path.string().c_str(), "wb6");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
    REQUIRE(gzclose(f) == Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

std::vector<unsigned char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

/// Pixel j of image i in the synthetic sets: every byte value appears.
unsigned char pixel(int64_t i, int64_t j) { return static_cast<unsigned char>((i * 37 + j * 11) % 256); }

/// A small MNIST-format set of n 28x28 images, labels (i * 3) % 10, in `dir` with `prefix`.
void write_mnist(const fs::path& dir, const std::string& prefix, int64_t n, bool gz, int64_t n_labels = -1) {
  if (n_labels < 0) n_labels = n;
  std::vector<unsigned char> px, lab;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 784; ++j) px.push_back(pixel(i, j));
  for (int64_t i = 0; i < n_labels; ++i) lab.push_back(static_cast<unsigned char>((i * 3) % 10));
  const std::string ext = gz ? ".gz" : "";
  write_file(dir / (prefix + "-images-idx3-ubyte" + ext), idx_bytes(2051, {uint32_t(n), 28, 28}, px), gz);
  write_file(dir / (prefix + "-labels-idx1-ubyte" + ext), idx_bytes(2049, {uint32_t(n_labels)}, lab), gz);
}

/// A dataset of n examples: data = [i, 10 i] (float32), target = i; optionally throws at one index
/// and counts calls to get().
class CountingDataset : public data::Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t throw_at = -1, int sleep_us = 0) : n_(n), throw_at_(throw_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  data::Example get(int64_t i) const override {
    ++*calls;
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    EMBER_CHECK(i != throw_at_, "CountingDataset: example ", i, " is broken");
    return {tensor<float>({float(i), float(10 * i)}), scalar_tensor(i, kInt64)};
  }
  std::shared_ptr<std::atomic<int64_t>> calls = std::make_shared<std::atomic<int64_t>>(0);

 private:
  int64_t n_, throw_at_;
  int sleep_us_;
};

/// Every batch of one epoch as (data values, target values).
std::vector<std::pair<std::vector<float>, std::vector<int64_t>>> run_epoch(data::DataLoader& loader) {
  std::vector<std::pair<std::vector<float>, std::vector<int64_t>>> out;
  for (auto& b : loader) out.emplace_back(b.data.to_vector<float>(), b.target.to_vector<int64_t>());
  return out;
}

std::vector<int64_t> targets_of(const std::vector<std::pair<std::vector<float>, std::vector<int64_t>>>& batches) {
  std::vector<int64_t> t;
  for (auto& [d, y] : batches) t.insert(t.end(), y.begin(), y.end());
  return t;
}

/// n x n single-channel image with values 1..n*n.
Tensor ramp_image(int64_t n) { return arange(1, n * n + 1, 1, TensorOptions(kFloat32)).view({1, n, n}); }

}  // namespace

// ---- IDX / MNIST reader ------------------------------------------------------------------------

TEST_CASE("MNIST reads plain and gzipped IDX files with ToTensor semantics") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    TempDir dir("mnist");
    write_mnist(dir.path, "train", 5, gz);
    write_mnist(dir.path, "t10k", 3, gz);
    data::MNIST train(dir.str(), true), test(dir.str(), false);
    CHECK(train.size() == 5);
    CHECK(test.size() == 3);
    CHECK(contains(train.images_path(), gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte"));
    CHECK(train.raw_images().sizes() == Shape{5, 1, 28, 28});
    CHECK(train.raw_images().dtype() == kUInt8);
    CHECK(train.targets().dtype() == kInt64);
    CHECK(train.targets().to_vector<int64_t>() == std::vector<int64_t>{0, 3, 6, 9, 2});

    auto e = train.get(3);
    CHECK(e.data.sizes() == Shape{1, 28, 28});
    CHECK(e.data.dtype() == kFloat32);
    CHECK(e.target.item<int64_t>() == 9);
    auto v = e.data.to_vector<float>();
    for (int64_t j = 0; j < 784; ++j) REQUIRE(v[size_t(j)] == float(pixel(3, j)) / 255.0f);

    auto b = train.get_batch({4, 0});
    CHECK(b.data.sizes() == Shape{2, 1, 28, 28});
    CHECK(b.target.to_vector<int64_t>() == std::vector<int64_t>{2, 0});
    auto bv = b.data.to_vector<float>();
    CHECK(bv[0] == float(pixel(4, 0)) / 255.0f);
    CHECK(bv[784 + 100] == float(pixel(0, 100)) / 255.0f);
    auto all = train.images();
    CHECK(all.sizes() == Shape{5, 1, 28, 28});
    CHECK(all.max().item<float>() <= 1.0f);
    CHECK(all.min().item<float>() >= 0.0f);
    CHECK(test.get(2).target.item<int64_t>() == 6);
  }
}

TEST_CASE("MNIST accepts the dotted file names of some mirrors") {
  TempDir dir("dotted");
  write_mnist(dir.path, "t10k", 2, false);
  fs::rename(dir.path / "t10k-images-idx3-ubyte", dir.path / "t10k-images.idx3-ubyte");
  data::MNIST test(dir.str(), false);
  CHECK(test.size() == 2);
}

TEST_CASE("MNIST errors name the file and what was wrong") {
  SUBCASE("missing file") {
    TempDir dir("missing");
    write_mnist(dir.path, "train", 2, true);
    fs::remove(dir.path / "train-labels-idx1-ubyte.gz");
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "cannot find train-labels-idx1-ubyte in " + dir.str()), err);
    CHECK_MESSAGE(contains(err, "train-labels-idx1-ubyte.gz"), err);  // lists what was tried
    CHECK_MESSAGE(contains(err, "scripts/get_data.sh mnist"), err);
    auto err2 = error_of([&] { data::MNIST((dir.path / "nowhere").string(), false); });
    CHECK_MESSAGE(contains(err2, "cannot find t10k-images-idx3-ubyte"), err2);
  }
  SUBCASE("bad magic number") {
    for (bool gz : {false, true}) {
      TempDir dir("magic");
      write_mnist(dir.path, "train", 2, gz);
      std::string ext = gz ? ".gz" : "";
      write_file(dir.path / ("train-images-idx3-ubyte" + ext), idx_bytes(2050, {2, 28, 28}, std::vector<unsigned char>(2 * 784)), gz);
      auto err = error_of([&] { data::MNIST(dir.str(), true); });
      CHECK_MESSAGE(contains(err, (dir.path / ("train-images-idx3-ubyte" + ext)).string()), err);
      CHECK_MESSAGE(contains(err, "bad magic number 2050 (0x00000802); expected 2051"), err);
    }
  }
  SUBCASE("images and labels files swapped") {
    TempDir dir("swap");
    write_mnist(dir.path, "train", 2, false);
    fs::rename(dir.path / "train-images-idx3-ubyte", dir.path / "tmp");
    fs::rename(dir.path / "train-labels-idx1-ubyte", dir.path / "train-images-idx3-ubyte");
    fs::rename(dir.path / "tmp", dir.path / "train-labels-idx1-ubyte");
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "bad magic number 2049"), err);
    CHECK_MESSAGE(contains(err, "swapped"), err);
  }
  SUBCASE("count mismatch") {
    TempDir dir("count");
    write_mnist(dir.path, "train", 5, true, 4);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "train-images-idx3-ubyte.gz holds 5 images"), err);
    CHECK_MESSAGE(contains(err, "train-labels-idx1-ubyte.gz holds 4 labels"), err);
  }
  SUBCASE("wrong image size") {
    TempDir dir("size");
    write_mnist(dir.path, "train", 2, false);
    write_file(dir.path / "train-images-idx3-ubyte", idx_bytes(2051, {2, 32, 32}, std::vector<unsigned char>(2 * 1024)), false);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "train-images-idx3-ubyte: images are 32x32; expected 28x28"), err);
  }
  SUBCASE("truncated plain file") {
    TempDir dir("trunc");
    write_mnist(dir.path, "train", 5, false);
    fs::resize_file(dir.path / "train-images-idx3-ubyte", 16 + 3 * 784 + 10);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "train-images-idx3-ubyte: truncated"), err);
    CHECK_MESSAGE(contains(err, "[5, 28, 28] = 3920 bytes of images but the file has only 2378 bytes in all"), err);
    fs::resize_file(dir.path / "train-images-idx3-ubyte", 10);
    err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "truncated: the header should hold 3 dimension sizes"), err);
    fs::resize_file(dir.path / "train-images-idx3-ubyte", 0);
    err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "truncated: the file has 0 bytes"), err);
  }
  SUBCASE("truncated gzip file") {
    TempDir dir("truncgz");
    write_mnist(dir.path, "train", 20, true);
    auto path = dir.path / "train-images-idx3-ubyte.gz";
    auto bytes = read_bytes(path);
    bytes.resize(bytes.size() / 2);
    write_file(path, bytes, false);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, path.string()), err);
    CHECK_MESSAGE(contains(err, "truncated"), err);
  }
  SUBCASE("corrupt gzip data") {
    TempDir dir("corrupt");
    write_mnist(dir.path, "train", 20, true);
    auto path = dir.path / "train-labels-idx1-ubyte.gz";
    auto bytes = read_bytes(path);
    bytes[bytes.size() - 6] ^= 0xFF;  // inside the CRC-32 trailer: only the checksum can tell
    write_file(path, bytes, false);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, path.string()), err);
    CHECK_MESSAGE(contains(err, "corrupt gzip data"), err);
  }
#ifdef EMBER_SOURCE_DIR
  SUBCASE("inputs found by fuzzing (tests/fuzz/regressions/fuzz_idx)") {
    const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fuzz/regressions/fuzz_idx";
    // 76 bytes announcing 4 GiB: refused from the file size, before allocating.
    auto err = error_of([&] { data::read_idx((dir / "oom_header_announces_4GiB").string(), data::kIdxImagesMagic); });
    CHECK_MESSAGE(contains(err, "truncated: the header announces"), err);
    CHECK_MESSAGE(contains(err, "bytes in all"), err);
    // Three dims whose product overflows int64: refused before multiplying.
    err = error_of([&] { data::read_idx((dir / "ubsan_dims_product_overflows_int64").string(), data::kIdxImagesMagic); });
    CHECK_MESSAGE(contains(err, "implausible"), err);
    // A .gz cut inside its CRC/length trailer.
    err = error_of([&] { data::read_idx((dir / "gzip_trailer_truncated.gz").string(), data::kIdxLabelsMagic); });
    CHECK_MESSAGE(contains(err, "gzip"), err);
  }
#endif
  SUBCASE("label out of range and trailing data") {
    TempDir dir("label");
    write_mnist(dir.path, "train", 3, false);
    write_file(dir.path / "train-labels-idx1-ubyte", idx_bytes(2049, {3}, {1, 12, 3}), false);
    auto err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "label 12 of example 1 is outside 0..9"), err);
    write_file(dir.path / "train-labels-idx1-ubyte", idx_bytes(2049, {3}, {1, 2, 3, 4}), false);
    err = error_of([&] { data::MNIST(dir.str(), true); });
    CHECK_MESSAGE(contains(err, "unexpected data after the 3 bytes"), err);
  }
}

// ---- data directory lookup ---------------------------------------------------------------------

TEST_CASE("find_data_dir: --data, $EMBER_DATA, defaults, and a helpful error") {
  TempDir root("root");
  fs::create_directories(root.path / "mnist");
  const char* old_env = std::getenv("EMBER_DATA");
  std::string saved = old_env ? old_env : "";

  // --data DIR containing mnist/, or the mnist folder itself.
  CHECK(data::find_data_dir(root.str(), "mnist") == (root.path / "mnist").string());
  CHECK(data::find_data_dir((root.path / "mnist").string(), "mnist") == (root.path / "mnist").string());
  auto err = error_of([&] { data::find_data_dir((root.path / "nope").string(), "mnist"); });
  CHECK_MESSAGE(contains(err, "--data " + (root.path / "nope").string() + " is not a directory"), err);

  // $EMBER_DATA when --data is not given.
  ::setenv("EMBER_DATA", root.str().c_str(), 1);
  CHECK(data::find_data_dir("", "mnist") == (root.path / "mnist").string());

  // Nothing anywhere: the message lists every place and how to get the data.
  TempDir empty_cwd("cwd");
  ::setenv("EMBER_DATA", empty_cwd.str().c_str(), 1);
  auto old_cwd = fs::current_path();
  fs::current_path(empty_cwd.path);
  err = error_of([&] { data::find_data_dir("", "mnist"); });
  fs::current_path(old_cwd);
  CHECK_MESSAGE(contains(err, "cannot find the data set 'mnist'"), err);
  CHECK_MESSAGE(contains(err, "--data: not given"), err);
  CHECK_MESSAGE(contains(err, "$EMBER_DATA: " + (empty_cwd.path / "mnist").string() + ": not found"), err);
  CHECK_MESSAGE(contains(err, "../shared/data/mnist"), err);
  CHECK_MESSAGE(contains(err, "./data/mnist"), err);
  CHECK_MESSAGE(contains(err, "scripts/get_data.sh mnist"), err);
  CHECK_MESSAGE(contains(err, "apt-get install dataset-fashion-mnist"), err);
  CHECK_MESSAGE(contains(err, "/usr/share/datasets/fashion-mnist"), err);

  ::unsetenv("EMBER_DATA");
  err = error_of([&] { data::find_data_dir("", "no-such-set-xyz"); });
  CHECK_MESSAGE(contains(err, "$EMBER_DATA: not set"), err);
  CHECK_MESSAGE(contains(err, "scripts/get_data.sh no-such-set-xyz"), err);
  CHECK_MESSAGE(!contains(err, "fashion"), err);
  if (old_env) ::setenv("EMBER_DATA", saved.c_str(), 1);
}

// ---- datasets ----------------------------------------------------------------------------------

TEST_CASE("TensorDataset, Subset, random_split, collate") {
  auto x = arange(0, 20, 1, TensorOptions(kFloat32)).view({10, 2});
  auto y = arange(0, 10, 1, TensorOptions(kInt64));
  data::TensorDataset ds(x, y);
  CHECK(ds.size() == 10);
  CHECK(ds.get(3).data.to_vector<float>() == std::vector<float>{6, 7});
  CHECK(ds.get(3).target.item<int64_t>() == 3);
  auto b = ds.get_batch({9, 0, 9});
  CHECK(b.data.to_vector<float>() == std::vector<float>{18, 19, 0, 1, 18, 19});
  CHECK(b.target.to_vector<int64_t>() == std::vector<int64_t>{9, 0, 9});

  auto err = error_of([&] { ds.get(10); });
  CHECK_MESSAGE(contains(err, "TensorDataset: index 10 is out of range for a dataset of size 10"), err);
  err = error_of([&] { data::TensorDataset(x, arange(0, 9, 1, TensorOptions(kInt64))); });
  CHECK_MESSAGE(contains(err, "data has 10 examples"), err);

  data::Subset sub(ds, {7, 2});
  CHECK(sub.size() == 2);
  CHECK(sub.get(0).target.item<int64_t>() == 7);
  CHECK(sub.get_batch({1, 0}).target.to_vector<int64_t>() == std::vector<int64_t>{2, 7});
  err = error_of([&] { data::Subset(ds, {11}); });
  CHECK_MESSAGE(contains(err, "Subset: index 11 is out of range"), err);

  // ConcatDataset: ds's 10 examples, then sub's 2; a batch across the seam stacks both.
  data::ConcatDataset cat(std::make_shared<data::TensorDataset>(ds), std::make_shared<data::Subset>(sub));
  CHECK(cat.size() == 12);
  CHECK(cat.get(9).target.item<int64_t>() == 9);
  CHECK(cat.get(10).target.item<int64_t>() == 7);
  CHECK(cat.get_batch({11, 0}).target.to_vector<int64_t>() == std::vector<int64_t>{2, 0});
  err = error_of([&] { cat.get(12); });
  CHECK_MESSAGE(contains(err, "ConcatDataset: index 12 is out of range for a dataset of size 12"), err);

  auto parts = data::random_split(std::make_shared<data::TensorDataset>(ds), {7, 3}, 42);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].size() == 7);
  CHECK(parts[1].size() == 3);
  std::set<int64_t> seen(parts[0].indices().begin(), parts[0].indices().end());
  seen.insert(parts[1].indices().begin(), parts[1].indices().end());
  CHECK(seen.size() == 10);
  auto again = data::random_split(std::make_shared<data::TensorDataset>(ds), {7, 3}, 42);
  CHECK(again[0].indices() == parts[0].indices());
  err = error_of([&] { data::random_split(std::make_shared<data::TensorDataset>(ds), {7, 4}, 1); });
  CHECK_MESSAGE(contains(err, "add up to 11 but the dataset has 10"), err);

  // The generic path stacks get(i); mismatched shapes name both.
  CountingDataset cd(4);
  auto cb = cd.get_batch({1, 3});
  CHECK(cb.data.sizes() == Shape{2, 2});
  CHECK(cb.data.to_vector<float>() == std::vector<float>{1, 10, 3, 30});
  CHECK(cb.target.to_vector<int64_t>() == std::vector<int64_t>{1, 3});
  err = error_of([] { data::detail::collate({{zeros({2}), Tensor()}, {zeros({3}), Tensor()}}); });
  CHECK_MESSAGE(contains(err, "got [2] (example 0) and [3] (example 1)"), err);
}

// ---- DataLoader --------------------------------------------------------------------------------

TEST_CASE("DataLoader batches in order, with a partial last batch or drop_last") {
  auto x = arange(0, 20, 1, TensorOptions(kFloat32)).view({10, 2});
  data::TensorDataset ds(x, arange(0, 10, 1, TensorOptions(kInt64)));
  for (int64_t workers : {0, 2}) {
    CAPTURE(workers);
    data::DataLoader loader(ds, data::DataLoaderOptions().batch_size(4).num_workers(workers));
    CHECK(loader.size() == 3);
    auto batches = run_epoch(loader);
    REQUIRE(batches.size() == 3);
    CHECK(batches[0].second == std::vector<int64_t>{0, 1, 2, 3});
    CHECK(batches[2].second == std::vector<int64_t>{8, 9});
    CHECK(batches[2].first == std::vector<float>{16, 17, 18, 19});

    data::DataLoader dropping(ds, data::DataLoaderOptions(4).drop_last(true).num_workers(workers));
    CHECK(dropping.size() == 2);
    auto kept = run_epoch(dropping);
    REQUIRE(kept.size() == 2);
    CHECK(kept[1].second == std::vector<int64_t>{4, 5, 6, 7});
  }
  data::DataLoader big(ds, data::DataLoaderOptions(32).drop_last(true));
  CHECK(big.size() == 0);
  CHECK(run_epoch(big).empty());
  // Batch shapes through the range-for reference.
  data::DataLoader loader(ds, data::DataLoaderOptions(3));
  int64_t count = 0;
  for (auto& batch : loader) {
    CHECK(batch.data.size(1) == 2);
    CHECK(batch.target.dim() == 1);
    ++count;
  }
  CHECK(count == 4);
  CHECK(loader.epoch() == 1);

  auto err = error_of([&] { data::DataLoader(ds, data::DataLoaderOptions(0)); });
  CHECK_MESSAGE(contains(err, "DataLoader: batch_size must be at least 1, got 0"), err);
  err = error_of([&] { data::DataLoader(ds, data::DataLoaderOptions(2).num_workers(-1)); });
  CHECK_MESSAGE(contains(err, "num_workers must be non-negative"), err);
}

TEST_CASE("DataLoader shuffling: reproducible per seed, a new permutation each epoch") {
  data::TensorDataset ds(arange(0, 100, 1, TensorOptions(kFloat32)).view({100, 1}), arange(0, 100, 1, TensorOptions(kInt64)));
  auto opts = data::DataLoaderOptions(8).shuffle(true).seed(123);
  data::DataLoader a(ds, opts), b(ds, opts);
  auto a0 = targets_of(run_epoch(a)), a1 = targets_of(run_epoch(a));
  auto b0 = targets_of(run_epoch(b));
  CHECK(a0 == b0);
  CHECK(a0 != a1);
  for (const auto& order : {a0, a1}) {
    CHECK(order.size() == 100);
    CHECK(std::set<int64_t>(order.begin(), order.end()).size() == 100);
  }
  std::vector<int64_t> sorted(100);
  for (int64_t i = 0; i < 100; ++i) sorted[size_t(i)] = i;
  CHECK(a0 != sorted);

  // set_epoch replays an epoch (resuming), another seed gives another order.
  data::DataLoader c(ds, opts);
  c.set_epoch(1);
  CHECK(targets_of(run_epoch(c)) == a1);
  data::DataLoader d(ds, data::DataLoaderOptions(8).shuffle(true).seed(124));
  CHECK(targets_of(run_epoch(d)) != a0);

  // Without a seed: drawn from the default generator, so manual_seed makes it reproducible.
  manual_seed(7);
  data::DataLoader e(ds, data::DataLoaderOptions(8).shuffle(true));
  manual_seed(7);
  data::DataLoader f(ds, data::DataLoaderOptions(8).shuffle(true));
  CHECK(e.seed() == f.seed());
  CHECK(targets_of(run_epoch(e)) == targets_of(run_epoch(f)));

  // Samplers on their own.
  CHECK(data::SequentialSampler().indices(3, 0, 5) == std::vector<int64_t>{0, 1, 2});
  CHECK(data::RandomSampler().indices(50, 1, 0) == data::RandomSampler().indices(50, 1, 0));
  CHECK(data::RandomSampler().indices(50, 1, 0) != data::RandomSampler().indices(50, 1, 1));
  auto sub = data::SubsetRandomSampler({5, 6, 7}).indices(10, 3, 0);
  CHECK(std::set<int64_t>(sub.begin(), sub.end()) == std::set<int64_t>{5, 6, 7});
  data::DataLoader custom(ds, data::DataLoaderOptions(2), std::make_shared<data::SubsetRandomSampler>(std::vector<int64_t>{1, 2, 3}));
  CHECK(targets_of(run_epoch(custom)).size() == 3);
}

TEST_CASE("DataLoader gives identical batches for 0, 1 and 3 workers, augmentation included") {
  // Random transforms draw from the loader's per-batch stream, so the worker count is invisible.
  auto images = rand({40, 1, 6, 6});
  data::TensorDataset base(images, arange(0, 40, 1, TensorOptions(kInt64)));
  auto augment = data::Compose({data::RandomAffine(30, {{0.2, 0.2}}, {{0.8, 1.2}}, {{-10, 10}}),
                                data::RandomHorizontalFlip(0.5), data::Normalize(0.5, 0.25)});
  data::MapDataset per_example(base, augment);
  data::MapDataset per_batch(base, augment, data::Apply::kPerBatch);

  std::vector<std::vector<std::pair<std::vector<float>, std::vector<int64_t>>>> runs;
  for (int64_t workers : {0, 1, 3}) {
    data::DataLoader loader(per_example, data::DataLoaderOptions(7).shuffle(true).seed(99).num_workers(workers));
    runs.push_back(run_epoch(loader));
    runs.push_back(run_epoch(loader));  // epoch 1 too
  }
  data::DataLoader batched(per_batch, data::DataLoaderOptions(7).shuffle(true).seed(99).num_workers(2));
  runs.push_back(run_epoch(batched));
  REQUIRE(runs[0].size() == 6);
  CHECK(runs[0] == runs[2]);
  CHECK(runs[0] == runs[4]);
  CHECK(runs[1] == runs[3]);
  CHECK(runs[1] == runs[5]);
  CHECK(runs[0] == runs[6]);  // per-batch application draws the same parameters
  CHECK(runs[0] != runs[1]);
  // The augmentation really changed the images.
  auto plain = targets_of(runs[0]);
  CHECK(runs[0][0].first != index_select(images, 0, tensor(std::vector<int64_t>(plain.begin(), plain.begin() + 7))).to_vector<float>());
}

TEST_CASE("DataLoader rethrows exceptions from the dataset in the consuming thread") {
  for (int64_t workers : {0, 1, 3}) {
    CAPTURE(workers);
    CountingDataset ds(20, /*throw_at=*/9);
    data::DataLoader loader(ds, data::DataLoaderOptions(4).num_workers(workers));
    int64_t seen = 0;
    std::string err;
    try {
      for (auto& batch : loader) {
        (void)batch;
        ++seen;
      }
    } catch (const ember::Error& e) {
      err = e.what();
    }
    CHECK(seen == 2);  // batches 0 and 1 arrive, batch 2 (examples 8..11) fails
    CHECK_MESSAGE(contains(err, "CountingDataset: example 9 is broken"), err);
    // The loader is still usable: the next epoch fails at the same place again.
    CHECK_THROWS_AS(run_epoch(loader), ember::Error);
  }
}

TEST_CASE("DataLoader: abandoning the loop mid-epoch stops the workers; prefetch is bounded") {
  CountingDataset ds(2000, -1, /*sleep_us=*/200);
  auto calls = ds.calls;
  data::DataLoader loader(ds, data::DataLoaderOptions(2).num_workers(3).prefetch_factor(2));
  auto t0 = std::chrono::steady_clock::now();
  {
    int64_t n = 0;
    for (auto& batch : loader) {
      (void)batch;
      if (++n == 3) {
        // While the consumer is busy, workers fill at most 3 * 2 slots ahead, then wait.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CHECK(calls->load() <= (3 + 6 + 3) * 2);
        break;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(secs < 2.0);  // the whole epoch would take 2000 * 0.2 ms / 3 ≈ 0.13 s + much more waiting
  int64_t after = calls->load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(calls->load() == after);  // workers joined: nothing runs any more
  CHECK(after < 100);
  // The next epoch starts cleanly.
  int64_t batches = 0;
  for (auto& batch : loader) {
    (void)batch;
    ++batches;
  }
  CHECK(batches == 1000);

  // The loader itself may die while an iterator is still alive (the iterator owns the epoch).
  data::DataLoaderIterator it;
  {
    data::DataLoader short_lived(CountingDataset(50), data::DataLoaderOptions(5).num_workers(2));
    it = short_lived.begin();
  }
  int64_t rest = 0;
  for (; it != std::default_sentinel; ++it) ++rest;
  CHECK(rest == 10);
}

namespace {

/// Threads of this process, from /proc (to prove the loader's workers are gone).
int64_t thread_count() {
  int64_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/task")) n += e.is_directory();
  return n;
}

/// Example i is [i] of shape [1], except index `odd` which has shape [2]: a batch holding it
/// cannot be collated although every get() succeeds.
class RaggedDataset : public data::Dataset {
 public:
  explicit RaggedDataset(int64_t odd) : odd_(odd) {}
  int64_t size() const override { return 20; }
  data::Example get(int64_t i) const override {
    return {i == odd_ ? zeros({2}) : full({1}, static_cast<double>(i)), scalar_tensor(i, kInt64)};
  }

 private:
  int64_t odd_;
};

}  // namespace

TEST_CASE("DataLoader: set_epoch(e, k) continues at batch k of epoch e, building no skipped batch") {
  auto images = rand({30, 1, 5, 5});
  data::TensorDataset base(images, arange(0, 30, 1, TensorOptions(kInt64)));
  data::MapDataset augmented(base, data::Compose({data::RandomAffine(20, {{0.1, 0.1}}), data::Normalize(0.5, 0.2)}));
  const auto opts = data::DataLoaderOptions(4).shuffle(true).seed(5);
  data::DataLoader reference(augmented, opts);
  reference.set_epoch(1);
  auto full1 = run_epoch(reference);
  auto full2 = run_epoch(reference);
  REQUIRE(full1.size() == 8);
  for (int64_t workers : {0, 1, 3}) {
    CAPTURE(workers);
    data::DataLoader loader(augmented, data::DataLoaderOptions(opts).num_workers(workers));
    loader.set_epoch(1, 3);
    CHECK(loader.start_batch() == 3);
    auto tail = run_epoch(loader);
    // Same permutation, same position, same augmentation draws as batches 3.. of the full pass.
    CHECK(tail == decltype(full1)(full1.begin() + 3, full1.end()));
    CHECK(loader.start_batch() == 0);
    CHECK(loader.epoch() == 2);
    CHECK(run_epoch(loader) == full2);  // the next loop is a whole epoch again
  }
  // Skipped batches are never built: 7 of 10 batches of 4 are skipped, 12 examples are loaded.
  for (int64_t workers : {0, 2}) {
    CountingDataset counting(40);
    auto calls = counting.calls;
    data::DataLoader loader(counting, data::DataLoaderOptions(4).shuffle(true).seed(1).num_workers(workers));
    loader.set_epoch(0, 7);
    CHECK(run_epoch(loader).size() == 3);
    CHECK(calls->load() == 12);
    loader.set_epoch(0, 10);  // a checkpoint taken after the last step of the epoch: nothing left
    CHECK(run_epoch(loader).empty());
  }
  data::DataLoader loader(base, data::DataLoaderOptions(4));
  auto err = error_of([&] { loader.set_epoch(0, 9); });
  CHECK_MESSAGE(contains(err, "start_batch must be in [0, 8]"), err);
  err = error_of([&] { loader.set_epoch(0, -1); });
  CHECK_MESSAGE(contains(err, "got -1"), err);
}

TEST_CASE("DataLoader: a worker's error names the dataset index and keeps the original message") {
  for (int64_t workers : {0, 1, 3}) {
    CAPTURE(workers);
    CountingDataset ds(40, /*throw_at=*/13);
    data::DataLoader loader(ds, data::DataLoaderOptions(4).shuffle(true).seed(3).num_workers(workers));
    auto err = error_of([&] { run_epoch(loader); });
    CHECK_MESSAGE(contains(err, "DataLoader: dataset index 13 (batch "), err);
    CHECK_MESSAGE(contains(err, " of epoch 0): CountingDataset: example 13 is broken"), err);
    // An error of the batch as a whole (no single example fails): the batch's indices instead.
    data::DataLoader ragged(RaggedDataset(6), data::DataLoaderOptions(4).num_workers(workers));
    err = error_of([&] { run_epoch(ragged); });
    CHECK_MESSAGE(contains(err, "DataLoader: batch 1 of epoch 0 (dataset indices 4, 5, 6, 7): collate:"), err);
  }
}

TEST_CASE("DataLoader: leaving the loop by an exception joins the workers at once") {
  const int64_t before = thread_count();
  CountingDataset ds(4000, -1, /*sleep_us=*/100);
  auto calls = ds.calls;
  data::DataLoader loader(ds, data::DataLoaderOptions(2).num_workers(3));
  int64_t during = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::string err;
  try {
    int64_t n = 0;
    for (auto& batch : loader) {
      (void)batch;
      during = thread_count();
      if (++n == 5) throw std::runtime_error("the training step failed");
    }
  } catch (const std::runtime_error& e) {
    err = e.what();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(err == "the training step failed");
  CHECK(secs < 2.0);              // no waiting for the rest of the epoch (4000 * 0.1 ms / 3 + queueing)
  CHECK(during >= before + 3);    // the workers were there ...
  CHECK(thread_count() == before);  // ... and are joined, not leaked
  const int64_t after = calls->load();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(calls->load() == after);
  CHECK(after < 100);
}

// ---- transforms --------------------------------------------------------------------------------

TEST_CASE("Normalize per channel, exact") {
  auto x = rand({3, 4, 5});
  data::Normalize norm({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
  auto y = norm(x);
  CHECK(y.sizes() == x.sizes());
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
  for (size_t i = 0; i < xv.size(); ++i) REQUIRE(yv[i] == (xv[i] - m[i / 20]) / s[i / 20]);
  // A batch, a single value for all channels, float64.
  auto batch = stack({x, x}, 0);
  CHECK(norm(batch).select(0, 1).to_vector<float>() == yv);
  auto z = data::Normalize(0.1307, 0.3081)(x.to(kFloat64));
  CHECK(z.dtype() == kFloat64);
  CHECK(z.to_vector<double>()[7] == (x.to(kFloat64).to_vector<double>()[7] - 0.1307) / 0.3081);
  auto err = error_of([&] { norm(rand({2, 4, 4})); });
  CHECK_MESSAGE(contains(err, "Normalize: 3 means/stds for an image with 2 channels"), err);
  err = error_of([&] { norm(ones({3, 4, 4}, kUInt8)); });
  CHECK_MESSAGE(contains(err, "Normalize: expected a floating point image"), err);
  err = error_of([&] { data::Normalize(0.5, 0.0); });
  CHECK_MESSAGE(contains(err, "std must be non-zero"), err);
}

TEST_CASE("affine: identity, exact quarter turns, translations, bilinear half pixels") {
  auto img = ramp_image(4);  // 1..16
  auto v = img.to_vector<float>();
  CHECK(data::affine(img, 0).to_vector<float>() == v);
  CHECK(data::RandomAffine(0)(img).to_vector<float>() == v);  // degrees 0, nothing else: identity

  // 90 degrees clockwise: out[y][x] = in[n-1-x][y]; on even and odd sizes.
  for (int64_t n : {3, 4}) {
    auto im = ramp_image(n);
    auto in = im.to_vector<float>();
    auto out = data::affine(im, 90).to_vector<float>();
    for (int64_t y = 0; y < n; ++y)
      for (int64_t x = 0; x < n; ++x) REQUIRE(out[size_t(y * n + x)] == in[size_t((n - 1 - x) * n + y)]);
    // Four quarter turns give the image back; -90 undoes 90.
    auto r = im;
    for (int k = 0; k < 4; ++k) r = data::affine(r, 90);
    CHECK(r.to_vector<float>() == in);
    CHECK(data::affine(data::affine(im, 90), -90).to_vector<float>() == in);
  }
  // Hand-checked 3x3: [[1,2,3],[4,5,6],[7,8,9]] turned clockwise is [[7,4,1],[8,5,2],[9,6,3]].
  CHECK(data::affine(ramp_image(3), 90).to_vector<float>() == std::vector<float>{7, 4, 1, 8, 5, 2, 9, 6, 3});

  // One pixel right: column 0 comes from outside (fill 0, or the given fill).
  auto shifted = data::affine(img, 0, {1, 0}).to_vector<float>();
  CHECK(shifted == std::vector<float>{0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15});
  auto filled = data::affine(img, 0, {0, -1}, 1.0, {0, 0}, 7.0).to_vector<float>();
  CHECK(std::vector<float>(filled.begin(), filled.begin() + 4) == std::vector<float>{5, 6, 7, 8});
  CHECK(std::vector<float>(filled.begin() + 12, filled.end()) == std::vector<float>{7, 7, 7, 7});
  // Half a pixel right: bilinear averages neighbours, zero padding at the border.
  auto half = data::affine(img, 0, {0.5, 0}).to_vector<float>();
  CHECK(half[0] == 0.5f);
  CHECK(half[1] == 1.5f);
  CHECK(half[3] == 3.5f);
  // Scale 2 about the centre of a 4x4: output (1,1) samples input (1.25, 1.25).
  auto zoom = data::affine(img, 0, {0, 0}, 2.0).to_vector<float>();
  CHECK(zoom[5] == doctest::Approx(0.75 * 0.75 * 6 + 0.75 * 0.25 * 7 + 0.25 * 0.75 * 10 + 0.25 * 0.25 * 11));
  // Channels share the geometry; a batch gets the same transform per image.
  auto rgb = cat({img, img * 2.0, img * 3.0}, 0);
  auto r3 = data::affine(rgb, 90).to_vector<float>();
  auto r1 = data::affine(img, 90).to_vector<float>();
  for (size_t i = 0; i < 16; ++i) REQUIRE(r3[32 + i] == 3 * r1[i]);
  CHECK(data::affine(stack({rgb, rgb}, 0), 90).select(0, 1).to_vector<float>() == r3);
  // float64 too; integer and CUDA inputs are refused clearly.
  CHECK(data::affine(img.to(kFloat64), 90).to_vector<double>()[0] == 13.0);
  auto err = error_of([&] { data::affine(ones({1, 4, 4}, kUInt8), 10); });
  CHECK_MESSAGE(contains(err, "affine: expected a float32 or float64 tensor"), err);
  err = error_of([&] { data::affine(ones({4, 4}), 10); });
  CHECK_MESSAGE(contains(err, "expected an image [C, H, W] or a batch [N, C, H, W], got shape [4, 4]"), err);
}

TEST_CASE("RandomAffine and RandomHorizontalFlip: seeded, per-image parameters") {
  auto img = rand({1, 8, 8});
  auto opts = [] { return data::RandomAffineOptions(20).translate(data::Range{0.1, 0.1}).scale(data::Range{0.9, 1.1}); };
  auto g1 = std::make_shared<Generator>(5), g2 = std::make_shared<Generator>(5);
  data::RandomAffine a1(opts().generator(g1)), a2(opts().generator(g2));
  auto o1 = a1(img).to_vector<float>(), o2 = a2(img).to_vector<float>();
  CHECK(o1 == o2);
  CHECK(o1 != img.to_vector<float>());
  CHECK(a1(img).to_vector<float>() != o1);  // the generator moved on
  // Default generator: manual_seed makes it reproducible.
  data::RandomAffine plain(opts());
  manual_seed(3);
  auto p1 = plain(img).to_vector<float>();
  manual_seed(3);
  CHECK(plain(img).to_vector<float>() == p1);
  // Each image of a batch gets its own parameters, the same as one image at a time.
  auto batch = stack({img, img, img}, 0);
  manual_seed(11);
  auto ob = plain(batch);
  CHECK(ob.select(0, 0).to_vector<float>() != ob.select(0, 1).to_vector<float>());
  manual_seed(11);
  CHECK(plain(img).to_vector<float>() == ob.select(0, 0).to_vector<float>());
  CHECK(plain(img).to_vector<float>() == ob.select(0, 1).to_vector<float>());
  // A range that is a single value is deterministic: degrees (90, 90) is the quarter turn.
  data::RandomAffine quarter(data::RandomAffineOptions().degrees({90, 90}));
  CHECK(quarter(img).to_vector<float>() == data::affine(img, 90).to_vector<float>());
  auto err = error_of([&] { data::RandomAffine(10, {{1.5, 0.1}}); });
  CHECK_MESSAGE(contains(err, "RandomAffine: translate fractions must lie in [0, 1]"), err);

  auto im = ramp_image(3);
  CHECK(data::hflip(im).to_vector<float>() == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7});
  CHECK(data::RandomHorizontalFlip(1.0)(im).to_vector<float>() == data::hflip(im).to_vector<float>());
  CHECK(data::RandomHorizontalFlip(0.0)(im).to_vector<float>() == im.to_vector<float>());
  auto many = stack(tensor_list(64, im), 0);
  auto flipped = data::RandomHorizontalFlip(0.5, std::make_shared<Generator>(1))(many);
  int64_t n_flipped = 0;
  for (int64_t i = 0; i < 64; ++i) n_flipped += flipped.select(0, i).to_vector<float>()[0] == 3.0f;
  CHECK(n_flipped > 16);
  CHECK(n_flipped < 48);
}

// ---- the real MNIST ----------------------------------------------------------------------------

TEST_CASE("MNIST: the real data set, when present (timings reported)") {
  std::string dir;
  try {
#ifdef EMBER_SOURCE_DIR
    std::string cli = fs::is_directory(std::string(EMBER_SOURCE_DIR) + "/../shared/data")
                          ? std::string(EMBER_SOURCE_DIR) + "/../shared/data" : "";
#else
    std::string cli;
#endif
    dir = data::find_data_dir(cli, "mnist");
  } catch (const ember::Error& e) {
    MESSAGE("skipped: MNIST not found (", e.what(), ")");
    return;
  }
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  data::MNIST train(dir, true);
  data::MNIST test(dir, false);
  double load_s = std::chrono::duration<double>(clock::now() - t0).count();
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.get(0).target.item<int64_t>() == 5);
  CHECK(test.get(0).target.item<int64_t>() == 7);
  auto first = train.get(0).data;
  CHECK(first.sizes() == Shape{1, 28, 28});
  CHECK(first.max().item<float>() == 1.0f);
  CHECK(first.min().item<float>() == 0.0f);
  // Label histogram of the training set (MNIST's known class counts).
  auto counts = std::vector<int64_t>(10, 0);
  for (int64_t l : train.targets().to_vector<int64_t>()) ++counts[size_t(l)];
  CHECK(counts == std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});

  auto epoch_time = [](data::DataLoader& loader) {
    auto s = clock::now();
    int64_t n = 0, examples = 0;
    for (auto& b : loader) {
      ++n;
      examples += b.data.size(0);
    }
    CHECK(n == loader.size());
    CHECK(examples == 60000);
    return std::chrono::duration<double>(clock::now() - s).count();
  };
  data::DataLoader l0(train, data::DataLoaderOptions(32).shuffle(true).seed(1));
  data::DataLoader l2(train, data::DataLoaderOptions(32).shuffle(true).seed(1).num_workers(2));
  data::MapDataset normalized(train, data::Normalize(0.1307, 0.3081));
  data::DataLoader ln(normalized, data::DataLoaderOptions(32).shuffle(true).seed(1).num_workers(2));
  data::MapDataset normalized_b(train, data::Normalize(0.1307, 0.3081), data::Apply::kPerBatch);
  data::DataLoader lb(normalized_b, data::DataLoaderOptions(32).shuffle(true).seed(1).num_workers(2));
  double e0 = epoch_time(l0), e2 = epoch_time(l2), en = epoch_time(ln), eb = epoch_time(lb);
  MESSAGE("MNIST from ", dir, ": load train+test ", load_s, " s; one epoch at batch 32 (1875 batches): ", e0,
          " s inline, ", e2, " s with 2 workers, ", en, " s with Normalize per example, ", eb,
          " s with Normalize per batch (2 workers)");
}
