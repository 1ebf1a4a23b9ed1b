#pragma once
/// Tensors and state dicts in the safetensors format, the file Hugging Face and PyTorch users
/// exchange (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
/// N bytes of JSON
///   {"__metadata__": {"key": "value", ...},
///    "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
/// padded with spaces to a multiple of 8, then the raw little-endian, row-major bytes of every
/// tensor; offsets are relative to the end of the header and tile the data exactly.
///
/// Writing is atomic (io/atomic_file.hpp). Reading validates the whole header before touching any
/// data and throws ember::Error naming the file (and the tensor) for anything wrong: a truncated
/// file, an absurd header length, invalid JSON, an unknown dtype, duplicate names, offsets that
/// overlap, leave gaps, run past the file or disagree with shape × dtype size.
///
/// Checksum: every file Ember writes records the CRC-32C of its header and data under the
/// metadata key "ember.crc32c" (8 hex digits; other readers see one more metadata string).
/// read_safetensors / load_safetensors verify it and refuse a file whose bytes changed since it
/// was written; files without the entry (written by PyTorch or Hugging Face) load as before. The
/// CRC covers the header in a canonical form (the JSON re-serialised with sorted keys and the
/// checksum value replaced by "00000000") followed by the data bytes: verifying needs no second
/// pass over the file, and a header another tool re-serialised with the same content still
/// verifies (tests/golden/safetensors_interop.py recomputes it in Python). The entry is removed
/// from the metadata handed back (SafetensorsFile::checksum says whether it was there).
/// load_safetensors_tensor verifies it too: it reads the other tensors' bytes through the CRC
/// (in 1 MiB pieces, never holding them), so picking one tensor out of a file costs a full read
/// of the file, as loading it would, but allocates only that tensor. load_safetensors_metadata
/// validates the header and checks that the file is exactly as long as the header says (a
/// truncated file is refused); it does not read the data unless asked to
/// (`verify_checksum = true`), since a metadata lookup (the step of a checkpoint, a format
/// version) should not cost a read of a multi-gigabyte file.
///
/// Example:
/// ```
///   ember::io::save_safetensors("model.safetensors", model->state_dict(), {{"epoch", "8"}});
///   model->load_state_dict(ember::io::load_safetensors("model.safetensors"));
///   ember::Tensor w = ember::io::load_safetensors_tensor("model.safetensors", "fc1.weight");
/// ```
#include <algorithm>
#include <bit>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"
#include "ember/io/atomic_file.hpp"
#include "ember/io/checksum.hpp"
#include "ember/nn/state_dict.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"

namespace ember::io {

static_assert(std::endian::native == std::endian::little,
              "io/safetensors: the format is little-endian; big-endian hosts need byte swapping (not implemented)");

/// Free-form string metadata stored under "__metadata__".
using Metadata = std::map<std::string, std::string>;

/// The metadata key of the CRC-32C Ember writes into every file (see the header comment).
inline constexpr const char* kChecksumKey = "ember.crc32c";

/// Everything a safetensors file holds.
struct SafetensorsFile {
  nn::StateDict tensors;  ///< in file order (order of data offsets)
  Metadata metadata;      ///< without the checksum entry
  std::optional<uint32_t> checksum;  ///< the verified CRC-32C, when the file had one
};

/// The safetensors dtype code of `t` ("F32", "BF16", "BOOL", ...).
inline const char* safetensors_dtype(DType t) {
  switch (t) {
    case kBool: return "BOOL";
    case kUInt8: return "U8";
    case kInt32: return "I32";
    case kInt64: return "I64";
    case kFloat16: return "F16";
    case kBFloat16: return "BF16";
    case kFloat32: return "F32";
    case kFloat64: return "F64";
  }
  return "?";
}

/// The Ember dtype of a safetensors dtype code, or nullopt for codes Ember has no type for
/// (I8, I16, U16, U32, U64, F8_*).
inline std::optional<DType> dtype_from_safetensors(const std::string& code) {
  for (DType t : {kBool, kUInt8, kInt32, kInt64, kFloat16, kBFloat16, kFloat32, kFloat64})
    if (code == safetensors_dtype(t)) return t;
  return std::nullopt;
}

namespace detail {

/// The reference implementation's limit: larger headers are rejected as corrupt.
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

/// One validated header entry.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  ///< sorted by begin offset
  Metadata metadata;                      ///< without the checksum entry
  uint64_t data_start = 0;  ///< file offset of the data buffer (8 + N)
  std::optional<uint32_t> checksum;  ///< the CRC the file records, if any
  Crc32c crc;                        ///< the canonical header folded in; the data goes next
};

/// The header text the checksum covers: `header` with sorted keys (nlohmann::json's std::map
/// order) and the checksum value zeroed, so the writer's insertion order and the reader's
/// parse give the same bytes.
inline std::string canonical_header(nlohmann::json header) {
  header["__metadata__"][kChecksumKey] = "00000000";
  return header.dump();
}

inline bool is_crc_hex(const std::string& s) {
  return s.size() == 8 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

inline std::string read_exact(std::ifstream& f, uint64_t offset, uint64_t n, const std::string& path,
                              const char* op) {
  std::string buf(static_cast<size_t>(n), '\0');
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(buf.data(), static_cast<std::streamsize>(n));
  EMBER_CHECK(f.good() || (n == 0 && !f.bad()), op, ": '", path, "': read of ", n, " bytes at offset ", offset,
              " failed");
  return buf;
}

inline uint64_t json_u64(const nlohmann::json& v, const std::string& path, const std::string& name,
                         const char* field, const char* op) {
  EMBER_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), op, ": '", path,
              "': tensor '", name, "': ", field, " must hold non-negative integers, got ", v.dump());
  return v.get<uint64_t>();
}

/// Parses and validates the header of the open file `f` of `file_size` bytes.
inline SafetensorsHeader read_safetensors_header(std::ifstream& f, uint64_t file_size, const std::string& path,
                                                 const char* op) {
  using nlohmann::json;
  EMBER_CHECK(file_size >= 8, op, ": '", path, "' is too short to be a safetensors file (", file_size,
              " bytes; the 8-byte header length alone needs 8)");
  std::string len_bytes = read_exact(f, 0, 8, path, op);
  uint64_t n = 0;
  std::memcpy(&n, len_bytes.data(), 8);
  EMBER_CHECK(n <= kMaxSafetensorsHeader, op, ": '", path, "': header length ", n,
              " is absurd (limit ", kMaxSafetensorsHeader, " bytes): not a safetensors file, or corrupt");
  EMBER_CHECK(n <= file_size - 8, op, ": '", path, "' is truncated: header length ", n, " but only ",
              file_size - 8, " bytes follow the length field");
  std::string text = read_exact(f, 8, n, path, op);

  // nlohmann keeps the last of duplicate keys silently; a parser callback sees every top-level key.
  std::set<std::string> seen;
  std::string duplicate;
  auto cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, cb);
  } catch (const json::exception& e) {
    EMBER_FAIL(op, ": '", path, "': the header is not valid JSON: ", e.what());
  }
  EMBER_CHECK(duplicate.empty(), op, ": '", path, "': tensor name '", duplicate, "' appears twice in the header");
  EMBER_CHECK(header.is_object(), op, ": '", path, "': the header must be a JSON object, got ", header.type_name());

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      EMBER_CHECK(v.is_object(), op, ": '", path, "': __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        EMBER_CHECK(m.value().is_string(), op, ": '", path, "': __metadata__ value of '", m.key(),
                    "' must be a string, got ", m.value().dump());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      if (auto c = h.metadata.find(kChecksumKey); c != h.metadata.end()) {
        EMBER_CHECK(is_crc_hex(c->second), op, ": '", path, "': __metadata__ '", kChecksumKey, "' = '", c->second,
                    "' is not a CRC-32C (8 lowercase hex digits): the header is corrupt");
        h.checksum = static_cast<uint32_t>(std::stoul(c->second, nullptr, 16));
        h.metadata.erase(c);
        h.crc.update(canonical_header(header));
      }
      continue;
    }
    EMBER_CHECK(v.is_object(), op, ": '", path, "': tensor '", name, "': entry must be an object, got ", v.dump());
    for (const char* field : {"dtype", "shape", "data_offsets"})
      EMBER_CHECK(v.contains(field), op, ": '", path, "': tensor '", name, "': missing \"", field, "\"");
    const json& jd = v["dtype"];
    EMBER_CHECK(jd.is_string(), op, ": '", path, "': tensor '", name, "': dtype must be a string");
    auto dt = dtype_from_safetensors(jd.get<std::string>());
    EMBER_CHECK(dt.has_value(), op, ": '", path, "': tensor '", name, "': dtype '", jd.get<std::string>(),
                "' is not supported (Ember reads BOOL, U8, I32, I64, F16, BF16, F32, F64)");
    const json& js = v["shape"];
    EMBER_CHECK(js.is_array(), op, ": '", path, "': tensor '", name, "': shape must be an array");
    Shape shape;
    uint64_t numel = 1;
    bool overflow = false, has_zero = false;
    for (const auto& d : js) {
      uint64_t s = json_u64(d, path, name, "shape", op);
      EMBER_CHECK(s <= static_cast<uint64_t>(INT64_MAX), op, ": '", path, "': tensor '", name, "': dimension ", s,
                  " is too large");
      shape.push_back(static_cast<int64_t>(s));
      has_zero = has_zero || s == 0;
      if (s != 0 && numel > UINT64_MAX / s) overflow = true;
      numel *= s;
    }
    if (has_zero) {  // an empty tensor, however large its other dims
      numel = 0;
      overflow = false;
    }
    uint64_t esize = element_size(*dt);
    if (numel > UINT64_MAX / esize) overflow = true;
    const json& jo = v["data_offsets"];
    EMBER_CHECK(jo.is_array() && jo.size() == 2, op, ": '", path, "': tensor '", name,
                "': data_offsets must be [begin, end], got ", jo.dump());
    uint64_t b = json_u64(jo[0], path, name, "data_offsets", op), e = json_u64(jo[1], path, name, "data_offsets", op);
    EMBER_CHECK(b <= e, op, ": '", path, "': tensor '", name, "': data_offsets [", b, ", ", e, "] end before begin");
    // Every reader, metadata-only ones included, refuses a file cut short.
    EMBER_CHECK(e <= data_size, op, ": '", path, "' is truncated: tensor '", name, "': data_offsets [", b, ", ", e,
                "] run past the end of the data (", data_size, " bytes follow the header). The file was cut short "
                "(an interrupted copy, download or save, or a full disk) or its header is corrupt: copy it again "
                "or use an earlier checkpoint");
    EMBER_CHECK(!overflow && numel * esize == e - b, op, ": '", path, "': tensor '",
                name, "': shape ", shape, " of ", jd.get<std::string>(), " needs ",
                overflow ? std::string("too many") : std::to_string(numel * esize), " bytes but data_offsets [", b,
                ", ", e, "] hold ", e - b);
    h.entries.push_back({name, *dt, shape, b, e});
  }
  std::stable_sort(h.entries.begin(), h.entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const auto& e : h.entries) {
    EMBER_CHECK(e.begin >= pos, op, ": '", path, "': tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                "] overlap the previous tensor's data (which ends at ", pos, ")");
    EMBER_CHECK(e.begin == pos, op, ": '", path, "': tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                "] leave a gap after byte ", pos, " (tensor data must be contiguous)");
    pos = e.end;
  }
  EMBER_CHECK(pos == data_size, op, ": '", path, "': ", data_size - pos,
              " bytes after the last tensor's data are not described by the header");
  return h;
}

inline std::ifstream open_for_read(const std::string& path, uint64_t& size, const char* op) {
  std::error_code ec;
  EMBER_CHECK(std::filesystem::exists(path, ec), op, ": '", path, "' does not exist");
  EMBER_CHECK(!std::filesystem::is_directory(path, ec), op, ": '", path, "' is a directory");
  std::ifstream f(path, std::ios::binary);
  EMBER_CHECK(f.is_open(), op, ": cannot open '", path, "': ", errno_text(errno));
  auto sz = std::filesystem::file_size(path, ec);
  EMBER_CHECK(!ec, op, ": cannot get the size of '", path, "': ", ec.message());
  size = sz;
  return f;
}

/// Reads one entry's bytes into a fresh CPU tensor (not yet checked: see check_bool_bytes).
inline Tensor read_entry(std::ifstream& f, const SafetensorsHeader& h, const SafetensorsEntry& e,
                         const std::string& path, const char* op) {
  Tensor t = make_tensor(e.shape, e.dtype, kCPU);
  uint64_t n = e.end - e.begin;
  if (n > 0) {
    f.seekg(static_cast<std::streamoff>(h.data_start + e.begin));
    f.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(n));
    EMBER_CHECK(f.good(), op, ": '", path, "': tensor '", e.name, "': reading its ", n, " bytes failed");
  }
  return t;
}

/// BOOL tensors must hold bytes 0 or 1. Checked after the checksum, so a flipped byte in a
/// checksummed file is reported as corruption, not as a bad BOOL.
inline void check_bool_bytes(const Tensor& t, const SafetensorsEntry& e, const std::string& path, const char* op) {
  if (e.dtype != kBool) return;
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  for (uint64_t i = 0, n = e.end - e.begin; i < n; ++i)
    EMBER_CHECK(p[i] <= 1, op, ": '", path, "': tensor '", e.name, "': BOOL element ", i, " holds byte ",
                static_cast<int>(p[i]), " (expected 0 or 1)");
}

/// Feeds the CRC bytes [h.data_start + begin, h.data_start + end) of `f` without keeping them.
inline void crc_skip(std::ifstream& f, SafetensorsHeader& h, uint64_t begin, uint64_t end, const std::string& path,
                     const char* op) {
  constexpr uint64_t kPiece = uint64_t{1} << 20;
  std::string buf(static_cast<size_t>(std::min(kPiece, end - begin)), '\0');
  f.seekg(static_cast<std::streamoff>(h.data_start + begin));
  for (uint64_t at = begin; at < end;) {
    const uint64_t n = std::min(kPiece, end - at);
    f.read(buf.data(), static_cast<std::streamsize>(n));
    EMBER_CHECK(f.good(), op, ": '", path, "': reading ", n, " bytes of tensor data at offset ", h.data_start + at,
                " failed");
    h.crc.update(buf.data(), static_cast<size_t>(n));
    at += n;
  }
}

/// Compares the CRC folded so far (canonical header, then all the data) with the recorded one.
inline void check_crc(const SafetensorsHeader& h, const std::string& path, const char* op) {
  if (!h.checksum) return;
  EMBER_CHECK(h.crc.value() == *h.checksum, op, ": '", path, "': checksum mismatch: the header and data have CRC-32C ",
              crc32c_hex(h.crc.value()), " but the file records ", crc32c_hex(*h.checksum),
              "; the file is corrupt (bad disk, interrupted copy, edited by hand) and cannot be trusted: copy it "
              "again or use an earlier checkpoint");
}

}  // namespace detail

/// Writes `tensors` (in their order) and `metadata` to `path` atomically. Non-contiguous tensors
/// are written in row-major order and CUDA tensors are copied to the host; autograd is ignored.
inline void save_safetensors(const std::string& path, const nn::StateDict& tensors, const Metadata& metadata = {}) {
  const char* op = "save_safetensors";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;  // a checksum entry from an earlier read is recomputed
    m[kChecksumKey] = "00000000";
    header["__metadata__"] = std::move(m);
  }
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(!name.empty(), op, ": '", path, "': a tensor has an empty name");
    EMBER_CHECK(name != "__metadata__", op, ": '", path, "': '__metadata__' is reserved and can't name a tensor");
    EMBER_CHECK(t.defined(), op, ": '", path, "': tensor '", name, "' is undefined");
    Tensor h = t.detach();
    if (h.is_cuda()) h = h.to(kCPU);
    if (!h.is_contiguous()) h = h.contiguous();
    uint64_t nbytes = static_cast<uint64_t>(h.numel()) * h.element_size();
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int64_t s : h.sizes()) shape.push_back(s);
    header[name] = {{"dtype", safetensors_dtype(h.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    host.push_back(std::move(h));
  }
  Crc32c crc;
  crc.update(detail::canonical_header(nlohmann::json::parse(header.dump())));
  for (const Tensor& h : host)
    if (h.numel() > 0) crc.update(h.raw_data(), static_cast<size_t>(h.numel()) * h.element_size());
  header["__metadata__"][kChecksumKey] = crc32c_hex(crc.value());
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference writer aligns the data to 8 bytes
  uint64_t n = text.size();
  write_file_atomic(path, op, [&](FileWriter& w) {
    w.write(&n, 8);
    w.write(text);
    for (const Tensor& h : host)
      if (h.numel() > 0) w.write(h.raw_data(), static_cast<size_t>(h.numel()) * h.element_size());
  });
}

/// save_safetensors for any map-like container of (name, Tensor) pairs (std::map, a vector of
/// pairs, ...); a std::map is written in key order.
template <typename Map>
  requires requires(const Map& m) {
    { m.begin()->first } -> std::convertible_to<std::string>;
    { m.begin()->second } -> std::convertible_to<Tensor>;
  }
void save_safetensors(const std::string& path, const Map& tensors, const Metadata& metadata = {}) {
  nn::StateDict sd;
  for (const auto& [k, v] : tensors) {
    EMBER_CHECK(!sd.contains(k), "save_safetensors: '", path, "': tensor name '", k, "' appears twice");
    sd.insert(k, v);
  }
  save_safetensors(path, sd, metadata);
}

/// Reads every tensor and the metadata of `path` onto `device`.
inline SafetensorsFile read_safetensors(const std::string& path, Device device = kCPU) {
  const char* op = "load_safetensors";
  uint64_t size = 0;
  std::ifstream f = detail::open_for_read(path, size, op);
  detail::SafetensorsHeader h = detail::read_safetensors_header(f, size, path, op);
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  // Entries are sorted by offset and tile the data, so reading them in turn feeds the CRC the
  // data bytes in file order.
  for (const auto& e : h.entries) {
    Tensor t = detail::read_entry(f, h, e, path, op);
    if (h.checksum && t.numel() > 0) h.crc.update(t.raw_data(), static_cast<size_t>(t.numel()) * t.element_size());
    out.tensors.insert(e.name, t);
  }
  detail::check_crc(h, path, op);
  for (const auto& e : h.entries) detail::check_bool_bytes(out.tensors.at(e.name), e, path, op);
  out.checksum = h.checksum;
  if (device.is_cuda())  // only once the bytes are known good
    for (const auto& name : out.tensors.keys()) out.tensors.at(name) = out.tensors.at(name).to(device);
  return out;
}

/// Reads every tensor of `path` (in file order) onto `device`: load_state_dict's input.
inline nn::StateDict load_safetensors(const std::string& path, Device device = kCPU) {
  return read_safetensors(path, device).tensors;
}

/// Reads only the "__metadata__" map of `path`. The header is fully validated and a file shorter
/// (or longer) than its header describes is refused; with `verify_checksum` the data is read
/// through the CRC too (a full read of the file, nothing allocated but a 1 MiB buffer), so a
/// corrupt file is refused as read_safetensors would.
inline Metadata load_safetensors_metadata(const std::string& path, bool verify_checksum = false) {
  const char* op = "load_safetensors_metadata";
  uint64_t size = 0;
  std::ifstream f = detail::open_for_read(path, size, op);
  detail::SafetensorsHeader h = detail::read_safetensors_header(f, size, path, op);
  if (verify_checksum && h.checksum) {
    detail::crc_skip(f, h, 0, size - h.data_start, path, op);
    detail::check_crc(h, path, op);
  }
  return std::move(h.metadata);
}

/// Reads one tensor by name, allocating only it. A file with a checksum is verified (the other
/// tensors' bytes are read through the CRC, not kept): the tensor is returned only from a file
/// known to be intact.
inline Tensor load_safetensors_tensor(const std::string& path, const std::string& name, Device device = kCPU) {
  const char* op = "load_safetensors_tensor";
  uint64_t size = 0;
  std::ifstream f = detail::open_for_read(path, size, op);
  detail::SafetensorsHeader h = detail::read_safetensors_header(f, size, path, op);
  for (const auto& e : h.entries)
    if (e.name == name) {
      if (h.checksum) detail::crc_skip(f, h, 0, e.begin, path, op);
      Tensor t = detail::read_entry(f, h, e, path, op);
      if (h.checksum) {
        if (t.numel() > 0) h.crc.update(t.raw_data(), static_cast<size_t>(t.numel()) * t.element_size());
        detail::crc_skip(f, h, e.end, size - h.data_start, path, op);
        detail::check_crc(h, path, op);
      }
      detail::check_bool_bytes(t, e, path, op);
      return device.is_cuda() ? t.to(device) : t;
    }
  std::string names;
  for (size_t i = 0; i < h.entries.size() && i < 10; ++i) names += (i ? ", '" : "'") + h.entries[i].name + "'";
  if (h.entries.size() > 10) names += ", ...";
  EMBER_FAIL(op, ": '", path, "' has no tensor named '", name, "' (it has ", h.entries.size(), " tensor(s)",
             names.empty() ? std::string() : ": " + names, ")");
}

}  // namespace ember::io
