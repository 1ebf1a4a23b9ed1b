// Writes the seed corpora under tests/fuzz/corpus/<target>/ with Ember's own writers, so every
// seed is a valid file of its format (the fuzzer mutates from there). Built and run by
// scripts/fuzz.sh --seeds; the outputs are committed, so this only needs rerunning when a format
// changes. Usage: make_corpus <corpus dir>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "ember/ember.hpp"
#include "ember/io/checkpoint.hpp"
#include "ember/io/image.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/data/mnist.hpp"

namespace fs = std::filesystem;
using namespace ember;

static void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}
static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
static std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}
static std::string gzip(const std::string& s) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, s.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = static_cast<uInt>(s.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <corpus dir>\n";
    return 2;
  }
  const fs::path root = argv[1];
  // IDX: 3 images of 4x5 and 3 labels, plain and gzipped. The gz target's seeds are the plain
  // content with its leading mode byte (bit 0: labels magic).
  std::string images = be32(data::kIdxImagesMagic) + be32(3) + be32(4) + be32(5);
  for (int i = 0; i < 60; ++i) images += char(i * 4);
  std::string labels = be32(data::kIdxLabelsMagic) + be32(3) + std::string("\x01\x07\x09", 3);
  put(root / "fuzz_idx/images.idx", images);
  put(root / "fuzz_idx/labels.idx", labels);
  put(root / "fuzz_idx/images.idx.gz", gzip(images));
  put(root / "fuzz_idx/labels.idx.gz", gzip(labels));
  put(root / "fuzz_idx_gz/images", std::string(1, '\0') + images);
  put(root / "fuzz_idx_gz/labels", std::string(1, '\1') + labels);
  put(root / "fuzz_idx_gz/labels_truncated", std::string(1, '\3') + labels);

  // safetensors: several dtypes, a scalar, an empty tensor, metadata.
  const fs::path tmp = fs::temp_directory_path() / "ember_make_corpus";
  fs::create_directories(tmp);
  nn::StateDict sd;
  sd.insert("w", arange(6, TensorOptions(kFloat32)).reshape({2, 3}));
  sd.insert("b", tensor<int64_t>({1, -2}, {2}, TensorOptions(kInt64)));
  sd.insert("m", tensor<bool>({true, false, true}, {3}, TensorOptions(kBool)));
  sd.insert("s", full({}, 2.5, TensorOptions(kFloat64)));
  sd.insert("e", empty({0, 4}, TensorOptions(kFloat16)));
  io::save_safetensors((tmp / "a.safetensors").string(), sd, {{"format", "pt"}});
  put(root / "fuzz_safetensors/mixed.safetensors", slurp(tmp / "a.safetensors"));
  nn::StateDict one;
  one.insert("x", full({2}, 1.0, TensorOptions(kBFloat16)));
  io::save_safetensors((tmp / "b.safetensors").string(), one);
  put(root / "fuzz_safetensors/bf16.safetensors", slurp(tmp / "b.safetensors"));

  // checkpoints: the fuzz target restores into Linear(3, 2) + Adam, so a matching checkpoint
  // (after one step, so Adam has state) reaches the deepest code.
  manual_seed(1);
  auto model = std::make_shared<nn::Linear>(3, 2);
  optim::Adam opt(model->parameters(), optim::AdamOptions(1e-3));
  model->forward(ones({1, 3})).sum().backward();
  opt.step();
  io::save_checkpoint((tmp / "c.ckpt").string(), *model, opt, io::CheckpointInfo{2, 7, "{\"note\":\"seed\"}"});
  put(root / "fuzz_checkpoint/linear_adam.ckpt", slurp(tmp / "c.ckpt"));
  put(root / "fuzz_safetensors/checkpoint.safetensors", slurp(tmp / "c.ckpt"));

  // images: tiny PNG (gray, gray+alpha, RGB, RGBA), JPEG, BMP, TGA, each prefixed by the mode byte.
  for (int ch = 1; ch <= 4; ++ch) {
    io::Image img = io::Image::filled(5, 4, ch, 0);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<uint8_t>(i * 13);
    const std::string name = "c" + std::to_string(ch);
    io::write_png((tmp / (name + ".png")).string(), img);
    put(root / ("fuzz_image/" + name + ".png"), std::string(1, char(ch)) + slurp(tmp / (name + ".png")));
    if (ch == 3) {
      io::write_jpg((tmp / "c.jpg").string(), img, 50);
      io::write_bmp((tmp / "c.bmp").string(), img);
      io::write_tga((tmp / "c.tga").string(), img);
      for (const char* ext : {"jpg", "bmp", "tga"})
        put(root / (std::string("fuzz_image/c3.") + ext), std::string(1, '\0') + slurp(tmp / (std::string("c.") + ext)));
    }
  }
  put(root / "fuzz_image/p5.pgm", std::string(1, '\1') + "P5\n3 2\n255\n" + std::string("\x00\x40\x80\xc0\xff\x10", 6));

  // segment_digits: a 24x12 white image with two dark strokes (a "1" and a box-like "0").
  std::string seg = {char(23), char(11)};
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 24; ++x) {
      bool ink = (x == 5 && y >= 2 && y <= 9) || ((x == 13 || x == 18) && y >= 2 && y <= 9) ||
                 ((y == 2 || y == 9) && x >= 13 && x <= 18);
      seg += char(ink ? 10 : 240);
    }
  put(root / "fuzz_segment/two_digits", seg);
  fs::remove_all(tmp);
  std::cout << "seeds written under " << root << "\n";
  return 0;
}
