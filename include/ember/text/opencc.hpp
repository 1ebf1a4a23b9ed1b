#pragma once
/// text::OpenCC: Traditional ↔ Simplified Chinese conversion through libopencc's C API
/// (Debian `libopencc-dev` for the library, `opencc` for the tables under /usr/share/opencc).
/// The tutorial uses the `t2s.json` configuration (Traditional → Simplified, phrases first,
/// then characters: 電影 → 电影, 這部 → 这部).
///
/// Built only with `EMBER_HAVE_OPENCC` defined and libopencc linked (CMake: `ember::opencc`;
/// by hand: `$(pkg-config --cflags --libs opencc) -DEMBER_HAVE_OPENCC`). Without it the class
/// still compiles, `opencc_available()` is false and the constructor throws an ember::Error
/// saying how to get it, so a program can offer `--t2s` and fail clearly.
///
/// Threads: one converter may be shared by several threads. libopencc documents its C API as
/// thread-safe except `opencc_error()` (a process-wide last-error string), and conversion only
/// reads the dictionaries (every `Convert` on the path is `const`); Ember reads that string
/// only when opening fails. tests/test_text.cpp converts from several threads at once and
/// compares with the single-threaded result.
///
/// Speed: libopencc's own conversion walks marisa tries per character and needs ~3 s for the
/// 64.5k Douban reviews (8 MB), more than the rest of the pipeline. So by default
/// (`OpenCCBackend::kTables`) Ember reads the configuration's dictionaries *through libopencc*
/// (its C++ API: the segmentation dictionary and each conversion's dictionary group, as
/// lexicons) into code-point tries and runs OpenCC's algorithm itself: maximal-match
/// segmentation with the segmentation dictionary, merging unmatched characters into one
/// segment, then for each conversion of the chain and each segment, at each position the first
/// dictionary of the group with a match gives its longest key's first value, else the character
/// is copied. scripts/jieba_parity.py --opencc compares the two backends on every review and
/// its s2t round trip. `OpenCCBackend::kLibrary` calls `opencc_convert_utf8` instead (and is
/// used automatically for a configuration whose segmentation is not OpenCC's "mmseg").
///
/// Input that is not valid UTF-8 is sanitised first (ill-formed bytes → U+FFFD, see
/// utf8.hpp), since libopencc assumes well-formed UTF-8; NUL bytes are kept (libopencc would
/// stop at the first one).
///
/// Example:
/// ```
///   ember::text::OpenCC t2s;                       // "t2s.json"
///   std::string s = t2s.convert("這部電影太好看了");  // "这部电影太好看了"
/// ```
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/text/trie.hpp"
#include "ember/text/utf8.hpp"

#ifdef EMBER_HAVE_OPENCC
#include <opencc/Config.hpp>
#include <opencc/Conversion.hpp>
#include <opencc/ConversionChain.hpp>
#include <opencc/Converter.hpp>
#include <opencc/Dict.hpp>
#include <opencc/DictEntry.hpp>
#include <opencc/DictGroup.hpp>
#include <opencc/Lexicon.hpp>
#include <opencc/MaxMatchSegmentation.hpp>
#include <opencc/opencc.h>
#endif

namespace ember::text {

/// Whether this build of Ember can convert with OpenCC.
constexpr bool opencc_available() {
#ifdef EMBER_HAVE_OPENCC
  return true;
#else
  return false;
#endif
}

enum class OpenCCBackend {
  kTables,   ///< libopencc's dictionaries, Ember's conversion loop (fast; the default)
  kLibrary,  ///< libopencc's opencc_convert_utf8 (the reference)
};

class OpenCC {
 public:
  /// Opens a configuration: a name looked up in OpenCC's data directory (`t2s.json`, `s2t.json`,
  /// `tw2s.json`, …) or a path to a JSON configuration.
  explicit OpenCC(const std::string& config = "t2s.json", OpenCCBackend backend = OpenCCBackend::kTables)
      : config_(config) {
#ifdef EMBER_HAVE_OPENCC
    opencc_t h = opencc_open(config.c_str());
    if (h == reinterpret_cast<opencc_t>(-1) || h == nullptr) {
      const char* why = opencc_error();
      EMBER_FAIL("OpenCC: cannot open configuration '", config, "': ", why ? why : "unknown error",
                 " (the conversion tables come with Debian's opencc package: apt-get install opencc; "
                 "or pass the path of a configuration JSON)");
    }
    handle_ = std::shared_ptr<void>(h, [](void* p) { opencc_close(p); });
    if (backend == OpenCCBackend::kTables) tables_ = load_tables(config);
#else
    (void)backend;
    EMBER_FAIL("OpenCC: Ember was built without OpenCC, cannot open '", config,
               "' (apt-get install libopencc-dev opencc, then build with EMBER_HAVE_OPENCC defined and "
               "libopencc linked: CMake target ember::opencc, or `pkg-config --cflags --libs opencc`)");
#endif
  }

  /// The converted text. Empty in, empty out.
  std::string convert(std::string_view text) const {
    if (text.empty()) return {};
    if (!utf8::is_valid(text)) return convert_valid(utf8::sanitize(text));
    return convert_valid(text);
  }
  std::string operator()(std::string_view text) const { return convert(text); }

  const std::string& config() const { return config_; }
  /// The backend in use (kLibrary when the configuration cannot be read as tables).
  OpenCCBackend backend() const { return tables_ ? OpenCCBackend::kTables : OpenCCBackend::kLibrary; }

 private:
  // A dictionary group: OpenCC's DictGroup::MatchPrefix takes the first dictionary with a match.
  struct Group {
    std::vector<detail::PrefixTrie> dicts;
    std::pair<int32_t, size_t> match(const char32_t* s, size_t n) const {
      for (const auto& d : dicts) {
        auto m = d.longest_prefix(s, n);
        if (m.first >= 0) return m;
      }
      return {-1, 0};
    }
  };
  struct Tables {
    Group segmentation;
    std::vector<Group> chain;
    std::vector<std::string> values;  // the first value of every entry, indexed by the tries' values
  };

#ifdef EMBER_HAVE_OPENCC
  static void add_dict(const opencc::DictPtr& dict, Group& group, std::vector<std::string>& values) {
    if (auto g = std::dynamic_pointer_cast<opencc::DictGroup>(dict)) {
      for (const auto& d : g->GetDicts()) add_dict(d, group, values);
      return;
    }
    detail::PrefixTrie trie;
    for (const auto& entry : *dict->GetLexicon()) {
      std::u32string key = utf8::decode(entry->Key());
      if (key.empty()) continue;
      trie.insert(key.data(), key.size(), static_cast<int32_t>(values.size()));
      values.push_back(entry->GetDefault());
    }
    group.dicts.push_back(std::move(trie));
  }
  static std::shared_ptr<const Tables> load_tables(const std::string& config) {
    try {
      opencc::Config cfg;
      opencc::ConverterPtr conv = cfg.NewFromFile(config);
      auto seg = std::dynamic_pointer_cast<opencc::MaxMatchSegmentation>(conv->GetSegmentation());
      if (!seg) return nullptr;  // another segmentation: leave it to the library
      auto t = std::make_shared<Tables>();
      add_dict(seg->GetDict(), t->segmentation, t->values);
      for (const auto& c : conv->GetConversionChain()->GetConversions()) {
        t->chain.emplace_back();
        add_dict(c->GetDict(), t->chain.back(), t->values);
      }
      return t;
    } catch (const std::exception&) {
      return nullptr;  // the C API opened it: fall back to the library's own conversion
    }
  }
#endif

  // One conversion of the chain over the segment s[0, n).
  void convert_segment(const Group& g, const char32_t* s, size_t n, std::string& out) const {
    for (size_t i = 0; i < n;) {
      auto [v, len] = g.match(s + i, n - i);
      if (v >= 0) {
        out += tables_->values[static_cast<size_t>(v)];
        i += len;
      } else {
        utf8::append(out, s[i]);
        ++i;
      }
    }
  }

  std::string convert_tables(std::string_view text) const {
    std::u32string cps = utf8::decode(text);
    const size_t n = cps.size();
    // Maximal-match segmentation; characters without a match are gathered into one segment.
    std::vector<std::pair<size_t, size_t>> segs;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
      auto [v, len] = tables_->segmentation.match(cps.data() + i, n - i);
      if (v >= 0) {
        if (i > run) segs.emplace_back(run, i);
        segs.emplace_back(i, i + len);
        i += len;
        run = i;
      } else {
        ++i;
      }
    }
    if (n > run) segs.emplace_back(run, n);
    std::string out;
    out.reserve(text.size());
    if (tables_->chain.size() == 1) {
      for (auto [b, e] : segs) convert_segment(tables_->chain[0], cps.data() + b, e - b, out);
      return out;
    }
    // Several conversions: each works on the previous one's output, segment by segment.
    std::vector<std::u32string> pieces;
    for (auto [b, e] : segs) pieces.emplace_back(cps.data() + b, e - b);
    for (const Group& g : tables_->chain) {
      for (auto& p : pieces) {
        std::string conv;
        convert_segment(g, p.data(), p.size(), conv);
        p = utf8::decode(conv);
      }
    }
    for (const auto& p : pieces) out += utf8::encode(p);
    return out;
  }

  std::string convert_valid(std::string_view text) const {
    if (tables_) return convert_tables(text);
    std::string out;
    out.reserve(text.size());
    // libopencc reads C strings: convert the NUL-free pieces and keep the NULs between them.
    size_t begin = 0;
    while (true) {
      size_t nul = text.find('\0', begin);
      std::string_view piece = text.substr(begin, nul == std::string_view::npos ? std::string_view::npos : nul - begin);
      if (!piece.empty()) convert_piece(piece, out);
      if (nul == std::string_view::npos) break;
      out.push_back('\0');
      begin = nul + 1;
    }
    return out;
  }

  void convert_piece(std::string_view piece, std::string& out) const {
#ifdef EMBER_HAVE_OPENCC
    char* converted = opencc_convert_utf8(handle_.get(), piece.data(), piece.size());
    EMBER_CHECK(converted != nullptr, "OpenCC: converting a ", piece.size(), "-byte text with '", config_,
                "' failed");
    out.append(converted);
    opencc_convert_utf8_free(converted);
#else
    (void)piece;
    (void)out;
#endif
  }

  std::string config_;
  std::shared_ptr<void> handle_;  // opencc_t; shared so copies of the converter stay cheap
  std::shared_ptr<const Tables> tables_;
};

}  // namespace ember::text
