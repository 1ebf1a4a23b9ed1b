#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/cuda/device.hpp"
#include "ember/io/io.hpp"
#include "ember/nn/nn.hpp"
#include "ember/optim/optim.hpp"
#include "fault_injection.hpp"
#include "run_program.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

using namespace ember;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("ember_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  /// Names of the files in the directory (to catch leftover temporaries).
  std::vector<std::string> files() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(path)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A safetensors file from a header text and raw data (the header length is computed).
std::string st_bytes(const std::string& header, const std::string& data = "") {
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

/// Same dtype, shape and bytes (so -0.0, NaN payloads and bf16 bits count).
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.sizes() != b.sizes()) return false;
  Tensor x = a.detach().to(kCPU).contiguous(), y = b.detach().to(kCPU).contiguous();
  // An empty tensor may have no buffer at all: memcmp must not see its null pointer.
  return x.numel() == 0 ||
         std::memcmp(x.raw_data(), y.raw_data(), static_cast<size_t>(x.numel()) * x.element_size()) == 0;
}

/// Values for every dtype: a pattern with negatives, fractions and large magnitudes.
Tensor sample(DType dt, const Shape& shape, int seed) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    double k = static_cast<double>(i) + seed;
    switch (dt) {
      case kBool: v[i] = (i * 7 + static_cast<size_t>(seed)) % 3 == 0; break;
      case kUInt8: v[i] = static_cast<double>((i * 37 + static_cast<size_t>(seed)) % 256); break;
      case kInt32: v[i] = (k * 1e6) * (i % 2 ? -1 : 1); break;
      case kInt64: v[i] = (k * 1e12) * (i % 2 ? -1 : 1); break;
      default: v[i] = (k - 3.0) * 0.37 + 1.0 / (k + 1.0); break;
    }
  }
  return tensor(v, shape).to(dt);
}

/// The tensors of tests/golden/safetensors_interop.py's expected() (keep in sync).
nn::StateDict interop_expected() {
  nn::StateDict sd;
  sd.insert("a_f32", tensor<float>({0.5f, -1.25f, 3.0f, 1024.0f, -0.0f, 0.1f}, {2, 3}));
  sd.insert("b_f64", scalar_tensor(3.141592653589793, kFloat64));
  sd.insert("c_f16", tensor<float>({1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), std::numeric_limits<float>::infinity()},
                                   {5}).to(kFloat16));
  sd.insert("d_bf16", tensor<float>({1.0f, -3.0f, 0.15625f, std::ldexp(1.0f, 100)}, {2, 2}).to(kBFloat16));
  sd.insert("e_i64", tensor<int64_t>({9007199254740993LL, -1, -9223372036854775807LL}, {3}));
  sd.insert("f_i32", tensor<int32_t>({2147483647, -2147483647 - 1, 7, 0}, {2, 2}));
  sd.insert("g_u8", tensor<uint8_t>({0, 128, 255}, {3}));
  sd.insert("h_bool", tensor<bool>({true, false, false, true, true}, {5}));
  sd.insert("i_empty", zeros({0, 3}));
  sd.insert("j_f32_3d", tensor<float>({0.0f, 0.25f, 0.5f, 0.75f}, {2, 1, 2}));
  return sd;
}
const io::Metadata kInteropMetadata{{"format", "pt"}, {"source", "tests/golden/safetensors_interop.py"}};

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

}  // namespace

// ---- safetensors -------------------------------------------------------------------------------

TEST_CASE("safetensors: round trip of every dtype and shape, incl. 0-d and empty tensors") {
  TempDir dir;
  nn::StateDict sd;
  int seed = 0;
  for (DType dt : {kBool, kUInt8, kInt32, kInt64, kFloat16, kBFloat16, kFloat32, kFloat64})
    for (const Shape& shape : {Shape{}, Shape{0}, Shape{3}, Shape{2, 3}, Shape{2, 0, 4}, Shape{2, 3, 4}})
      sd.insert(std::string(io::safetensors_dtype(dt)) + "_" + std::to_string(shape.size()) + "_" +
                    std::to_string(shape.numel()),
                sample(dt, shape, seed++));
  io::Metadata meta{{"epoch", "3"}, {"note", "ünïcode \"quoted\"\n"}, {"", "empty key"}};
  std::string path = dir / "all.safetensors";
  io::save_safetensors(path, sd, meta);

  io::SafetensorsFile f = io::read_safetensors(path);
  REQUIRE(f.tensors.size() == sd.size());
  CHECK(f.tensors.keys() == sd.keys());  // written and read back in insertion order
  for (const auto& [name, t] : sd) {
    INFO(name);
    CHECK(same_bits(f.tensors.at(name), t));
  }
  CHECK(f.metadata == meta);
  CHECK(io::load_safetensors_metadata(path) == meta);
  CHECK(io::load_safetensors(path).size() == sd.size());

  // The layout the reference reader expects: 8-byte aligned header, offsets tiling the data.
  std::string bytes = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"]["epoch"] == "3");
  CHECK(header["F32_2_6"]["dtype"] == "F32");
  CHECK(header["F32_2_6"]["shape"] == nlohmann::json::array({2, 3}));
  CHECK(header["BOOL_0_1"]["shape"] == nlohmann::json::array());
  uint64_t pos = 0;
  for (const auto& [name, t] : sd) {
    auto off = header[name]["data_offsets"];
    CHECK(off[0].get<uint64_t>() == pos);
    pos += static_cast<uint64_t>(t.numel()) * t.element_size();
    CHECK(off[1].get<uint64_t>() == pos);
  }
  CHECK(bytes.size() == 8 + n + pos);
}

TEST_CASE("safetensors: non-contiguous and autograd tensors are saved by value") {
  TempDir dir;
  Tensor base = arange(24, kFloat64).reshape({4, 6});
  Tensor w = randn({3, 2}).requires_grad_();
  nn::StateDict sd{{"transposed", base.t()},
                   {"sliced", base.slice(1, 1, 6, 2)},
                   {"row", base.select(0, 2)},
                   {"expanded", tensor<float>({1.f, 2.f}, {2, 1}).expand({2, 3})},
                   {"param", w}};
  std::string path = dir / "views.safetensors";
  io::save_safetensors(path, sd);
  auto back = io::load_safetensors(path);
  for (const auto& [name, t] : sd) {
    INFO(name);
    CHECK(same_bits(back.at(name), t.detach().contiguous()));
    CHECK(back.at(name).is_contiguous());
    CHECK_FALSE(back.at(name).requires_grad());
  }
  CHECK(back.at("sliced").to_vector<double>() == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
}

TEST_CASE("safetensors: std::map and vector-of-pairs overloads, single-tensor load") {
  TempDir dir;
  std::map<std::string, Tensor> m{{"b", ones({2})}, {"a", zeros({3}, kInt64)}};
  std::string path = dir / "map.safetensors";
  io::save_safetensors(path, m);
  CHECK(io::load_safetensors(path).keys() == std::vector<std::string>{"a", "b"});
  CHECK(io::load_safetensors_metadata(path).empty());

  std::vector<std::pair<std::string, Tensor>> v{{"z", full({2, 2}, 7.0)}, {"y", scalar_tensor(1.5)}};
  io::save_safetensors(path, v, {{"k", "v"}});  // replaces the previous file
  CHECK(io::load_safetensors(path).keys() == std::vector<std::string>{"z", "y"});
  CHECK(io::load_safetensors_tensor(path, "y").item<float>() == 1.5f);
  CHECK(same_bits(io::load_safetensors_tensor(path, "z"), full({2, 2}, 7.0)));
  CHECK_THROWS_WITH_AS(io::load_safetensors_tensor(path, "x"),
                       doctest::Contains("has no tensor named 'x' (it has 2 tensor(s): 'z', 'y')"), ember::Error);

  std::vector<std::pair<std::string, Tensor>> dup{{"a", ones({1})}, {"a", ones({1})}};
  CHECK_THROWS_WITH_AS(io::save_safetensors(path, dup), doctest::Contains("'a' appears twice"), ember::Error);
}

TEST_CASE("safetensors: reads the file PyTorch wrote (golden) and writes one PyTorch reads") {
  const std::string golden = std::string(EMBER_SOURCE_DIR) + "/tests/golden/interop_torch.safetensors";
  if (!fs::exists(golden)) {
    MESSAGE("skipped: ", golden, " not found (set EMBER_SOURCE_DIR)");
    return;
  }
  nn::StateDict want = interop_expected();
  io::SafetensorsFile f = io::read_safetensors(golden);
  CHECK(f.metadata == kInteropMetadata);
  CHECK_FALSE(f.checksum.has_value());  // PyTorch writes none; the file loads unverified
  REQUIRE(f.tensors.size() == want.size());
  for (const auto& [name, t] : want) {
    INFO(name);
    REQUIRE(f.tensors.contains(name));
    CHECK(same_bits(f.tensors.at(name), t));
  }
  // Spot checks by value, independent of how interop_expected() builds its tensors.
  CHECK(f.tensors.at("e_i64").to_vector<int64_t>()[0] == 9007199254740993LL);
  CHECK(f.tensors.at("d_bf16").to(kFloat32).to_vector<float>()[3] == std::ldexp(1.0f, 100));
  CHECK(std::isinf(f.tensors.at("c_f16").to(kFloat32).to_vector<float>()[4]));
  CHECK(f.tensors.at("h_bool").to(kUInt8).to_vector<uint8_t>() == std::vector<uint8_t>{1, 0, 0, 1, 1});
  CHECK(f.tensors.at("b_f64").dim() == 0);

  TempDir dir;
  std::string out = dir / "from_ember.safetensors";
  io::save_safetensors(out, want, kInteropMetadata);
  if (!python_torch_available()) {
    MESSAGE("skipped the PyTorch reader: /usr/bin/python3 with torch is not available");
    return;
  }
  std::string cmd = "/usr/bin/python3 " + std::string(EMBER_SOURCE_DIR) + "/tests/golden/safetensors_interop.py verify '" +
                    out + "' >" + (dir / "py.log") + " 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(dir / "py.log"));
  CHECK(rc == 0);
}

TEST_CASE("safetensors: every malformed file is rejected with the file and tensor named") {
  TempDir dir;
  std::string p = dir / "bad.safetensors";
  auto expect_error = [&](const std::string& bytes, const std::string& needle) {
    spit(p, bytes);
    INFO("expected: " << needle);
    CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains(needle.c_str()), ember::Error);
    CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains(p.c_str()), ember::Error);
  };
  const std::string f32x2 = std::string(8, '\0');  // two float32 zeros
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int b, int e) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(b) + "," + std::to_string(e) + "]}";
  };

  // A valid file first, so each case below differs from it in one thing.
  spit(p, st_bytes("{" + entry("x", "F32", "[2]", 0, 8) + "}", f32x2));
  CHECK(io::load_safetensors(p).at("x").sizes() == Shape{2});

  CHECK_THROWS_WITH_AS(io::load_safetensors(dir / "missing.safetensors"), doctest::Contains("does not exist"), ember::Error);
  CHECK_THROWS_WITH_AS(io::load_safetensors(dir.path.string()), doctest::Contains("is a directory"), ember::Error);
  expect_error("", "too short");
  expect_error("abcde", "too short");
  {
    std::string huge(8, '\0');
    uint64_t n = uint64_t{1} << 40;
    std::memcpy(huge.data(), &n, 8);
    expect_error(huge + "{}", "header length 1099511627776 is absurd");
  }
  expect_error(st_bytes("{}").substr(0, 8), "is truncated: header length 2");
  expect_error(st_bytes("{\"x\": {"), "not valid JSON");
  expect_error(st_bytes("[1, 2]"), "must be a JSON object");
  expect_error(st_bytes("{" + entry("x", "I16", "[2]", 0, 4) + "}", std::string(4, '\0')),
               "tensor 'x': dtype 'I16' is not supported");
  expect_error(st_bytes("{" + entry("x", "float", "[2]", 0, 8) + "}", f32x2), "dtype 'float' is not supported");
  expect_error(st_bytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", f32x2), "tensor 'x': missing \"data_offsets\"");
  expect_error(st_bytes("{\"x\":[1]}", f32x2), "tensor 'x': entry must be an object");
  expect_error(st_bytes("{" + entry("x", "F32", "[-2]", 0, 8) + "}", f32x2), "tensor 'x': shape must hold non-negative");
  expect_error(st_bytes("{" + entry("x", "F32", "[2.5]", 0, 8) + "}", f32x2), "tensor 'x': shape must hold");
  expect_error(st_bytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", f32x2),
               "tensor 'x': data_offsets must be [begin, end]");
  expect_error(st_bytes("{" + entry("x", "F32", "[2]", 8, 0) + "}", f32x2), "end before begin");
  expect_error(st_bytes("{" + entry("x", "F32", "[2]", 0, 16) + "}", f32x2), "tensor 'x': data_offsets [0, 16] run past");
  expect_error(st_bytes("{" + entry("x", "F32", "[3]", 0, 8) + "}", f32x2), "tensor 'x': shape [3] of F32 needs 12 bytes");
  expect_error(st_bytes("{" + entry("x", "F32", "[2]", 0, 8) + "}", f32x2 + "xyz"), "3 bytes after the last tensor");
  expect_error(st_bytes("{" + entry("x", "F32", "[1]", 0, 4) + "," + entry("y", "F32", "[1]", 2, 6) + "}",
                        std::string(6, '\0')),
               "tensor 'y': data_offsets [2, 6] overlap");
  expect_error(st_bytes("{" + entry("x", "F32", "[1]", 0, 4) + "," + entry("y", "F32", "[1]", 6, 10) + "}",
                        std::string(10, '\0')),
               "tensor 'y': data_offsets [6, 10] leave a gap");
  expect_error(st_bytes("{" + entry("x", "F32", "[1]", 0, 4) + "," + entry("x", "F32", "[1]", 4, 8) + "}", f32x2),
               "tensor name 'x' appears twice");
  expect_error(st_bytes("{" + entry("x", "BOOL", "[2]", 0, 2) + "}", std::string("\x01\x02", 2)),
               "tensor 'x': BOOL element 1 holds byte 2");
  expect_error(st_bytes("{\"__metadata__\":{\"a\":1}}"), "__metadata__ value of 'a' must be a string");
  expect_error(st_bytes("{\"__metadata__\":[]}"), "__metadata__ must be an object");
  expect_error(st_bytes("{" + entry("x", "F32", "[4611686018427387904, 8]", 0, 8) + "}", f32x2),
               "tensor 'x': shape [4611686018427387904, 8] of F32 needs too many bytes");

  // Unknown fields are ignored, as the reference reader does; an empty header is a valid empty file.
  spit(p, st_bytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", f32x2));
  CHECK(io::load_safetensors(p).size() == 1);
  spit(p, st_bytes("{}"));
  CHECK(io::load_safetensors(p).empty());
  // load_safetensors_tensor validates the whole header too, and names its op.
  spit(p, st_bytes("{" + entry("x", "F32", "[2]", 0, 8) + "," + entry("x2", "F32", "[2]", 0, 8) + "}", f32x2));
  CHECK_THROWS_WITH_AS(io::load_safetensors_tensor(p, "x"), doctest::Contains("load_safetensors_tensor"), ember::Error);
}

TEST_CASE("safetensors: save errors") {
  TempDir dir;
  std::string p = dir / "x.safetensors";
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, nn::StateDict{{"w", Tensor()}}), doctest::Contains("tensor 'w' is undefined"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, nn::StateDict{{"__metadata__", ones({1})}}),
                       doctest::Contains("'__metadata__' is reserved"), ember::Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, nn::StateDict{{"", ones({1})}}), doctest::Contains("empty name"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(dir / "no/such/dir/x.safetensors", nn::StateDict{{"w", ones({1})}}),
                       doctest::Contains("does not exist"), ember::Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(dir.path.string(), nn::StateDict{{"w", ones({1})}}),
                       doctest::Contains("is a directory"), ember::Error);
  CHECK(dir.files().empty());  // no file and no temporary left behind
}

// A failed write (a full disk) is injected by the LD_PRELOAD shim of tests/fault/fault_inject.c into
// a child run of this binary (tests/fault_injection.hpp): the library has no hook for it.
TEST_CASE("io fault child: saves one safetensors file (does nothing unless started by a fault-injection test)") {
  const char* p = std::getenv("EMBER_FAULT_CHILD_SAFETENSORS");
  if (p == nullptr) return;
  try {
    io::save_safetensors(p, nn::StateDict{{"w", full({100}, 2.0)}}, {{"v", "new"}});
    std::cout << "SAVED\n";
  } catch (const ember::Error& e) {
    std::cout << "EMBER_ERROR: " << e.what() << "\n";
  }
}

TEST_CASE("safetensors: a failed write leaves the previous file intact and no temporary") {
  TempDir dir, tools;
  const std::string shim = ember_test::fault_shim(tools.path);
  if (shim.empty()) {
    MESSAGE(ember_test::kNoFaultShim);
    return;
  }
  std::string p = dir / "w.safetensors";
  io::save_safetensors(p, nn::StateDict{{"w", full({100}, 1.0)}}, {{"v", "old"}});
  const std::string before = slurp(p);
  REQUIRE(before.size() > 300);
  for (int64_t cut : {0, 5, 8, 40, 300}) {
    INFO("the disk is full after " << cut << " bytes of the new file");
    const ember_test::ProgramResult r = ember_test::run_self_with_fault(
        shim,
        "EMBER_FAULT_INJECT=write EMBER_FAULT_ERRNO=28 EMBER_FAULT_AFTER_BYTES=" + std::to_string(cut) +
            " EMBER_FAULT_MATCH=" + ember_test::shell_quote(dir.path.string()) +
            " EMBER_FAULT_CHILD_SAFETENSORS=" + ember_test::shell_quote(p),
        "io fault child: saves one safetensors file*", tools / "child.err");
    INFO("child stdout: " << r.out << "\nchild stderr: " << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("fault_inject: write('" + p + ".tmp.") != std::string::npos);  // the fault really happened
    CHECK(r.out.find("EMBER_ERROR: save_safetensors: write to '" + p + "' failed: No space left on device") !=
          std::string::npos);
    CHECK(slurp(p) == before);
    CHECK(dir.files() == std::vector<std::string>{"w.safetensors"});
  }
  CHECK(io::load_safetensors_metadata(p).at("v") == "old");
  io::save_safetensors(p, nn::StateDict{{"w", full({100}, 2.0)}}, {{"v", "new"}});
  CHECK(io::load_safetensors_tensor(p, "w").to_vector<float>()[99] == 2.0f);
}

TEST_CASE("crc32c: the standard check value, any split of the input gives the same CRC") {
  CHECK(io::crc32c("123456789") == 0xE3069283u);
  CHECK(io::crc32c("") == 0u);
  CHECK(io::crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
  CHECK(io::crc32c_hex(0xE3069283u) == "e3069283");
  CHECK(io::crc32c_hex(0xAu) == "0000000a");
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>((i * 131 + 7) % 256);
  const uint32_t whole = io::crc32c(text);
  for (size_t a : {0, 1, 3, 7, 8, 9, 500, 999})
    for (size_t b : {0, 1, 5, 8, 17}) {
      if (a + b > text.size()) continue;
      io::Crc32c c;  // three pieces, none aligned to the 8-byte steps
      c.update(text.substr(0, a));
      c.update(text.substr(a, b));
      c.update(text.substr(a + b));
      CHECK(c.value() == whole);
    }
  text[500] ^= 0x10;
  CHECK(io::crc32c(text) != whole);
}

TEST_CASE("safetensors: the checksum Ember writes catches flipped bytes and truncation; files without it load") {
  TempDir dir;
  const std::string p = dir / "c.safetensors";
  nn::StateDict sd{{"w", sample(kFloat32, {3, 5}, 1)}, {"b", sample(kFloat32, {5}, 2)}, {"n", sample(kInt64, {2}, 3)}};
  const io::Metadata meta{{"epoch", "3"}, {"note", "hello"}};
  io::save_safetensors(p, sd, meta);
  const std::string good = slurp(p);
  REQUIRE(good.find("\"ember.crc32c\":\"") != std::string::npos);
  io::SafetensorsFile f = io::read_safetensors(p);
  CHECK(f.checksum.has_value());
  CHECK(f.metadata == meta);  // the entry is not handed back, so a read-modify-save round trip is clean
  CHECK(io::load_safetensors_metadata(p) == meta);
  for (const auto& [k, t] : sd) CHECK(same_bits(f.tensors.at(k), t));

  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data(), 8);
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  // Every byte of the data and every byte of a metadata value, flipped one at a time.
  std::vector<size_t> positions;
  for (size_t i = data_start; i < good.size(); ++i) positions.push_back(i);
  for (const char* value : {"\"hello\"", "\"3\""}) {
    size_t at = good.find(value);
    REQUIRE(at < data_start);
    for (size_t i = at + 1; i + 1 < at + std::strlen(value); ++i) positions.push_back(i);
  }
  for (size_t i : positions) {
    std::string bad = good;
    bad[i] ^= 0x01;
    spit(p, bad);
    INFO("byte " << i << " of " << good.size());
    CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains("checksum mismatch"), ember::Error);
  }
  spit(p, good.substr(0, data_start) + std::string(good.size() - data_start, '\0'));
  CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains(p.c_str()), ember::Error);  // zeroed data

  // Truncated anywhere: an error naming the file (and saying it is truncated or too short).
  for (size_t len : {good.size() - 1, good.size() - 4, data_start + 3, data_start, data_start - 1, size_t{20}, size_t{5}}) {
    spit(p, good.substr(0, len));
    INFO("cut to " << len << " bytes");
    std::string err;
    try {
      io::load_safetensors(p);
    } catch (const ember::Error& e) {
      err = e.what();
    }
    CHECK(err.find(p) != std::string::npos);
    CHECK((err.find("truncated") != std::string::npos || err.find("too short") != std::string::npos));
  }

  // The same content re-serialised by another tool (indentation, other key order) still verifies.
  {
    std::string header_text = good.substr(8, header_len);
    auto j = nlohmann::ordered_json::parse(header_text);
    nlohmann::ordered_json reordered = nlohmann::ordered_json::object();
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    for (auto k = keys.rbegin(); k != keys.rend(); ++k) reordered[*k] = j[*k];
    std::string text = reordered.dump(2);
    text.append((8 - text.size() % 8) % 8, ' ');
    spit(p, st_bytes(text, good.substr(data_start)));
    CHECK(io::read_safetensors(p).checksum.has_value());
  }
  // A checksum entry that is not 8 hex digits.
  {
    std::string bad = good;
    size_t at = bad.find("\"ember.crc32c\":\"") + 16;
    bad[at] = 'X';
    spit(p, bad);
    CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains("is not a CRC-32C"), ember::Error);
  }
  // A file without the entry (as PyTorch and Hugging Face write them) loads, unverified.
  spit(p, st_bytes("{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   std::string(8, '\0')));
  io::SafetensorsFile plain = io::read_safetensors(p);
  CHECK_FALSE(plain.checksum.has_value());
  CHECK(plain.metadata == io::Metadata{{"format", "pt"}});
}

TEST_CASE("safetensors: load_safetensors_tensor verifies the checksum; every reader refuses a truncated file") {
  TempDir dir;
  const std::string p = dir / "part.safetensors";
  // A BOOL tensor in the middle: its flipped bytes must read as corruption, not as a bad BOOL.
  nn::StateDict sd{{"w", sample(kFloat32, {4, 3}, 1)}, {"m", sample(kBool, {6}, 2)}, {"n", sample(kInt64, {3}, 3)}};
  const io::Metadata meta{{"epoch", "7"}};
  io::save_safetensors(p, sd, meta);
  const std::string good = slurp(p);
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data(), 8);
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  for (const auto& [k, t] : sd) CHECK(same_bits(io::load_safetensors_tensor(p, k), t));
  CHECK(io::load_safetensors_metadata(p, /*verify_checksum=*/true) == meta);

  // Any data byte flipped, in the tensor asked for or in another: "checksum mismatch", the file named.
  auto refused_as_corrupt = [&](const std::function<void()>& load) {
    try {
      load();
    } catch (const ember::Error& e) {
      const std::string m = e.what();
      return m.find(p) != std::string::npos && m.find("checksum mismatch") != std::string::npos &&
             m.find("use an earlier checkpoint") != std::string::npos;
    }
    return false;
  };
  int refused = 0, tried = 0;
  for (size_t i = data_start; i < good.size(); ++i)
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      spit(p, bad);
      for (const char* name : {"w", "m", "n"}) {
        ++tried;
        const bool ok = refused_as_corrupt([&] { io::load_safetensors_tensor(p, name); });
        if (!ok) FAIL_CHECK("byte " << i << " ^ " << int(mask) << ": load_safetensors_tensor('" << name << "') accepted it");
        refused += ok;
      }
      ++tried;
      refused += refused_as_corrupt([&] { io::load_safetensors_metadata(p, true); });
      // The default metadata read does not read the data (documented): it still returns.
      CHECK(io::load_safetensors_metadata(p) == meta);
    }
  CHECK(refused == tried);
  // A metadata value changed in the header: also caught when the data is read through the CRC.
  {
    std::string bad = good;
    const size_t at = bad.find("\"7\"");
    REQUIRE(at < data_start);
    bad[at + 1] = '8';
    spit(p, bad);
    CHECK(refused_as_corrupt([&] { io::load_safetensors_tensor(p, "n"); }));
    CHECK(refused_as_corrupt([&] { io::load_safetensors_metadata(p, true); }));
  }

  // Cut anywhere (inside the data, at its start, inside the header): every reader, the default
  // metadata read included, refuses it with the file named, saying it is truncated or too short.
  for (size_t len : {good.size() - 1, good.size() - 8, data_start + 1, data_start, data_start - 1, size_t{12}, size_t{3}}) {
    spit(p, good.substr(0, len));
    INFO("cut to " << len << " of " << good.size() << " bytes");
    const std::vector<std::function<void()>> readers{
        [&] { io::load_safetensors_metadata(p); }, [&] { io::load_safetensors_metadata(p, true); },
        [&] { io::load_safetensors_tensor(p, "w"); }, [&] { io::load_safetensors_tensor(p, "n"); }};
    for (const auto& read : readers) {
      std::string err;
      try {
        read();
      } catch (const ember::Error& e) {
        err = e.what();
      }
      CHECK(err.find(p) != std::string::npos);
      CHECK((err.find("truncated") != std::string::npos || err.find("too short") != std::string::npos));
    }
  }
  // The data cut short says so and what to do.
  spit(p, good.substr(0, good.size() - 8));
  CHECK_THROWS_WITH_AS(io::load_safetensors_metadata(p),
                       doctest::Contains("is truncated: tensor 'n': data_offsets [54, 78] run past the end of the data "
                                         "(70 bytes follow the header)"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(io::load_safetensors_metadata(p), doctest::Contains("use an earlier checkpoint"), ember::Error);

  // Without a checksum (a PyTorch file) only the tensor asked for is read, as before; a bad
  // BOOL byte is still refused.
  spit(p, st_bytes("{\"x\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]},"
                   "\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
                   std::string("\x01\x00\x07\x09", 4)));
  CHECK(io::load_safetensors_tensor(p, "y").to_vector<uint8_t>() == std::vector<uint8_t>{7, 9});
  CHECK(io::load_safetensors_metadata(p, true).empty());
  spit(p, st_bytes("{\"x\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", std::string("\x01\x02", 2)));
  CHECK_THROWS_WITH_AS(io::load_safetensors_tensor(p, "x"), doctest::Contains("BOOL element 1 holds byte 2"), ember::Error);
}

TEST_CASE("remove_stale_temporaries: removes what killed writers left, never a live writer's file") {
  TempDir dir;
  const std::string p = dir / "last.safetensors";
  io::save_safetensors(p, nn::StateDict{{"w", ones({2})}});
  pid_t child = ::fork();  // a process that is gone by the time we look
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const std::string dead = p + ".tmp." + std::to_string(child) + ".0";
  const std::string live = p + ".tmp." + std::to_string(::getppid()) + ".3";  // our parent runs
  const std::string mine = p + ".tmp." + std::to_string(::getpid()) + ".7";
  for (const auto& f : {dead, live, mine, p + ".tmp.x.1", p + ".tmp.12", dir / "other.safetensors.tmp.1.1"}) spit(f, "partial");
  CHECK(io::remove_stale_temporaries(p) == 1);
  CHECK_FALSE(fs::exists(dead));
  for (const auto& f : {live, mine, p + ".tmp.x.1", p + ".tmp.12", dir / "other.safetensors.tmp.1.1", p}) CHECK_MESSAGE(fs::exists(f), f);
  CHECK(io::remove_stale_temporaries(dir / "nothing_here") == 0);
  CHECK(io::remove_stale_temporaries(dir / "no/such/dir/file") == 0);
}

TEST_CASE("safetensors: CUDA tensors are copied to the host and can be loaded onto the GPU") {
  if (!cuda_is_available()) {
    MESSAGE("CUDA part skipped: no GPU visible (or built without the CUDA backend)");
    return;
  }
  TempDir dir;
  std::string p = dir / "cuda.safetensors";
  Tensor x = arange(12, kFloat32).reshape({3, 4});
  io::save_safetensors(p, nn::StateDict{{"x", x.cuda().t()}});
  Tensor back = io::load_safetensors(p, Device(DeviceType::CUDA, 0)).at("x");
  CHECK(back.is_cuda());
  CHECK(same_bits(back.cpu(), x.t().contiguous()));
}

// ---- checkpoints -------------------------------------------------------------------------------

namespace {

/// A small net with dropout, so exact resumption needs the RNG state.
std::shared_ptr<nn::Sequential> make_net() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 16), std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::Linear>(16, 1));
}

struct Trainer {
  std::shared_ptr<nn::Sequential> net = make_net();
  optim::Adam opt{net->parameters(), optim::AdamOptions(1e-2).weight_decay(1e-3)};
  optim::StepLR sched{opt, 2, 0.5};
  Tensor x, y;
  int64_t step = 0;
  Trainer(const Tensor& x_, const Tensor& y_) : x(x_), y(y_) {}
  void train(int n) {
    for (int i = 0; i < n; ++i, ++step) {
      opt.zero_grad();
      Tensor loss = nn::functional::mse_loss(net->forward(x), y);
      loss.backward();
      opt.step();
      sched.step();
    }
  }
  std::vector<Tensor> params() const {
    std::vector<Tensor> v;
    for (auto& p : net->parameters()) v.push_back(p.detach().clone());
    return v;
  }
};

bool same_params(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_bits(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("checkpoint: training resumes bit for bit (model, Adam, StepLR, dropout RNG)") {
  TempDir dir;
  std::string ck = dir / "ckpt.safetensors";
  manual_seed(42);
  Tensor x = randn({8, 4}), y = randn({8, 1});

  manual_seed(7);
  Trainer a(x, y);
  a.train(3);
  io::save_checkpoint(ck, *a.net, a.opt, a.sched, {.epoch = 1, .step = a.step, .metadata = R"({"loss":[0.5,0.25]})"});
  a.train(3);
  auto params_a = a.params();
  double lr_a = a.opt.param_groups()[0].options().get_lr();

  manual_seed(1234);  // different initial weights and RNG stream
  Trainer b(x, y);
  (void)randn({100});
  io::CheckpointInfo info = io::load_checkpoint(ck, *b.net, b.opt, b.sched);
  CHECK(info.epoch == 1);
  CHECK(info.step == 3);
  CHECK(info.metadata == R"({"loss":[0.5,0.25]})");
  CHECK(b.sched.last_epoch() == 3);
  b.train(3);
  CHECK(same_params(b.params(), params_a));
  CHECK(b.opt.param_groups()[0].options().get_lr() == lr_a);

  // Without the RNG state the dropout masks differ, so the RNG part of the test is not vacuous.
  manual_seed(99);
  Trainer c(x, y);
  io::load_checkpoint(ck, *c.net, c.opt, c.sched);
  manual_seed(5);
  c.train(3);
  CHECK_FALSE(same_params(c.params(), params_a));

  // The model-only overload (for eval/predict) restores the weights at the checkpoint.
  auto net = make_net();
  io::load_checkpoint(ck, *net);
  auto ref = io::load_safetensors(ck);
  CHECK(same_bits(net->state_dict().at("0.weight"), ref.at("model.0.weight")));
}

TEST_CASE("checkpoint: layout, metadata and format checks") {
  TempDir dir;
  std::string ck = dir / "c.safetensors";
  manual_seed(3);
  Tensor x = randn({8, 4}), y = randn({8, 1});
  Trainer t(x, y);
  t.train(1);
  io::save_checkpoint(ck, *t.net, t.opt, {.epoch = 2, .step = 17});
  io::Metadata m = io::load_safetensors_metadata(ck);
  CHECK(m.at("format") == "ember.checkpoint");
  CHECK(m.at("epoch") == "2");
  CHECK(m.at("step") == "17");
  CHECK(m.at("has_scheduler") == "0");
  CHECK(m.at("rng_seed") == std::to_string(default_generator().get_state().seed));
  auto keys = io::load_safetensors(ck).keys();
  CHECK(std::count_if(keys.begin(), keys.end(), [](auto& k) { return k.rfind("model.", 0) == 0; }) == 4);
  CHECK(std::find(keys.begin(), keys.end(), "optim.state.0.exp_avg") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "optim.param_groups.0.lr") != keys.end());

  io::Checkpoint c = io::read_checkpoint(ck);
  CHECK(c.optimizer.has_value());
  CHECK_FALSE(c.scheduler.has_value());
  CHECK(c.info.step == 17);

  // Saved without a scheduler: asking for one is an error naming the file.
  CHECK_THROWS_WITH_AS(io::load_checkpoint(ck, *t.net, t.opt, t.sched), doctest::Contains("holds no scheduler state"),
                       ember::Error);
  // A different model: the key/shape errors of load_state_dict, prefixed with the file.
  auto other = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 8));
  CHECK_THROWS_WITH_AS(io::load_checkpoint(ck, *other), doctest::Contains(ck.c_str()), ember::Error);
  CHECK_THROWS_WITH_AS(io::load_checkpoint(ck, *other), doctest::Contains("size mismatch for 0.weight"), ember::Error);
  // A plain weights file is not a checkpoint.
  std::string plain = dir / "plain.safetensors";
  io::save_safetensors(plain, t.net->state_dict());
  CHECK_THROWS_WITH_AS(io::load_checkpoint(plain, *t.net), doctest::Contains("not an Ember checkpoint"), ember::Error);
  // Metadata must be JSON.
  CHECK_THROWS_WITH_AS(io::save_checkpoint(ck, *t.net, t.opt, {.metadata = "{oops"}), doctest::Contains("valid JSON"),
                       ember::Error);
  // A corrupt epoch field.
  auto all = io::read_safetensors(ck);
  all.metadata["epoch"] = "-1";
  io::save_safetensors(plain, all.tensors, all.metadata);
  CHECK_THROWS_WITH_AS(io::read_checkpoint(plain), doctest::Contains("'epoch' = '-1' is not a non-negative integer"),
                       ember::Error);
  all.metadata["format_version"] = "9";
  io::save_safetensors(plain, all.tensors, all.metadata);
  CHECK_THROWS_WITH_AS(io::read_checkpoint(plain), doctest::Contains("format_version '9'"), ember::Error);
}

TEST_CASE("checkpoint: any single flipped byte or a cut anywhere is refused with the file named") {
  TempDir dir;
  std::string ck = dir / "ckpt.safetensors";
  manual_seed(5);
  auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 2));
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  Tensor loss = nn::functional::mse_loss(net->forward(randn({4, 3})), randn({4, 2}));
  loss.backward();
  opt.step();
  io::save_checkpoint(ck, *net, opt, {.epoch = 1, .step = 4, .metadata = R"({"batch_in_epoch":2})"});
  CHECK(io::load_safetensors_metadata(ck).at("format_version") == "2");
  const std::string good = slurp(ck);
  CHECK(io::read_checkpoint(ck).info.step == 4);
  // Header included: a damaged key, value, length field, padding or checksum entry all fail,
  // because format_version 2 requires the checksum entry the CRC cannot cover itself.
  int refused = 0, tried = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80}) {
      if (mask == 0x80 && i % 5 != 0) continue;  // the high bit on a sample: half the time
      ++tried;
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      spit(ck, bad);
      bool threw = false;
      try {
        io::read_checkpoint(ck);
      } catch (const ember::Error& e) {
        threw = std::string(e.what()).find(ck) != std::string::npos;
      }
      if (!threw) FAIL_CHECK("byte " << i << " ^ " << int(mask) << " was not refused with the file named");
      refused += threw;
    }
  }
  CHECK(refused == tried);
  CHECK(tried > static_cast<int>(good.size()));
  for (size_t len = 0; len < good.size(); len += 7) {
    spit(ck, good.substr(0, len));
    CHECK_THROWS_WITH_AS(io::read_checkpoint(ck), doctest::Contains(ck.c_str()), ember::Error);
  }
  // A version-1 checkpoint (written before the checksum existed) still loads.
  spit(ck, good);
  auto all = io::read_safetensors(ck);
  all.metadata["format_version"] = "1";
  std::string v1 = dir / "v1.safetensors";
  io::save_safetensors(v1, all.tensors, all.metadata);
  std::string v1_bytes = slurp(v1);
  size_t at = v1_bytes.find("\"ember.crc32c\":\"");
  REQUIRE(at != std::string::npos);
  v1_bytes.replace(at + 1, 12, "other.key_12");  // unknown metadata now: a file without a checksum
  spit(v1, v1_bytes);
  CHECK_FALSE(io::read_safetensors(v1).checksum.has_value());
  CHECK(io::read_checkpoint(v1).info.step == 4);
}

// ---- write, fsync and rename failures while saving a checkpoint, injected by the LD_PRELOAD shim
// (tests/fault/fault_inject.c) into a child run of this binary (tests/fault_injection.hpp) ----

namespace {

/// The data of the checkpoints the fault test saves; a Trainer built right after it starts from
/// the same weights every time (its initialisation draws from the same stream).
std::pair<Tensor, Tensor> fault_test_data() {
  manual_seed(11);
  Tensor x = randn({8, 4});
  return {x, randn({8, 1})};
}

}  // namespace

TEST_CASE("io fault child: saves one checkpoint (does nothing unless started by the fault-injection test)") {
  const char* ck = std::getenv("EMBER_FAULT_CHILD_CKPT");
  if (ck == nullptr) return;
  auto [x, y] = fault_test_data();
  Trainer t(x, y);
  t.train(4);
  try {
    io::save_checkpoint(ck, *t.net, t.opt, t.sched, {.epoch = 2, .step = t.step});
    std::cout << "SAVED\n";
  } catch (const ember::Error& e) {
    std::cout << "EMBER_ERROR: " << e.what() << "\n";
  }
}

TEST_CASE("checkpoint: a failing write, fsync or rename names the file, keeps the previous checkpoint, leaves no temporary") {
  TempDir dir, tools;
  const std::string shim = ember_test::fault_shim(tools.path);
  if (shim.empty()) {
    MESSAGE(ember_test::kNoFaultShim);
    return;
  }
  const std::string ck = dir / "ckpt.safetensors";
  auto [x, y] = fault_test_data();
  Trainer t(x, y);
  t.train(2);
  io::save_checkpoint(ck, *t.net, t.opt, t.sched, {.epoch = 1, .step = t.step});
  const std::string before = slurp(ck);
  const auto saved = t.params();

  auto run_child = [&](const std::string& fault_env) {
    return ember_test::run_self_with_fault(shim,
                                           fault_env + " EMBER_FAULT_MATCH=" + ember_test::shell_quote(dir.path.string()) +
                                               " EMBER_FAULT_CHILD_CKPT=" + ember_test::shell_quote(ck),
                                           "io fault child: saves one checkpoint*", tools / "child.err");
  };
  // The disk fills up halfway through the new checkpoint's data.
  const std::string half = "EMBER_FAULT_INJECT=write EMBER_FAULT_ERRNO=28 EMBER_FAULT_AFTER_BYTES=" +
                           std::to_string(before.size() / 2);

  struct Case {
    const char* env;       // what to inject
    const char* injected;  // the shim's line on stderr
    const char* message;   // in the ember::Error the save throws
  };
  for (const Case& c : {Case{half.c_str(), "fault_inject: write('", ": No space left on device"},
                        Case{"EMBER_FAULT_INJECT=fsync", "fault_inject: fsync('", ": Input/output error"},
                        Case{"EMBER_FAULT_INJECT=fsync EMBER_FAULT_ERRNO=28", "fault_inject: fsync('",
                             ": No space left on device"},
                        Case{"EMBER_FAULT_INJECT=rename", "fault_inject: rename('", ": Input/output error"},
                        Case{"EMBER_FAULT_INJECT=rename EMBER_FAULT_ERRNO=122", "fault_inject: rename('",
                             ": Disk quota exceeded"}}) {
    INFO(std::string(c.env));
    const ember_test::ProgramResult r = run_child(c.env);
    INFO("child stdout: " << r.out << "\nchild stderr: " << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find(c.injected) != std::string::npos);  // the fault really happened
    const size_t at = r.out.find("EMBER_ERROR: ");
    REQUIRE(at != std::string::npos);
    const std::string msg = r.out.substr(at, r.out.find('\n', at) - at);
    CHECK(msg.find("save_safetensors") != std::string::npos);  // save_checkpoint's writer
    CHECK(msg.find(c.message) != std::string::npos);
    // The file is named: the checkpoint a write was for, or the temporary fsync and rename act on.
    if (std::string(c.env).find("write") != std::string::npos)
      CHECK(msg.find("write to '" + ck + "' failed") != std::string::npos);
    else if (std::string(c.env).find("rename") != std::string::npos)
      CHECK(msg.find("cannot rename '" + ck + ".tmp.") != std::string::npos);
    else
      CHECK(msg.find("fsync of '" + ck + ".tmp.") != std::string::npos);
    // The previous checkpoint: byte for byte as it was, loadable, and nothing left beside it.
    CHECK(slurp(ck) == before);
    CHECK(dir.files() == std::vector<std::string>{"ckpt.safetensors"});
    Trainer r2(x, y);
    CHECK(io::load_checkpoint(ck, *r2.net, r2.opt, r2.sched).epoch == 1);
    CHECK(same_params(r2.params(), saved));
  }

  // The directory's fsync (after the rename) failing is not fatal: the new file is complete.
  {
    const ember_test::ProgramResult r = run_child("EMBER_FAULT_INJECT=fsync EMBER_FAULT_SKIP=1");
    INFO("child stdout: " << r.out << "\nchild stderr: " << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("fault_inject: fsync('" + dir.path.string() + "')") != std::string::npos);
    CHECK(r.out.find("SAVED") != std::string::npos);
    CHECK(dir.files() == std::vector<std::string>{"ckpt.safetensors"});
    auto [x2, y2] = fault_test_data();
    Trainer want(x2, y2);
    want.train(4);
    Trainer r2(x, y);
    CHECK(io::load_checkpoint(ck, *r2.net, r2.opt, r2.sched).epoch == 2);
    CHECK(same_params(r2.params(), want.params()));
  }
}
