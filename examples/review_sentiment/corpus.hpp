#pragma once
// review_sentiment's reader of the review files: JSON lines or TSV, labels 0/1, bad lines reported
// with file:line (or skipped and counted). In its own header so the fuzz target
// tests/fuzz/fuzz_review_corpus.cpp reads files exactly as the program does.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/text/utf8.hpp"

namespace review_sentiment {

namespace fs = std::filesystem;
namespace text = ember::text;

/// One input file read and preprocessed: the texts (UTF-8, invalid bytes replaced), the labels
/// (0/1) and the tokens of each text.
struct Corpus {
  fs::path file;
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
  std::vector<std::vector<std::string>> tokens;
  int64_t skipped = 0;   // bad lines left out (--skip-bad-lines)
  int64_t repaired = 0;  // lines whose invalid UTF-8 was replaced by U+FFFD
};

/// A label field: 0 or 1 (an integer, or the string "0"/"1"); anything else is a message.
inline std::optional<int64_t> parse_label(const nlohmann::json& v, std::string& why) {
  if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) return v.get<int64_t>();
  if (v.is_number_float() && (v.get<double>() == 0.0 || v.get<double>() == 1.0)) return static_cast<int64_t>(v.get<double>());
  if (v.is_string() && (v.get<std::string>() == "0" || v.get<std::string>() == "1")) return v.get<std::string>() == "1";
  why = "label must be 0 or 1, got " + v.dump();
  return std::nullopt;
}

/// Reads a JSON-lines file ({"content": ..., "label": 0|1}, other fields ignored) or a TSV file
/// (label<TAB>text; a first line "label<TAB>..." is a header). Bad lines are errors naming
/// file:line, or skipped and counted with --skip-bad-lines. Blank lines are ignored.
inline Corpus read_corpus(const fs::path& file, bool skip_bad_lines) {
  EMBER_CHECK(fs::is_regular_file(file), "no data file '", file.string(), "'");
  std::ifstream in(file, std::ios::binary);
  EMBER_CHECK(in.good(), "cannot open '", file.string(), "'");
  const std::string ext = file.extension().string();
  bool tsv = ext == ".tsv" || ext == ".txt";
  Corpus c;
  c.file = file;
  std::string line, first_bad;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!text::utf8::is_valid(line)) {
      line = text::utf8::sanitize(line);
      ++c.repaired;
    }
    std::string why, content;
    std::optional<int64_t> label;
    if (tsv) {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos) {
        why = "expected label<TAB>text";
      } else {
        const std::string l = line.substr(0, tab);
        if (n == 1 && l == "label") continue;  // header
        label = parse_label(l == "0" || l == "1" ? nlohmann::json(l) : nlohmann::json(l), why);
        content = line.substr(tab + 1);
      }
    } else {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        why = std::string("malformed JSON (") + e.what() + ")";
      }
      if (why.empty()) {
        if (!j.is_object()) why = "expected a JSON object {\"content\": ..., \"label\": ...}";
        else if (!j.contains("label") || j["label"].is_null()) why = "no \"label\" field";
        else if (!j.contains("content") || !j["content"].is_string()) why = "no \"content\" string field";
        else {
          label = parse_label(j["label"], why);
          content = j["content"].get<std::string>();
        }
      }
    }
    if (!label) {
      const std::string msg = file.string() + ":" + std::to_string(n) + ": " + why;
      EMBER_CHECK(skip_bad_lines, msg, " (pass --skip-bad-lines to skip such lines)");
      if (c.skipped++ == 0) first_bad = msg;
      continue;
    }
    c.texts.push_back(std::move(content));
    c.labels.push_back(*label);
  }
  if (c.skipped) std::cerr << file.string() << ": skipped " << c.skipped << " bad line(s) (first: " << first_bad << ")\n";
  if (c.repaired) std::cerr << file.string() << ": " << c.repaired << " line(s) held invalid UTF-8, replaced by U+FFFD\n";
  return c;
}

}  // namespace review_sentiment
