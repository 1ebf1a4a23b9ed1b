#pragma once
/// The bookkeeping every tutorial's `train` shares, so a run can be stopped anywhere (Ctrl-C, a
/// crash, --max-steps) and resumed to the same bits:
///   EpochStats / RunningStats   the epoch's running loss and accuracy (AverageMeter's arithmetic),
///                               saved as exact bits in mid-epoch checkpoints
///   TrainPosition               epochs done, batches done in the current epoch, optimizer steps
///   StepLog                     <out>/steps.csv: every step's loss exactly; on resume the lines past
///                               the checkpoint are dropped, so the file reads as one run
///   Diverged, all_finite        a non-finite loss or weights stop training before a save
///   resume_command              the command line that continues an interrupted run
///   position_json / read_position   TrainPosition <-> checkpoint metadata
///   read_trained_checkpoint,    the checkpoint eval/predict/generate read, and loading it into the
///   load_trained_weights        network, with errors that name the file and say how to make one
///   fixed, seconds_since        the numbers of the original tutorials' epoch lines
///   setup_device                --threads and --device as every program applies them
///   save_or_fail                a failed save reported the same way by every program
///
/// Example (the loop of examples/mnist_cnn and examples/catdog_cnn):
/// ```
///   ember::utils::TrainPosition pos;          // or read_position(meta) on --resume
///   ember::utils::StepLog steps(out / "steps.csv", resume ? pos.step : 0);
///   ...  pos.running.update(loss, acc, n); ++pos.batch; ++pos.step; steps.append(pos, loss, lr);
/// ```
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/core/parallel.hpp"
#include "ember/cuda/device.hpp"
#include "ember/io/checkpoint.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops/copy.hpp"

namespace ember::utils {

/// Mean loss and accuracy over an epoch (or a test set).
struct EpochStats {
  double loss = 0;
  double acc = 0;
};

/// The running sums of the epoch in progress.
struct RunningStats {
  double loss_sum = 0;  ///< sum of batch loss x batch size
  double acc_sum = 0;   ///< sum of batch accuracy x batch size
  int64_t count = 0;
  void update(double loss, double acc, int64_t n) {
    loss_sum += loss * static_cast<double>(n);
    acc_sum += acc * static_cast<double>(n);
    count += n;
  }
  EpochStats stats() const {
    if (count == 0) return {};
    return {loss_sum / static_cast<double>(count), acc_sum / static_cast<double>(count)};
  }
};

/// Where training stands; all of it goes into every checkpoint.
struct TrainPosition {
  int64_t epoch = 0;  ///< epochs completed
  int64_t batch = 0;  ///< batches done in epoch `epoch`
  int64_t step = 0;   ///< optimizer steps since the start of training
  RunningStats running;
};

/// `pos` as checkpoint metadata (the running sums as their bits: the epoch line printed after a
/// resume is the uninterrupted run's to the last digit).
inline nlohmann::json position_json(const TrainPosition& pos) {
  return {{"batch", pos.batch},
          {"loss_sum_bits", std::bit_cast<uint64_t>(pos.running.loss_sum)},
          {"acc_sum_bits", std::bit_cast<uint64_t>(pos.running.acc_sum)},
          {"count", pos.running.count}};
}

/// The batch and running sums of a checkpoint's "position" entry (epoch and step come from the
/// checkpoint itself). Missing entry: the start of the epoch.
inline void read_position(const nlohmann::json& meta, TrainPosition& pos) {
  if (!meta.is_object() || !meta.contains("position")) return;
  const auto& p = meta["position"];
  pos.batch = p.at("batch").get<int64_t>();
  pos.running.loss_sum = std::bit_cast<double>(p.at("loss_sum_bits").get<uint64_t>());
  pos.running.acc_sum = std::bit_cast<double>(p.at("acc_sum_bits").get<uint64_t>());
  pos.running.count = p.at("count").get<int64_t>();
}

/// Training produced NaN or Inf (in the loss, or in the weights about to be saved).
struct Diverged {
  std::string what;
};

/// Whether every parameter is finite (checked before a save, so a checkpoint never holds NaN).
inline bool all_finite(const nn::Module& net) {
  for (const Tensor& p : net.parameters())
    for (float v : p.detach().to(kFloat32).to_vector<float>())
      if (!std::isfinite(v)) return false;
  return true;
}

/// `s` quoted for a POSIX shell when it needs it.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./:,@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// The command line that continues a run: the same arguments without --resume/--checkpoint, plus
/// --resume (which reads <out>/last.safetensors, where the run just saved).
inline std::string resume_command(const std::vector<std::string>& argv) {
  std::string cmd;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--resume" || a.rfind("--checkpoint=", 0) == 0) continue;
    if (a == "--checkpoint") {
      ++i;
      continue;
    }
    cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
  }
  return cmd + " --resume";
}

/// The step log `<out>/steps.csv` (step, epoch, batch, loss, lr; the loss exactly, as %.9g of a
/// float). Lines past `keep_through_step` (written before a crash) are dropped.
class StepLog {
 public:
  StepLog(const std::filesystem::path& path, int64_t keep_through_step) : path_(path) {
    std::vector<std::string> kept;
    if (keep_through_step > 0 && std::filesystem::exists(path)) {
      std::ifstream in(path);
      std::string line;
      std::getline(in, line);  // header
      while (std::getline(in, line)) {
        const int64_t step = std::atoll(line.c_str());
        if (step >= 1 && step <= keep_through_step) kept.push_back(line);
      }
    }
    out_.open(path, std::ios::trunc);
    EMBER_CHECK(out_.good(), "StepLog: cannot write '", path.string(), "'");
    out_ << "step,epoch,batch,loss,lr\n";
    for (const auto& l : kept) out_ << l << '\n';
    out_.flush();
  }
  void append(const TrainPosition& pos, float loss, double lr) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%.9g,%.9g\n", static_cast<long long>(pos.step),
                  static_cast<long long>(pos.epoch + 1), static_cast<long long>(pos.batch), static_cast<double>(loss), lr);
    out_ << buf;
    out_.flush();  // what a crash leaves is complete up to the last step
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

/// `v` with `decimals` digits after the point, as the original tutorials print their metrics.
inline std::string fixed(double v, int decimals = 4) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(decimals) << v;
  return os.str();
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Applies the programs' `--threads N` (0: every core) and `--device cpu|cuda`; asking for CUDA
/// where there is none says why.
inline Device setup_device(int threads, const std::string& device) {
  set_num_threads(threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  if (device == "cpu") return kCPU;
  EMBER_CHECK(device == "cuda", "--device: expected cpu or cuda, got '", device, "'");
  EMBER_CHECK(cuda_is_available(), "--device cuda: no CUDA device available (this build ",
#ifdef EMBER_WITH_CUDA
              "has the CUDA backend, but found no GPU"
#else
              "has no CUDA backend; configure with the CUDA toolkit installed"
#endif
              ")");
  return kCUDA;
}

/// Runs `save`, which writes the checkpoint `path` atomically; a failure (disk full, permissions)
/// stops training with an error that says whether an earlier checkpoint survives there.
template <typename Save>
void save_or_fail(const std::filesystem::path& path, Save&& save) {
  try {
    save();
  } catch (const Error& e) {
    EMBER_FAIL("could not save the checkpoint (",
               std::filesystem::exists(path) ? "the previous '" + path.string() + "' is intact" : "no earlier one exists",
               "): ", e.what());
  }
}

/// A checkpoint written by a program's `train`, as its `eval`/`predict`/`generate` read it.
struct TrainedCheckpoint {
  std::filesystem::path path;
  io::Checkpoint ckpt;
  nlohmann::json meta;  // the parsed metadata; a discarded value when it is not JSON
};

/// Reads `checkpoint`, or `<out>/<file>` when none is given (the CLI convention: --checkpoint, else
/// the best checkpoint in --out). A missing file gives an error that says how to make one, with
/// `--out` repeated when it is not the program's default so that train writes where this looks.
inline TrainedCheckpoint read_trained_checkpoint(const std::string& program, const std::string& checkpoint,
                                                 const std::string& out, const std::string& default_out,
                                                 const std::string& file = "best.safetensors") {
  const std::filesystem::path path = checkpoint.empty() ? std::filesystem::path(out) / file : std::filesystem::path(checkpoint);
  EMBER_CHECK(std::filesystem::exists(path), "no checkpoint at '", path.string(), "': train first (", program, " train",
              checkpoint.empty() && out != default_out ? " --out " + out : std::string(), ") or pass --checkpoint FILE");
  TrainedCheckpoint c{path, io::read_checkpoint(path.string()), {}};
  c.meta = nlohmann::json::parse(c.ckpt.info.metadata, nullptr, /*allow_exceptions=*/false);
  return c;
}

/// Loads `sd` (names and shapes checked; the error names the file) into `net`, moves it to
/// `device` and puts it in eval mode.
inline void load_trained_weights(nn::Module& net, const nn::StateDict& sd, const std::filesystem::path& path,
                                 Device device) {
  try {
    net.load_state_dict(sd);
  } catch (const Error& e) {
    EMBER_FAIL("checkpoint '", path.string(), "': ", e.what());
  }
  net.to(device);
  net.eval();
}

}  // namespace ember::utils
