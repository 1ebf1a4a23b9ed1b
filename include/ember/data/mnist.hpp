#pragma once
/// MNIST (and Fashion-MNIST, same format) from the four IDX files, plain or gzipped
/// (torchvision.datasets.MNIST / libtorch's data::datasets::MNIST). Gzipped files need zlib
/// (link -lz); where <zlib.h> is missing (or EMBER_NO_ZLIB is defined) plain files still work and
/// a .gz file gives an error saying how to proceed.
///
/// Files are checked as they are read, and every error names the file and what was wrong:
/// magic number (2051 for images, 2049 for labels), image size (28x28), truncated or corrupt
/// data, image and label counts that disagree, labels outside 0..9.
///
/// Images are kept as bytes (47 MB for the training set instead of 188 MB of floats) and
/// converted per batch: data is float32 [N, 1, 28, 28] in [0, 1] (ToTensor: byte / 255), target
/// int64 [N].
///
/// Example:
/// ```
///   auto dir = ember::data::find_data_dir(cli_data, "mnist");
///   ember::data::MNIST train(dir, /*train=*/true), test(dir, false);
///   auto e = train.get(0);   // e.data [1, 28, 28], e.target = 5
/// ```
#if __has_include(<zlib.h>) && !defined(EMBER_NO_ZLIB)
#include <zlib.h>
#define EMBER_HAVE_ZLIB 1
#else
#include <cstdio>
#endif

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/parallel.hpp"
#include "ember/data/dataset.hpp"
#include "ember/ops/factory.hpp"

namespace ember::data {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension

namespace detail {

#ifdef EMBER_HAVE_ZLIB
/// A gzFile that closes itself. zlib reads plain files transparently, so one reader serves both.
struct GzFile {
  gzFile f = nullptr;
  explicit GzFile(const std::string& path) : f(gzopen(path.c_str(), "rb")) {
    if (f) gzbuffer(f, 1 << 17);
  }
  ~GzFile() {
    if (f) gzclose(f);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  bool is_open() const { return f != nullptr; }

  /// Reads up to n bytes; returns how many arrived, or -1 on a zlib error.
  int64_t read(void* dst, int64_t n) {
    int64_t got = 0;
    auto* p = static_cast<unsigned char*>(dst);
    while (got < n) {
      unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - got, INT_MAX / 2));
      int r = gzread(f, p + got, chunk);
      if (r < 0) return -1;
      if (r == 0) break;
      got += r;
    }
    return got;
  }
  /// True when the file is not compressed (zlib passes it through); known after the first read.
  bool is_plain() const { return gzdirect(f) == 1; }
  /// zlib's description of the last error, or "" when there was none.
  std::string error() const {
    int code = Z_OK;
    const char* msg = gzerror(f, &code);
    return code == Z_OK || msg == nullptr ? std::string() : std::string(msg);
  }
};
#else
/// Without zlib: plain files only; a gzip stream is refused with a clear error.
struct GzFile {
  std::FILE* f = nullptr;
  std::string path;
  bool first = true;
  explicit GzFile(const std::string& p) : f(std::fopen(p.c_str(), "rb")), path(p) {}
  ~GzFile() {
    if (f) std::fclose(f);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  bool is_open() const { return f != nullptr; }
  int64_t read(void* dst, int64_t n) {
    int64_t got = static_cast<int64_t>(std::fread(dst, 1, static_cast<size_t>(n), f));
    if (first && got >= 2) {
      const auto* b = static_cast<const unsigned char*>(dst);
      EMBER_CHECK(!(b[0] == 0x1F && b[1] == 0x8B), "read_idx: ", path, ": the file is gzip-compressed but Ember was "
                  "compiled without zlib; install zlib (apt-get install zlib1g-dev, link -lz) or unpack it with gunzip");
    }
    first = false;
    return std::ferror(f) ? -1 : got;
  }
  std::string error() const { return std::ferror(f) ? std::strerror(errno) : ""; }
  bool is_plain() const { return true; }
};
#endif

inline uint32_t big_endian_u32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace detail

/// Reads an IDX file of unsigned bytes (plain or gzipped) into a uint8 tensor shaped by its
/// header, checking the magic number against `expected_magic` and that the data is complete.
/// `what` ("images", "labels") names the file's role in messages.
inline Tensor read_idx(const std::string& path, uint32_t expected_magic, const char* what = "IDX data") {
  namespace fs = std::filesystem;
  std::error_code ec;
  EMBER_CHECK(fs::is_regular_file(path, ec), "read_idx: ", path, ": no such file (expected the MNIST ", what, " file)");
  detail::GzFile file(path);
  EMBER_CHECK(file.is_open(), "read_idx: ", path, ": cannot open the file: ", std::strerror(errno));

  unsigned char head[4];
  int64_t got = file.read(head, 4);
  EMBER_CHECK(got >= 0, "read_idx: ", path, ": corrupt gzip data (", file.error(), ")");
  EMBER_CHECK(got == 4, "read_idx: ", path, ": truncated: the file has ", got, " bytes, too short for the 4-byte IDX magic number");
  const uint32_t magic = detail::big_endian_u32(head);
  if (magic != expected_magic) {
    std::ostringstream hex;
    hex << std::hex << "0x" << std::setw(8) << std::setfill('0') << magic;
    EMBER_FAIL("read_idx: ", path, ": bad magic number ", magic, " (", hex.str(), "); expected ", expected_magic,
               " for an IDX ", what, " file (unsigned bytes, ", expected_magic & 0xFF, " dimension",
               (expected_magic & 0xFF) == 1 ? "" : "s", ")",
               magic >> 16 == 0x1F8B ? ": the file is gzip-compressed twice or damaged" : "",
               magic == kIdxImagesMagic || magic == kIdxLabelsMagic ? ": images and labels files swapped?" : "");
  }
  const int ndim = static_cast<int>(magic & 0xFF);
  std::vector<unsigned char> dims_raw(static_cast<size_t>(4 * ndim));
  got = file.read(dims_raw.data(), 4 * ndim);
  EMBER_CHECK(got >= 0, "read_idx: ", path, ": corrupt gzip data (", file.error(), ")");
  EMBER_CHECK(got == 4 * ndim, "read_idx: ", path, ": truncated: the header should hold ", ndim, " dimension sizes (",
              4 * ndim, " bytes) but only ", got, " bytes follow the magic number");
  Shape shape;
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    uint32_t s = detail::big_endian_u32(dims_raw.data() + 4 * d);
    EMBER_CHECK(s <= (1u << 30), "read_idx: ", path, ": implausible dimension ", d, " of size ", s, " in the header");
    shape.push_back(static_cast<int64_t>(s));
    // Checked before multiplying: three dims of 2^30 would overflow int64.
    EMBER_CHECK(s == 0 || total <= (int64_t{1} << 36) / static_cast<int64_t>(s), "read_idx: ", path,
                ": implausible size ", shape, " in the header");
    total *= static_cast<int64_t>(s);
  }
  // A plain file must hold what its header announces: refuse before allocating, so a 76-byte
  // file cannot make us reserve gigabytes. (A gzip stream's size is only known by reading it;
  // the allocation cap bounds that case.)
  if (file.is_plain()) {
    const auto size = static_cast<int64_t>(fs::file_size(path, ec));
    const int64_t need = 4 + 4 * static_cast<int64_t>(ndim) + total;
    EMBER_CHECK(ec || size >= need, "read_idx: ", path, ": truncated: the header announces ", shape, " = ", total,
                " bytes of ", what, " but the file has only ", size, " bytes in all");
  }
  Tensor out = empty(shape, TensorOptions(kUInt8));
  got = total > 0 ? file.read(out.raw_data(), total) : 0;
  EMBER_CHECK(got >= 0, "read_idx: ", path, ": corrupt gzip data (", file.error(), ")");
  if (got < total) {
    std::string z = file.error();
    EMBER_FAIL("read_idx: ", path, ": truncated: the header announces ", shape, " = ", total, " bytes of ", what,
               " but the file holds only ", got, z.empty() ? "" : " (zlib: " + z + ")");
  }
  // One more byte: finds trailing garbage and makes zlib verify the gzip checksum at the end.
  unsigned char extra;
  got = file.read(&extra, 1);
  EMBER_CHECK(got >= 0, "read_idx: ", path, ": corrupt gzip data (", file.error(), ")");
  // zlib reports a stream cut inside its 8-byte trailer (CRC and length) only as an error state.
  const std::string z = file.error();
  EMBER_CHECK(z.empty(), "read_idx: ", path, ": truncated or corrupt gzip stream after the data (zlib: ", z, ")");
  EMBER_CHECK(got == 0, "read_idx: ", path, ": unexpected data after the ", total, " bytes announced by the header ",
              shape, "; the file is not a single IDX ", what, " file");
  return out;
}

/// The first existing file among `name`, `name.gz` and the dotted spelling ("train-images.idx3-ubyte")
/// in `root`; the error lists what was tried.
inline std::string find_idx_file(const std::string& root, const std::string& name) {
  namespace fs = std::filesystem;
  std::string dotted = name;
  if (auto p = dotted.find("-idx"); p != std::string::npos) dotted[p] = '.';
  std::vector<std::string> tried;
  for (const auto& n : {name, name + ".gz", dotted, dotted + ".gz"}) {
    fs::path p = fs::path(root) / n;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
    tried.push_back(p.string());
  }
  std::string list;
  for (const auto& t : tried) list += "\n  " + t;
  EMBER_FAIL("MNIST: cannot find ", name, " in ", root, "; tried:", list,
             "\nGet the data with scripts/get_data.sh mnist (see find_data_dir for where it is looked up).");
}

/// MNIST / Fashion-MNIST: 60,000 training or 10,000 test images with their labels.
class MNIST : public Dataset {
 public:
  static constexpr int64_t kRows = 28, kCols = 28;

  /// Reads `root`/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  explicit MNIST(const std::string& root, bool train = true) {
    const std::string prefix = train ? "train" : "t10k";
    images_path_ = find_idx_file(root, prefix + "-images-idx3-ubyte");
    labels_path_ = find_idx_file(root, prefix + "-labels-idx1-ubyte");
    Tensor images = read_idx(images_path_, kIdxImagesMagic, "images");
    EMBER_CHECK(images.size(1) == kRows && images.size(2) == kCols, "MNIST: ", images_path_, ": images are ",
                images.size(1), "x", images.size(2), "; expected ", kRows, "x", kCols);
    Tensor labels = read_idx(labels_path_, kIdxLabelsMagic, "labels");
    EMBER_CHECK(images.size(0) == labels.size(0), "MNIST: ", images_path_, " holds ", images.size(0), " images but ",
                labels_path_, " holds ", labels.size(0), " labels; the counts must match");
    const uint8_t* l = labels.data_ptr<uint8_t>();
    for (int64_t i = 0; i < labels.numel(); ++i)
      EMBER_CHECK(l[i] <= 9, "MNIST: ", labels_path_, ": label ", int{l[i]}, " of example ", i, " is outside 0..9");
    images_ = images.view({images.size(0), 1, kRows, kCols});
    targets_ = labels.to(kInt64);
  }

  int64_t size() const override { return images_.size(0); }
  Example get(int64_t index) const override {
    detail::check_index(index, size(), "MNIST");
    Example e = get_batch({index});
    return {e.data.select(0, 0), e.target.select(0, 0)};
  }
  /// Gathers and converts just the requested images: float32 [B, 1, 28, 28] and int64 [B].
  Example get_batch(const std::vector<int64_t>& indices) const override {
    EMBER_CHECK(!indices.empty(), "MNIST: cannot make a batch of zero examples");
    const int64_t b = static_cast<int64_t>(indices.size()), px = kRows * kCols;
    for (int64_t i : indices) detail::check_index(i, size(), "MNIST");
    Tensor data = empty({b, 1, kRows, kCols}, TensorOptions(kFloat32));
    Tensor target = empty({b}, TensorOptions(kInt64));
    const uint8_t* src = images_.data_ptr<uint8_t>();
    const int64_t* lab = targets_.data_ptr<int64_t>();
    float* dst = data.data_ptr<float>();
    int64_t* t = target.data_ptr<int64_t>();
    parallel_for(0, b, std::max<int64_t>(1, kGrainSize / px), [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        const uint8_t* s = src + indices[static_cast<size_t>(j)] * px;
        float* d = dst + j * px;
        for (int64_t k = 0; k < px; ++k) d[k] = static_cast<float>(s[k]) / 255.0f;
        t[j] = lab[indices[static_cast<size_t>(j)]];
      }
    });
    return {data, target};
  }

  /// All images as float32 [N, 1, 28, 28] in [0, 1] (a fresh 4·N·784-byte tensor).
  Tensor images() const {
    std::vector<int64_t> all(static_cast<size_t>(size()));
    for (int64_t i = 0; i < size(); ++i) all[static_cast<size_t>(i)] = i;
    return size() ? get_batch(all).data : empty({0, 1, kRows, kCols});
  }
  /// The images as stored: uint8 [N, 1, 28, 28], 0 = background.
  const Tensor& raw_images() const { return images_; }
  /// Labels, int64 [N].
  const Tensor& targets() const { return targets_; }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }

 private:
  Tensor images_, targets_;
  std::string images_path_, labels_path_;
};

}  // namespace ember::data
