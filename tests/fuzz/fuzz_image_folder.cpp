// libFuzzer target: vision::ImageFolder's file handling. The input describes a folder tree (class
// folders, nested folders, files with any name and extension, symbolic links to files and to
// folders, files at the root); each file holds nothing, fuzzer bytes, a valid tiny PPM/PNG/JPEG,
// a truncated one, or a valid header followed by fuzzer bytes. The dataset is built (with or
// without its cache) and every example read. It must either throw ember::Error or give a dataset
// whose classes are the sorted sub-folder names, whose samples lie in their class's folder, and
// whose examples are [3, H, W] float images with a class index in range. (Decoding itself is
// fuzz_image's job; here the images are tiny, so the scan and skip logic dominate.)
//
// Input: byte 0 = options (bit 0: cache, bit 1: second pass over the examples); then records of
//   [folder byte][extension byte][name length byte][name bytes][content byte][length byte][bytes]
// until the input ends (at most 24 entries).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/vision/image_folder.hpp"
#include "fuzz_common.hpp"

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Valid tiny images of three formats, made once by Ember's writers.
const std::vector<std::string>& valid_images() {
  static const std::vector<std::string> images = [] {
    ember::io::Image img = ember::io::Image::filled(3, 2, 3);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<uint8_t>(i * 37);
    std::vector<std::string> v{"P6\n3 2\n255\n" + std::string(img.data.begin(), img.data.end())};
    const fs::path tmp = ember::fuzz::scratch_path("image_folder_seed");
    for (const char* ext : {".png", ".jpg"}) {
      ember::io::write_image(tmp.string() + ext, img);
      v.push_back(slurp(tmp.string() + ext));
      fs::remove(tmp.string() + ext);
    }
    return v;
  }();
  return images;
}

// Where a record's entry goes, relative to the root: class folders (one nested), the root itself,
// names that sort oddly.
const char* const kFolders[] = {"cat", "dog", "cat/inner", "Zebra", "", "a b", ".hidden", "dog/x/y"};
const char* const kExtensions[] = {".jpg", ".JPG", ".png", ".ppm", ".jpeg", ".Png", ".gif", ".tga",
                                   ".bmp", ".txt", "", ".jpg.part", ".pgm", ".pnm", ".webp", "."};

std::string clean_name(std::string s) {
  for (char& c : s)
    if (c == '/' || c == '\0') c = '_';
  if (s.empty() || s == "." || s == "..") s = "f" + s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace V = ember::vision;
  // 16 MiB per image, as fuzz_image: a 100-byte RLE TGA announcing 16 Mpx legitimately takes over
  // 10 s to decode in this sanitized build (a timeout, not a bug; decoding is fuzz_image's job).
  static const bool capped = (ember::set_max_allocation_bytes(size_t{16} << 20), true);
  (void)capped;
  ember::fuzz::Bytes in{data, size};
  const uint8_t options = in.byte();
  const fs::path root = ember::fuzz::scratch_path("image_folder");
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);

  std::vector<fs::path> files;  // what was written, for the links to point at
  for (int entry = 0; entry < 24 && in.n > 0; ++entry) {
    const fs::path folder = root / kFolders[in.byte() % 8];
    const char* ext = kExtensions[in.byte() % 16];
    const std::string name = clean_name(in.take(in.byte() % 24)) + ext;
    const uint8_t content = in.byte();
    const std::string bytes = in.take(in.byte());
    fs::create_directories(folder, ec);
    const fs::path path = folder / name;
    if (ec || fs::exists(fs::symlink_status(path, ec))) continue;
    const auto& valid = valid_images()[content % 3];
    switch ((content >> 2) % 8) {
      case 0: std::ofstream(path, std::ios::binary).flush(); break;                              // zero bytes
      case 1: std::ofstream(path, std::ios::binary) << bytes; break;                            // garbage
      case 2: std::ofstream(path, std::ios::binary) << valid; break;                            // a valid image
      case 3: std::ofstream(path, std::ios::binary) << valid.substr(0, bytes.size()); break;    // truncated
      case 4: std::ofstream(path, std::ios::binary) << valid.substr(0, 16) << bytes; break;     // header + garbage
      case 5:                                                                                    // link to a file
        if (!files.empty()) fs::create_symlink(files[bytes.size() % files.size()], path, ec);
        break;
      case 6: fs::create_symlink(bytes.size() % 2 ? root : folder.parent_path(), path, ec); break;  // a cycle
      case 7: fs::create_directories(path, ec); break;                                         // a folder named like a file
    }
    files.push_back(path);
  }

  try {
    V::ImageFolderOptions opt;
    opt.quiet();
    if (options & 1) opt.cache(2);
    V::ImageFolder ds(root.string(), V::transforms::ToTensor(), opt);
    const auto& classes = ds.classes();
    if (classes.empty() || ds.size() <= 0 || static_cast<size_t>(ds.size()) != ds.samples().size()) __builtin_trap();
    for (size_t c = 1; c < classes.size(); ++c)
      if (!(classes[c - 1] < classes[c])) __builtin_trap();
    for (const auto& s : ds.samples()) {
      if (s.target < 0 || static_cast<size_t>(s.target) >= classes.size()) __builtin_trap();
      const std::string prefix = (root / classes[static_cast<size_t>(s.target)]).string() + "/";
      if (s.path.compare(0, prefix.size(), prefix) != 0) __builtin_trap();
    }
    for (int pass = 0; pass < ((options & 2) ? 2 : 1); ++pass)
      for (int64_t i = 0; i < ds.size(); ++i) {
        try {
          ember::data::Example e = ds.get(i);
          const int64_t t = e.target.item<int64_t>();
          if (t < 0 || static_cast<size_t>(t) >= classes.size()) __builtin_trap();
          if (e.data.dim() != 3 || e.data.size(0) != 3 || e.data.dtype() != ember::kFloat32) __builtin_trap();
        } catch (const ember::Error&) {  // every file failed to decode: the dataset says so
        }
      }
  } catch (const ember::Error&) {
  }
  return 0;
}
