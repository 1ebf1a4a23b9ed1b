#pragma once
/// Training checkpoints: the model's state_dict, the optimizer's and the LR scheduler's state, the
/// default generator's RNG state (so dropout masks and shuffles continue the same stream), the
/// epoch/step counters and free-form JSON metadata (metrics history, the command line) in ONE
/// safetensors file, written atomically: a crash while saving leaves the previous checkpoint intact.
///
/// Layout: tensors under "model.<name>", "optim.<key>", "sched.<key>"; "__metadata__" holds
///   format = "ember.checkpoint", format_version = "2", epoch, step, rng_seed, rng_offset (decimal),
///   has_optimizer / has_scheduler ("0"/"1"), metadata (the JSON text) and the file's CRC-32C
///   (io/safetensors.hpp). Version 2 differs from 1 only in requiring the checksum, so a checkpoint
///   whose checksum entry itself was damaged is refused too; version 1 files still load.
/// Any safetensors reader can open it; `load_safetensors` + the "model." prefix gives the weights.
///
/// Example (resume with `--resume`):
/// ```
///   ember::io::CheckpointInfo info;
///   if (resume) info = ember::io::load_checkpoint("ckpt.safetensors", *net, opt, sched);
///   for (int64_t epoch = info.epoch; epoch < epochs; ++epoch) {
///     train_one_epoch(); sched.step();
///     ember::io::save_checkpoint("ckpt.safetensors", *net, opt, sched, {.epoch = epoch + 1, .step = step});
///   }
/// ```
/// Restoring gives bit-identical training only if the data order is restored too: a DataLoader
/// seeded per epoch (seed + epoch) does that by itself.
#include <algorithm>
#include <concepts>
#include <functional>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ember/core/generator.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/nn/module.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::io {

/// Where training stands, plus free-form JSON (must be valid JSON; "{}" when there is nothing).
struct CheckpointInfo {
  int64_t epoch = 0;
  int64_t step = 0;
  std::string metadata = "{}";
};

/// The whole content of a checkpoint file, as plain data.
struct Checkpoint {
  nn::StateDict model;
  std::optional<nn::StateDict> optimizer;
  std::optional<nn::StateDict> scheduler;
  std::optional<Generator::State> rng;
  CheckpointInfo info;
};

/// A scheduler is anything with state_dict()/load_state_dict(StateDict) (optim::LRScheduler,
/// optim::ReduceLROnPlateau).
template <typename S>
concept CheckpointableScheduler = requires(S& s, const nn::StateDict& sd) {
  { std::as_const(s).state_dict() } -> std::convertible_to<nn::StateDict>;
  s.load_state_dict(sd);
};

inline constexpr const char* kCheckpointFormat = "ember.checkpoint";
inline constexpr const char* kCheckpointVersion = "2";

namespace detail {
inline uint64_t parse_u64(const Metadata& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  EMBER_CHECK(it != m.end(), "load_checkpoint: '", path, "': metadata has no '", key, "'");
  const std::string& s = it->second;
  bool digits = !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  EMBER_CHECK(digits, "load_checkpoint: '", path, "': metadata '", key, "' = '", s, "' is not a non-negative integer");
  try {
    return std::stoull(s);
  } catch (const std::exception&) {
    EMBER_FAIL("load_checkpoint: '", path, "': metadata '", key, "' = '", s, "' is out of range");
  }
}
inline int64_t parse_i64(const Metadata& m, const std::string& key, const std::string& path) {
  uint64_t v = parse_u64(m, key, path);
  EMBER_CHECK(v <= static_cast<uint64_t>(INT64_MAX), "load_checkpoint: '", path, "': metadata '", key, "' is out of range");
  return static_cast<int64_t>(v);
}
}  // namespace detail

/// Writes `ckpt` to `path` atomically (see the header comment for the layout).
inline void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  const char* op = "save_checkpoint";
  EMBER_CHECK(ckpt.info.epoch >= 0 && ckpt.info.step >= 0, op, ": '", path, "': epoch and step must be non-negative, got ",
              ckpt.info.epoch, " and ", ckpt.info.step);
  EMBER_CHECK(nlohmann::json::accept(ckpt.info.metadata), op, ": '", path,
              "': metadata must be valid JSON text (use \"{}\" for none), got '", ckpt.info.metadata, "'");
  nn::StateDict all;
  auto add = [&](const std::string& prefix, const nn::StateDict& sd) {
    for (const auto& [k, t] : sd) all.insert(prefix + k, t);
  };
  add("model.", ckpt.model);
  if (ckpt.optimizer) add("optim.", *ckpt.optimizer);
  if (ckpt.scheduler) add("sched.", *ckpt.scheduler);
  Metadata meta{{"format", kCheckpointFormat},
                {"format_version", kCheckpointVersion},
                {"epoch", std::to_string(ckpt.info.epoch)},
                {"step", std::to_string(ckpt.info.step)},
                {"has_optimizer", ckpt.optimizer ? "1" : "0"},
                {"has_scheduler", ckpt.scheduler ? "1" : "0"},
                {"metadata", ckpt.info.metadata}};
  if (ckpt.rng) {
    meta["rng_seed"] = std::to_string(ckpt.rng->seed);
    meta["rng_offset"] = std::to_string(ckpt.rng->offset);
  }
  save_safetensors(path, all, meta);
}

/// Reads a checkpoint written by save_checkpoint (validating the file and its format marker).
inline Checkpoint read_checkpoint(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  const Metadata& m = f.metadata;
  auto fmt = m.find("format");
  EMBER_CHECK(fmt != m.end() && fmt->second == kCheckpointFormat, "load_checkpoint: '", path,
              "' is a safetensors file but not an Ember checkpoint (no format = \"", kCheckpointFormat,
              "\" in its metadata); use io::load_safetensors for plain weights");
  auto ver = m.find("format_version");
  EMBER_CHECK(ver != m.end() && (ver->second == "1" || ver->second == "2"), "load_checkpoint: '", path,
              "': unsupported checkpoint format_version '", ver == m.end() ? std::string("(none)") : ver->second,
              "' (this Ember reads versions 1 and 2)");
  EMBER_CHECK(ver->second == "1" || f.checksum, "load_checkpoint: '", path, "': the checkpoint has no '", kChecksumKey,
              "' entry, which format_version 2 requires: the header is corrupt");
  Checkpoint c;
  c.info.epoch = detail::parse_i64(m, "epoch", path);
  c.info.step = detail::parse_i64(m, "step", path);
  auto meta = m.find("metadata");
  c.info.metadata = meta == m.end() ? "{}" : meta->second;
  if (m.count("rng_seed") || m.count("rng_offset"))
    c.rng = Generator::State{detail::parse_u64(m, "rng_seed", path), detail::parse_u64(m, "rng_offset", path)};
  auto flag = [&](const char* k) { auto it = m.find(k); return it != m.end() && it->second == "1"; };
  if (flag("has_optimizer")) c.optimizer.emplace();
  if (flag("has_scheduler")) c.scheduler.emplace();
  for (const auto& [k, t] : f.tensors) {
    if (k.rfind("model.", 0) == 0) c.model.insert(k.substr(6), t);
    else if (k.rfind("optim.", 0) == 0 && c.optimizer) c.optimizer->insert(k.substr(6), t);
    else if (k.rfind("sched.", 0) == 0 && c.scheduler) c.scheduler->insert(k.substr(6), t);
    else EMBER_FAIL("load_checkpoint: '", path, "': unexpected tensor '", k, "' (expected the prefixes model., optim., sched.)");
  }
  return c;
}

/// Saves model (+ optimizer, + scheduler) state, the default generator's RNG state and `info`.
inline void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                            const CheckpointInfo& info = {}) {
  Checkpoint c;
  c.model = model.state_dict();
  c.optimizer = optimizer.state_dict();
  c.rng = default_generator().get_state();
  c.info = info;
  save_checkpoint(path, c);
}
template <CheckpointableScheduler Scheduler>
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                     const Scheduler& scheduler, const CheckpointInfo& info = {}) {
  Checkpoint c;
  c.model = model.state_dict();
  c.optimizer = optimizer.state_dict();
  c.scheduler = scheduler.state_dict();
  c.rng = default_generator().get_state();
  c.info = info;
  save_checkpoint(path, c);
}

namespace detail {
inline CheckpointInfo restore_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                                         const std::function<void(const nn::StateDict&)>& load_scheduler) {
  Checkpoint c = read_checkpoint(path);
  EMBER_CHECK(!optimizer || c.optimizer, "load_checkpoint: '", path,
              "' holds no optimizer state (it was saved without an optimizer)");
  EMBER_CHECK(!load_scheduler || c.scheduler, "load_checkpoint: '", path,
              "' holds no scheduler state (it was saved without a scheduler)");
  // Model first: its load validates every key and shape before copying, and a mismatch there is
  // the likely mistake (a different --model), so nothing else is touched in that case.
  try {
    model.load_state_dict(c.model);
  } catch (const Error& e) {
    EMBER_FAIL("load_checkpoint: '", path, "': ", e.what());
  }
  try {
    if (optimizer) optimizer->load_state_dict(*c.optimizer);
    if (load_scheduler) load_scheduler(*c.scheduler);
  } catch (const Error& e) {
    EMBER_FAIL("load_checkpoint: '", path, "': ", e.what());
  }
  if (c.rng) default_generator().set_state(*c.rng);
  return c.info;
}
}  // namespace detail

/// Restores the model's parameters and buffers (strictly: every key and shape must match) and the
/// default generator's RNG state; returns epoch, step and metadata. Optimizer state in the file is
/// ignored: this is the overload for evaluation and prediction.
inline CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model) {
  return detail::restore_checkpoint(path, model, nullptr, nullptr);
}
/// Also restores the optimizer (options such as lr, and per-parameter state).
inline CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer) {
  return detail::restore_checkpoint(path, model, &optimizer, nullptr);
}
/// Also restores the scheduler's position, so training resumes exactly where it stopped.
template <CheckpointableScheduler Scheduler>
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
                               Scheduler& scheduler) {
  return detail::restore_checkpoint(path, model, &optimizer,
                                    [&scheduler](const nn::StateDict& sd) { scheduler.load_state_dict(sd); });
}

}  // namespace ember::io
