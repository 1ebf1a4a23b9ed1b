#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "ember/core/parallel.hpp"
#include "ember/vision/reading_pieces.hpp"
#include "vision_data.hpp"

// vision::reading_pieces: the training crops of mnist_cnn's "not one digit" class. Synthetic
// pen-stroke digits stand in for MNIST, so the test runs without the data set.
namespace reading_pieces_test {

using ember::vision::GrayImage;
using ember::vision::kNotOneDigit;
using ember::vision::LabeledCrop;
using ember::vision::ReadingPiecesOptions;

struct Source {
  std::vector<vision_data::Digit> digits = vision_data::synthetic_digits(50, 3);
  std::pair<GrayImage, int> operator()(int64_t i) const {
    const auto& d = digits[static_cast<size_t>(i)];
    return {d.ink, d.label};
  }
};

static bool same(const std::vector<LabeledCrop>& a, const std::vector<LabeledCrop>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].label != b[i].label || a[i].image.data != b[i].image.data) return false;
  return true;
}

TEST_CASE("vision: reading_pieces gives framed digits and 'not one digit' pieces, deterministically") {
  Source src;
  const int n = static_cast<int>(src.digits.size());
  const int threads = ember::get_num_threads();
  ember::set_num_threads(1);
  auto one = ember::vision::reading_pieces(n, src, 120, 5);
  ember::set_num_threads(2);
  auto two = ember::vision::reading_pieces(n, src, 120, 5);
  ember::set_num_threads(threads);
  CHECK(same(one, two));  // independent of the number of threads
  CHECK_FALSE(same(one, ember::vision::reading_pieces(n, src, 120, 6)));
  std::set<int> labels;
  int rejects = 0;
  for (const auto& p : one) {
    REQUIRE(p.image.width == 28);
    REQUIRE(p.image.height == 28);
    CHECK(*std::min_element(p.image.data.begin(), p.image.data.end()) >= 0.f);
    CHECK(*std::max_element(p.image.data.begin(), p.image.data.end()) <= 1.f);
    CHECK(*std::max_element(p.image.data.begin(), p.image.data.end()) > 0.5f);  // framed ink, not blank
    labels.insert(p.label);
    rejects += p.label == kNotOneDigit;
  }
  // Up to 3 rejects and 2 digits per mark; most marks (pairs) give both kinds.
  CHECK(one.size() > 120);
  CHECK(one.size() <= 5 * 120);
  CHECK(rejects > static_cast<int>(one.size()) / 4);
  CHECK(rejects < static_cast<int>(one.size()) * 3 / 4);
  CHECK(labels.size() == 11);  // every digit and kNotOneDigit
}

TEST_CASE("vision: reading_pieces labels whole digits with their label and pieces as not one digit") {
  Source src;
  for (auto& d : src.digits) d.label = 3;  // whatever the shape, a whole digit keeps its label
  ReadingPiecesOptions only_digits;
  only_digits.pair_fraction = 0;
  only_digits.rejects_per_mark = 0;
  auto digits = ember::vision::reading_pieces(50, src, 60, 1, only_digits);
  REQUIRE(digits.size() >= 60);  // at least the whole digit of each mark
  for (const auto& p : digits) CHECK(p.label == 3);
  ReadingPiecesOptions only_rejects;
  only_rejects.digits_per_mark = 0;
  auto rejects = ember::vision::reading_pieces(50, src, 60, 1, only_rejects);
  REQUIRE(!rejects.empty());
  for (const auto& p : rejects) CHECK(p.label == kNotOneDigit);
}

TEST_CASE("vision: reading_pieces rejects bad input with a clear error") {
  Source src;
  CHECK_THROWS_WITH_AS(ember::vision::reading_pieces(0, src, 10, 1), doctest::Contains("no digits"), ember::Error);
  ReadingPiecesOptions bad;
  bad.min_height = 40, bad.max_height = 20;
  CHECK_THROWS_WITH_AS(ember::vision::reading_pieces(50, src, 10, 1, bad), doctest::Contains("heights"), ember::Error);
  auto bad_label = [&](int64_t i) { return std::pair<GrayImage, int>{src.digits[static_cast<size_t>(i)].ink, 12}; };
  CHECK_THROWS_WITH_AS(ember::vision::reading_pieces(50, bad_label, 10, 1), doctest::Contains("label 12"), ember::Error);
}

}  // namespace reading_pieces_test
