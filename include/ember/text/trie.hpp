#pragma once
/// Tries over code points shared by the segmenter and the OpenCC tables: `TrieEdges`, the
/// (parent node, code point) → child map of an open-addressing hash table, and `PrefixTrie`, a
/// trie with a value per node and longest-prefix matching. The root's children below U+10000
/// sit in a dense array, since every lookup starts there.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "ember/core/error.hpp"

namespace ember::text::detail {

/// The trie's edges (parent node, code point) → child node, open addressing with linear probing.
/// One 16-byte slot per edge keeps a lookup to one cache line; the table stays at most half full.
class TrieEdges {
 public:
  int32_t find(int32_t parent, char32_t cp) const {
    if (slots_.empty()) return -1;
    uint64_t k = key(parent, cp);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return s.child;
      if (s.key == kEmpty) return -1;
    }
  }
  void insert(int32_t parent, char32_t cp, int32_t child) {
    if ((size_ + 1) * 2 > slots_.size()) grow(std::max<size_t>(slots_.size() * 2, 1024));
    place(key(parent, cp), child);
    ++size_;
  }
  void reserve(size_t edges) {
    size_t want = 1024;
    while (want < edges * 2) want *= 2;
    if (want > slots_.size()) grow(want);
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    int32_t child;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t parent, char32_t cp) { return (static_cast<uint64_t>(parent) << 21) | cp; }
  size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }
  void place(uint64_t k, int32_t child) {
    size_t i = slot(k);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = {k, child};
  }
  void grow(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{kEmpty, -1});
    mask_ = capacity - 1;
    shift_ = 64 - std::countr_zero(capacity);
    for (const Slot& s : old)
      if (s.key != kEmpty) place(s.key, s.child);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

/// Keys are code point sequences, values int32 (>= 0); `longest_prefix` is what OpenCC's
/// `Dict::MatchPrefix` does: the longest key that is a prefix of the text.
class PrefixTrie {
 public:
  PrefixTrie() : root_(0x10000, -1), value_(1, -1) {}

  /// Sets the value of `key` (later insertions of the same key win).
  void insert(const char32_t* key, size_t n, int32_t value) {
    EMBER_CHECK(n > 0, "PrefixTrie: empty key");
    int32_t node = 0;
    for (size_t i = 0; i < n; ++i) {
      int32_t c = child(node, key[i]);
      if (c < 0) {
        c = static_cast<int32_t>(value_.size());
        value_.push_back(-1);
        if (node == 0 && key[i] < 0x10000) root_[key[i]] = c;
        else edges_.insert(node, key[i], c);
      }
      node = c;
    }
    value_[static_cast<size_t>(node)] = value;
  }
  /// The value and length (in code points) of the longest key that prefixes s[0, n), or
  /// {-1, 0} when none does.
  std::pair<int32_t, size_t> longest_prefix(const char32_t* s, size_t n) const {
    std::pair<int32_t, size_t> best{-1, 0};
    int32_t node = 0;
    for (size_t i = 0; i < n; ++i) {
      node = child(node, s[i]);
      if (node < 0) break;
      if (value_[static_cast<size_t>(node)] >= 0) best = {value_[static_cast<size_t>(node)], i + 1};
    }
    return best;
  }
  bool empty() const { return value_.size() == 1; }

 private:
  int32_t child(int32_t node, char32_t cp) const {
    if (node == 0 && cp < 0x10000) return root_[cp];
    return edges_.find(node, cp);
  }
  std::vector<int32_t> root_;
  TrieEdges edges_;
  std::vector<int32_t> value_;
};

}  // namespace ember::text::detail
