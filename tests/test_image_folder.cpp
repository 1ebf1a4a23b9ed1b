// vision::ImageFolder: torchvision's folder layout, bad files skipped with reasons, the cache,
// and reproducible random transforms inside a multi-worker DataLoader.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "ember/data/dataloader.hpp"
#include "ember/io/image.hpp"
#include "ember/vision/image_folder.hpp"
#include "scratch_dir.hpp"

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

using namespace ember;
namespace T = ember::vision::transforms;

namespace {
io::Image photo(int w, int h, int channels, int seed) {
  io::Image img = io::Image::filled(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) img.at(x, y, c) = static_cast<uint8_t>((x * 11 + y * 5 + c * 80 + seed * 37) % 256);
  return img;
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
bool same(const Tensor& a, const Tensor& b) { return a.sizes() == b.sizes() && a.to_vector<float>() == b.to_vector<float>(); }
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// A cat/dog-like folder with every kind of file people really have in one.
void make_folder(const ember_test::ScratchDir& d) {
  io::write_png(d / "dog/01_rgb.png", photo(20, 16, 3, 1));
  io::write_jpg(d / "dog/02_photo.jpg", photo(24, 18, 3, 2));
  io::write_png(d / "dog/03_gray.png", photo(16, 16, 1, 3));
  io::write_png(d / "dog/04_rgba.png", photo(16, 12, 4, 4));
  io::write_png(d / "dog/05_png_named.JPG", photo(12, 12, 3, 5));   // lying extension, upper case
  io::write_png(d / "dog/06_tiny.png", photo(1, 1, 3, 6));
  write_bytes(d / "dog/07_empty.jpg", "");
  write_bytes(d / "dog/08_text.jpg", "this is not a picture\n");
  io::write_jpg(d / "dog/09_full.jpg", photo(40, 30, 3, 9));
  std::string jpg = read_bytes(d / "dog/09_full.jpg");
  write_bytes(d / "dog/10_truncated.jpg", jpg.substr(0, jpg.size() / 3));  // header fine, data cut
  std::filesystem::remove(d / "dog/09_full.jpg");
  write_bytes(d / "dog/notes.txt", "ignored: not an image extension");
  io::write_png(d / "cat/b.png", photo(18, 14, 3, 11));
  io::write_bmp(d / "cat/sub/a.bmp", photo(10, 8, 3, 12));  // found recursively
}
}  // namespace

TEST_CASE("ImageFolder: classes, order and targets as torchvision; bad files skipped with their reason") {
  ember_test::ScratchDir d("image_folder");
  make_folder(d);
  auto ds = std::make_shared<vision::ImageFolder>(d.path().string(), T::ToTensor(T::Resize(8, 8)),
                                                  vision::ImageFolderOptions().quiet());
  CHECK(ds->classes() == std::vector<std::string>{"cat", "dog"});
  CHECK(ds->class_to_idx().at("dog") == 1);
  // cat: b.png, sub/a.bmp (sorted by path); dog: 7 files kept at the scan (empty and text dropped).
  REQUIRE(ds->size() == 2 + 7);
  CHECK(ds->samples()[0].path.ends_with("cat/b.png"));
  CHECK(ds->samples()[1].path.ends_with("cat/sub/a.bmp"));
  CHECK(ds->samples()[2].target == 1);
  auto skipped = ds->skipped();
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[0].path.ends_with("07_empty.jpg"));
  CHECK(skipped[0].reason.find("empty file") != std::string::npos);
  CHECK(skipped[1].path.ends_with("08_text.jpg"));
  CHECK(skipped[1].reason.find("not a readable image") != std::string::npos);
  // Every readable example: RGB [3, 8, 8] whatever the file's channels, target = its class.
  for (int64_t i = 0; i < ds->size(); ++i) {
    if (ds->samples()[static_cast<size_t>(i)].path.ends_with("10_truncated.jpg")) continue;
    auto e = ds->get(i);
    CHECK(e.data.sizes() == Shape{3, 8, 8});
    CHECK(e.target.item<int64_t>() == ds->samples()[static_cast<size_t>(i)].target);
  }
  // The truncated JPEG passes the header probe, fails to decode: skipped when met, the next
  // example (index + 1, here wrapping to the first) takes its place, the reason is recorded.
  const int64_t last = ds->size() - 1;
  REQUIRE(ds->samples()[static_cast<size_t>(last)].path.ends_with("10_truncated.jpg"));
  auto e = ds->get(last);
  CHECK(e.target.item<int64_t>() == 0);
  CHECK(same(io::image_to_tensor(vision::resize(io::read_image(ds->samples()[0].path, 3), 8, 8)), e.data));
  skipped = ds->skipped();
  REQUIRE(skipped.size() == 3);
  CHECK(skipped[2].path.ends_with("10_truncated.jpg"));
  CHECK(skipped[2].reason.find("cannot decode") != std::string::npos);
  CHECK(ds->get(last).target.item<int64_t>() == 0);  // reported once
  CHECK(ds->skipped().size() == 3);
}

TEST_CASE("ImageFolder: the decoded-image cache bounds the resolution and gives the same examples") {
  ember_test::ScratchDir d("image_folder_cache");
  io::write_png(d / "a/big.png", photo(300, 200, 3, 1));
  io::write_png(d / "b/small.png", photo(50, 40, 3, 2));
  vision::ImageFolder plain(d.path().string(), T::ToTensor(), vision::ImageFolderOptions().quiet());
  vision::ImageFolder cached(d.path().string(), T::ToTensor(), vision::ImageFolderOptions().cache(100).quiet());
  auto big = cached.load(0);
  CHECK(big->height == 100);  // shorter side 200 -> 100
  CHECK(big->width == 150);
  CHECK(cached.load(0).get() == big.get());  // decoded once
  CHECK(cached.load(1)->width == 50);          // smaller than the bound: untouched
  CHECK(same(cached.get(1).data, plain.get(1).data));
}

TEST_CASE("ImageFolder: random transforms in a DataLoader are the same for 0, 1 and 3 workers") {
  ember_test::ScratchDir d("image_folder_loader");
  for (int i = 0; i < 12; ++i) io::write_png(d / (std::string(i % 2 ? "dog" : "cat") + "/" + std::to_string(i) + ".png"), photo(40, 30, 3, i));
  auto pipeline = T::ToTensor(T::Compose({T::RandomHorizontalFlip(), T::RandomRotation(15), T::ColorJitter(0.2, 0.2, 0.2, 0.05),
                                          T::RandomResizedCrop(24, {0.5, 1.0})}));
  auto ds = std::make_shared<vision::ImageFolder>(d.path().string(), pipeline);
  auto run = [&](int64_t workers, uint64_t seed = 7) {
    data::DataLoader loader(ds, data::DataLoaderOptions(4).shuffle(true).seed(seed).num_workers(workers));
    std::vector<Tensor> out;
    for (auto& b : loader) out.push_back(b.data);
    return out;
  };
  auto a = run(0), b = run(1), c = run(3);
  REQUIRE(a.size() == 3);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].sizes() == Shape{4, 3, 24, 24});
    CHECK(same(a[i], b[i]));
    CHECK(same(a[i], c[i]));
  }
  CHECK(!same(a[0], run(0, 8)[0]));  // another seed: another order and augmentation
}

TEST_CASE("ImageFolder: a folder that is not a dataset gives a clear error") {
  ember_test::ScratchDir d("image_folder_bad");
  CHECK_THROWS_WITH_AS(vision::ImageFolder((d.path() / "missing").string()), doctest::Contains("is not a directory"), Error);
  CHECK_THROWS_WITH_AS(vision::ImageFolder(d.path().string()), doctest::Contains("has no class sub-folders"), Error);
  write_bytes(d / "cat/x.jpg", "");
  CHECK_THROWS_WITH_AS(vision::ImageFolder(d.path().string(), T::ToTensor(), vision::ImageFolderOptions().quiet()),
                       doctest::Contains("no readable image files"), Error);
}

TEST_CASE("ImageFolder: linked folders are followed once per class; cycles and links to nothing neither hang nor stop the scan") {
  // Found by fuzz_image_folder (tests/fuzz/regressions/fuzz_image_folder/): two links back to the
  // root made the scan walk ~2^40 paths; a link to nothing ended the listing with an error.
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("image_folder_links");
  const fs::path root = d.path();
  io::write_png(d / "cat/a.png", photo(8, 8, 3, 1));
  io::write_png(d / "dog/b.png", photo(8, 8, 3, 2));
  fs::create_symlink(root, root / "cat/loop");  // a cycle under each class
  fs::create_symlink(root, root / "dog/loop");
  fs::create_symlink(root / "nowhere.jpg", root / "cat/gone.jpg");  // links to nothing
  fs::create_symlink(root / "nowhere", root / "dog/notes");
  fs::create_symlink(root / "nowhere", root / "ghost");
  vision::ImageFolder ds(root.string(), T::ToTensor(), vision::ImageFolderOptions().quiet());
  CHECK(ds.classes() == std::vector<std::string>{"cat", "dog"});  // the dangling 'ghost' is no class
  std::vector<std::string> got;
  for (const auto& s : ds.samples()) got.push_back(s.path.substr(root.string().size() + 1) + " " + std::to_string(s.target));
  std::string listing;
  for (const auto& g : got) listing += g + "; ";
  INFO(listing);
  // The linked root is walked once per class; cat/loop/cat and dog/loop/dog are not walked again.
  CHECK(got == std::vector<std::string>{"cat/a.png 0", "cat/loop/dog/b.png 0", "dog/b.png 1", "dog/loop/cat/a.png 1"});
  const auto skipped = ds.skipped();
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[0].path == (root / "cat/gone.jpg").string());
  CHECK(skipped[1].path == (root / "dog/loop/cat/gone.jpg").string());
  CHECK(skipped[0].reason.find("a link to nothing") != std::string::npos);
  CHECK(ds.get(1).target.item<int64_t>() == 0);
  CHECK(ds.get(2).data.sizes() == Shape{3, 8, 8});
}

TEST_CASE("ImageFolder: the scan refuses the headers that overflow stb (JPEG Huffman tables, PNM sizes) before stb reads them") {
  // Found by fuzz_image_folder (regressions/fuzz_image_folder/jpeg_dht_overflow_in_scan_probe): the
  // scan called stbi_info on the file itself, which overflowed a 257-entry table on a crafted JPEG.
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("image_folder_stb_headers");
  const fs::path inputs = fs::path(EMBER_SOURCE_DIR) / "tests/fuzz/regressions/fuzz_image";
  int copied = 0;
  for (const char* name : {"jpeg_dht_over_256_codes", "jpeg_dht_after_padding", "jpeg_dht_counts_past_eof",
                           "jpeg_dht_after_leading_fill_bytes", "pnm_width_overflows_int"}) {
    const std::string bytes = read_bytes((inputs / name).string());
    REQUIRE_MESSAGE(bytes.size() > 1, "missing regression input ", name);
    write_bytes(d / (std::string("cat/") + name + (name[0] == 'p' ? ".pnm" : ".jpg")), bytes.substr(1));  // byte 0: fuzz_image's mode
    ++copied;
  }
  io::write_png(d / "cat/ok.png", photo(8, 8, 3, 1));
  write_bytes(d / "cat/zz_big_junk.jpg", std::string(100 * 1024, 'x'));  // past the 64 KiB first read
  vision::ImageFolder ds(d.path().string(), T::ToTensor(), vision::ImageFolderOptions().quiet());
  CHECK(ds.size() == 1);
  const auto skipped = ds.skipped();
  REQUIRE(skipped.size() == static_cast<size_t>(copied) + 1);
  for (const auto& s : skipped) {
    INFO(s.path << ": " << s.reason);
    if (s.path.find("jpeg_dht") != std::string::npos) CHECK(s.reason.find("Huffman table (DHT)") != std::string::npos);
    else if (s.path.find("pnm_") != std::string::npos) CHECK(s.reason.find("corrupt PNM header") != std::string::npos);
    else CHECK(s.reason.find("not a readable image") != std::string::npos);
  }
}
