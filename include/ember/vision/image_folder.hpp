#pragma once
/// ImageFolder: a labelled photo collection laid out one sub-folder per class
/// (root/Cat/1.jpg, root/Dog/2.jpg, ...), as torchvision.datasets.ImageFolder reads it: classes are
/// the sub-folder names sorted, files are found recursively and sorted, kept when their extension
/// (case-insensitive) is an image one, and each example is {transform(image as RGB), class index}.
///
/// Differences from torchvision, for people who leave training running on their own photos:
///  - files are decoded by content (a PNG named .jpg loads), never by extension;
///  - an unreadable file (zero bytes, not an image, corrupt or truncated) does not stop training:
///    empty and non-image files are dropped when the folder is scanned, files that fail to decode
///    later are skipped when first met (the next readable example takes the place, so batches
///    keep their size); each is reported once on stderr naming the file and the reason, and
///    `skipped()` lists them all for the end-of-run report;
///  - linked folders are followed (as os.walk(followlinks=True)), but each real folder is scanned
///    once per class, so a link back to a folder above (a cycle) ends the walk instead of
///    repeating it; a link to nothing with an image extension is reported and skipped;
///  - `cache_shorter_side` keeps decoded images in memory, downscaled so their shorter side is at
///    most that many pixels, so an epoch does not decode 5,000 JPEGs again (random transforms still
///    run on every access).
///
/// `get` is safe to call from the DataLoader's worker threads at once.
///
/// Example:
/// ```
///   namespace T = ember::vision::transforms;
///   auto train = std::make_shared<ember::vision::ImageFolder>(
///       "data/cats_dogs/train", T::ToTensor(T::Compose({T::RandomHorizontalFlip(), T::RandomResizedCrop(150)})));
///   train->classes();          // {"Cat", "Dog"}
///   auto e = train->get(0);    // e.data [3, 150, 150] in [0, 1], e.target = 0
/// ```
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "ember/core/error.hpp"
#include "ember/data/dataset.hpp"
#include "ember/io/image.hpp"
#include "ember/ops/factory.hpp"
#include "ember/vision/image_ops.hpp"
#include "ember/vision/image_transforms.hpp"

namespace ember::vision {

/// Options of ImageFolder.
struct ImageFolderOptions {
  /// Kept file extensions, lower case with the dot (torchvision's IMG_EXTENSIONS that stb reads, plus .gif/.tga).
  std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pnm", ".bmp", ".gif", ".tga"};
  /// > 0: cache decoded images, downscaled so the shorter side is at most this (0: no cache).
  int64_t cache_shorter_side = 0;
  /// Report each skipped file on stderr when it is found.
  bool warn = true;

  ImageFolderOptions& cache(int64_t shorter_side) { cache_shorter_side = shorter_side; return *this; }
  ImageFolderOptions& quiet() { warn = false; return *this; }
};

class ImageFolder : public data::Dataset {
 public:
  /// The image to a tensor (transforms then ToTensor).
  using Transform = std::function<Tensor(const io::Image&)>;
  /// One file: where, and its class index.
  struct Sample {
    std::string path;
    int64_t target;
  };
  /// A file left out, and why.
  struct Skipped {
    std::string path;
    std::string reason;
  };
  /// Where the loading threads spent their time since the last reset_timing(): seconds summed
  /// over all threads (CPU time of the workers, not wall time of an epoch). Answers "is it the
  /// JPEG decoding or the augmentation?" without a profiler.
  struct Timing {
    int64_t decoded = 0;           // files decoded (cache misses)
    double decode_seconds = 0;     // reading + decoding (+ the downscale for the cache)
    int64_t transformed = 0;       // examples built
    double transform_seconds = 0;  // the transform: augmentation, ToTensor, Normalize
  };

  explicit ImageFolder(const std::string& root, Transform transform = transforms::ToTensor(),
                       ImageFolderOptions options = {})
      : root_(root), transform_(std::move(transform)), options_(std::move(options)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    EMBER_CHECK(fs::is_directory(root, ec), "ImageFolder: '", root, "' is not a directory (expected one sub-folder per class, "
                "e.g. ", root, "/cat/*.jpg and ", root, "/dog/*.jpg)");
    EMBER_CHECK(static_cast<bool>(transform_), "ImageFolder: the transform is empty");
    EMBER_CHECK(options_.cache_shorter_side >= 0, "ImageFolder: cache_shorter_side must be >= 0, got ",
                options_.cache_shorter_side);
    for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code entry_ec;  // a link to nothing is not a class, and does not stop the listing
      if (it->is_directory(entry_ec)) classes_.push_back(it->path().filename().string());
    }
    EMBER_CHECK(!ec, "ImageFolder: cannot list '", root, "': ", ec.message());
    std::sort(classes_.begin(), classes_.end());
    EMBER_CHECK(!classes_.empty(), "ImageFolder: '", root, "' has no class sub-folders (expected e.g. ", root, "/cat/*.jpg)");
    for (size_t c = 0; c < classes_.size(); ++c) {
      class_to_idx_[classes_[c]] = static_cast<int64_t>(c);
      std::vector<std::string> files;
      // Linked folders are followed, but each real folder is scanned once per class: a link back
      // to a folder above (a cycle) would otherwise be walked until the path is 40 links deep,
      // branching at every level (two such links under a class took longer than any epoch).
      std::set<std::pair<dev_t, ino_t>> scanned;
      auto first_visit = [&scanned](const fs::path& dir) {
        struct stat st {};
        return ::stat(dir.c_str(), &st) != 0 || scanned.insert({st.st_dev, st.st_ino}).second;
      };
      first_visit(fs::path(root) / classes_[c]);
      for (auto it = fs::recursive_directory_iterator(fs::path(root) / classes_[c], fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code entry_ec;  // per entry: one bad entry must not end the listing
        if (it->is_directory(entry_ec)) {
          if (!first_visit(it->path())) it.disable_recursion_pending();
          continue;
        }
        if (!has_image_extension(it->path())) continue;
        if (it->is_regular_file(entry_ec)) files.push_back(it->path().string());
        else if (entry_ec) skip(it->path().string(), "cannot read it (" + entry_ec.message() + "; a link to nothing?)");
      }
      EMBER_CHECK(!ec, "ImageFolder: cannot list '", (fs::path(root) / classes_[c]).string(), "': ", ec.message());
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        std::string why = probe(f);
        if (why.empty()) samples_.push_back({f, static_cast<int64_t>(c)});
        else skip(f, why);
      }
    }
    EMBER_CHECK(!samples_.empty(), "ImageFolder: no readable image files under '", root, "' (", skipped_.size(),
                " skipped; extensions looked for: ", join(options_.extensions), ")");
    cache_.resize(samples_.size());
    failed_ = std::make_unique<std::atomic<bool>[]>(samples_.size());
  }

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }

  /// {transform(image), class index (int64 scalar)}. A file that fails to decode is skipped (see
  /// the header comment): the next readable example in order is returned instead.
  data::Example get(int64_t index) const override {
    data::detail::check_index(index, size(), "ImageFolder");
    for (int64_t k = 0; k < size(); ++k) {
      const int64_t j = (index + k) % size();
      if (std::shared_ptr<const io::Image> img = load(j)) {
        const auto t0 = std::chrono::steady_clock::now();
        Tensor x = transform_(*img);
        add_time(transform_ns_, t0);
        transformed_.fetch_add(1, std::memory_order_relaxed);
        return {std::move(x), scalar_tensor(samples_[static_cast<size_t>(j)].target, TensorOptions(kInt64))};
      }
    }
    EMBER_FAIL("ImageFolder: none of the ", size(), " image files under '", root_, "' could be decoded");
  }

  const std::vector<std::string>& classes() const { return classes_; }
  const std::map<std::string, int64_t>& class_to_idx() const { return class_to_idx_; }
  const std::vector<Sample>& samples() const { return samples_; }
  const std::string& root() const { return root_; }
  /// Every file left out so far (at the scan, and those that failed to decode since).
  std::vector<Skipped> skipped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return skipped_;
  }

  Timing timing() const {
    return {decoded_.load(), static_cast<double>(decode_ns_.load()) * 1e-9, transformed_.load(),
            static_cast<double>(transform_ns_.load()) * 1e-9};
  }
  void reset_timing() const {
    decoded_ = 0;
    decode_ns_ = 0;
    transformed_ = 0;
    transform_ns_ = 0;
  }

  /// The decoded RGB image of sample `index` (from the cache when enabled), or null when it cannot
  /// be decoded (then reported and skipped from now on).
  std::shared_ptr<const io::Image> load(int64_t index) const {
    data::detail::check_index(index, size(), "ImageFolder::load");
    const size_t i = static_cast<size_t>(index);
    if (failed_[i].load(std::memory_order_relaxed)) return nullptr;
    if (options_.cache_shorter_side > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cache_[i]) return cache_[i];
    }
    std::shared_ptr<const io::Image> img;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      io::Image rgb = io::read_image(samples_[i].path, 3);
      if (options_.cache_shorter_side > 0 && std::min(rgb.width, rgb.height) > options_.cache_shorter_side)
        rgb = vision::resize(rgb, options_.cache_shorter_side);
      img = std::make_shared<const io::Image>(std::move(rgb));
      add_time(decode_ns_, t0);
      decoded_.fetch_add(1, std::memory_order_relaxed);
    } catch (const Error& e) {
      if (!failed_[i].exchange(true)) skip(samples_[i].path, e.what());
      return nullptr;
    }
    if (options_.cache_shorter_side > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cache_[i] = img;
    }
    return img;
  }

 private:
  bool has_image_extension(const std::filesystem::path& p) const {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return std::find(options_.extensions.begin(), options_.extensions.end(), ext) != options_.extensions.end();
  }

  /// Cheap checks when scanning: empty files and files stb cannot even read a header from. stb
  /// parses the header from memory that first passed io::decode_image's checks for stb's header
  /// bugs (JPEG Huffman tables, PNM sizes): stbi_info on the file itself overflowed a table on a
  /// crafted JPEG (found by fuzz_image_folder). Only the first 64 KiB are read unless the header
  /// goes on past them; the checks and stb then see exactly the same bytes.
  static std::string probe(const std::string& path) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) return "cannot read its size: " + ec.message();
    if (bytes == 0) return "empty file (0 bytes)";
    constexpr uintmax_t kPrefix = 64 * 1024;
    std::ifstream f(path, std::ios::binary);
    if (!f) return "cannot open it";
    std::vector<uint8_t> head(static_cast<size_t>(std::min(bytes, kPrefix)));
    for (bool whole = bytes <= kPrefix;; whole = true) {
      if (whole && head.size() < bytes) {
        if (bytes > static_cast<uintmax_t>(INT32_MAX)) return "too large to be an image (" + std::to_string(bytes) + " bytes)";
        head.resize(static_cast<size_t>(bytes));
      }
      f.clear();
      f.seekg(0);
      f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
      if (static_cast<size_t>(f.gcount()) != head.size()) return "reading it failed";
      if (std::string why = io::detail::stb_header_hazard(head.data(), head.size()); !why.empty()) return why;
      int w = 0, h = 0, n = 0;
      if (stbi_info_from_memory(head.data(), static_cast<int>(head.size()), &w, &h, &n)) return {};
      if (whole) {
        const char* why = stbi_failure_reason();
        return std::string("not a readable image (") + (why ? why : "unknown format") + ")";
      }
    }
  }

  static void add_time(std::atomic<int64_t>& total, std::chrono::steady_clock::time_point since) {
    total.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since).count(),
                    std::memory_order_relaxed);
  }

  void skip(const std::string& path, const std::string& reason) const {
    std::lock_guard<std::mutex> lock(mu_);
    skipped_.push_back({path, reason});
    if (options_.warn) std::cerr << "ImageFolder: skipping '" << path << "': " << reason << "\n";
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : " ") + e;
    return s;
  }

  std::string root_;
  Transform transform_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::map<std::string, int64_t> class_to_idx_;
  std::vector<Sample> samples_;
  mutable std::mutex mu_;
  mutable std::vector<Skipped> skipped_;
  mutable std::vector<std::shared_ptr<const io::Image>> cache_;
  std::unique_ptr<std::atomic<bool>[]> failed_;
  mutable std::atomic<int64_t> decoded_{0}, decode_ns_{0}, transformed_{0}, transform_ns_{0};
};

}  // namespace ember::vision
