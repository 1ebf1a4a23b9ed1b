// cgan_mnist: the fourth Ember tutorial. A conditional Wasserstein GAN with gradient penalty
// (WGAN-GP) and spectral normalisation that draws the MNIST digit you ask for.
//
//   cgan_mnist train                              # the original recipe: 25 epochs, batch 128, n_critic 5
//   cgan_mnist train --resume                     # continue exactly where the last run stopped (Ctrl-C saves)
//   cgan_mnist generate --digit 7 --count 64 -o sevens.png
//   cgan_mnist generate --number 2026 -o 2026.png # a handwritten-looking number; `mnist_cnn read 2026.png`
//   cgan_mnist evaluate --classifier runs/mnist_cnn/best.safetensors
//
// Read it top to bottom: the constants, the two networks, the gradient penalty, the training step
// and the test losses, then one function per subcommand and main(). The critic's loss
// differentiates the norm of a gradient (autograd::grad with create_graph), so every layer of the
// critic runs a double backward.
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Eigenvalues>
#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "ember/cuda/device.hpp"
#include "ember/data/data.hpp"
#include "ember/io/io.hpp"
#include "ember/nn/batchnorm.hpp"
#include "ember/nn/spectral_norm.hpp"
#include "ember/utils/image_grid.hpp"
#include "ember/utils/plot.hpp"
#include "ember/utils/training.hpp"
#include "ember/utils/utils.hpp"
#include "ember/vision/vision.hpp"

#include "models.hpp"
#include "../mnist_cnn/models.hpp"  // tutorial 1's classifier, which `evaluate` measures with

namespace fs = std::filesystem;
using namespace ember;
using utils::fixed;
using utils::seconds_since;

// ---- constants ---------------------------------------------------------------------------------

constexpr const char* kProgram = "cgan_mnist";
constexpr const char* kDefaultOut = "runs/cgan_mnist";
constexpr const char* kDefaultClassifier = "runs/mnist_cnn/best.safetensors";
constexpr int64_t kEpochs = 25;
constexpr int64_t kBatchSize = 128;
constexpr int64_t kTestBatchSize = 500;
constexpr int64_t kNCritic = 5;        // a generator step every 5th batch
constexpr double kGpWeight = 10.0;     // lambda of the gradient penalty
constexpr double kLrG = 1e-4, kLrD = 2e-4;
constexpr double kBeta1 = 0.5, kBeta2 = 0.999;
constexpr double kPlateauFactor = 0.5;
constexpr int64_t kPlateauPatience = 5;
constexpr uint64_t kSeed = 1;
constexpr int kExitDiverged = 3;  // a loss (or the weights) became NaN/Inf

// ---- the networks (models.hpp) ----------------------------------------------------------------

using cgan_mnist::CGAN;
using cgan_mnist::Critic;
using cgan_mnist::DigitGenerator;
using cgan_mnist::kClasses;
using cgan_mnist::kNoise;
using cgan_mnist::weights_init;

// ---- random streams ----------------------------------------------------------------------------

/// Runs its scope on the default generator seeded with `seed`, then puts the training stream back:
/// the fixed noise of the sample grids and the test losses' noise must neither depend on nor
/// disturb where training stands (a resumed run stays bit-identical).
class SeededScope {
 public:
  explicit SeededScope(uint64_t seed) : saved_(default_generator().get_state()) { manual_seed(seed); }
  ~SeededScope() { default_generator().set_state(saved_); }
  SeededScope(const SeededScope&) = delete;
  SeededScope& operator=(const SeededScope&) = delete;

 private:
  ember::Generator::State saved_;
};

/// Labels 0,0,...,1,1,... : `per_digit` of each digit in `digits`.
Tensor labels_for(const std::vector<int64_t>& digits, int64_t per_digit, Device device) {
  std::vector<int64_t> y;
  for (int64_t d : digits)
    for (int64_t i = 0; i < per_digit; ++i) y.push_back(d);
  return tensor<int64_t>(y, Shape{static_cast<int64_t>(y.size())}).to(device);
}

/// `n` images of the digits `y` from the generator in eval mode (BatchNorm's running statistics),
/// in batches, on the CPU, in [-1, 1].
Tensor generate_images(DigitGenerator& G, const Tensor& y, Device device, int64_t batch = kTestBatchSize) {
  NoGradGuard no_grad;
  G.eval();
  tensor_list parts;
  const int64_t n = y.size(0);
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t m = std::min(batch, n - i);
    Tensor z = randn({m, kNoise}).to(device);
    parts.push_back(G.forward(z, y.narrow(0, i, m).to(device)).to(kCPU));
  }
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

// ---- the gradient penalty and one training step ------------------------------------------------

struct Penalty {
  Tensor gp;         // mean((||grad_x D(x_hat)||_2 - 1)^2)
  double grad_norm;  // mean ||grad_x D(x_hat)||_2: WGAN-GP keeps it near 1
};

/// WGAN-GP's penalty at x_hat = alpha*real + (1-alpha)*fake, alpha ~ U(0, 1) per sample. With
/// `create_graph` the penalty is differentiable in D's parameters (training); without, it is a value.
Penalty gradient_penalty(Critic& D, const Tensor& real, const Tensor& fake, const Tensor& y, bool create_graph) {
  Tensor alpha = rand({real.size(0), 1, 1, 1}).to(real.device());
  Tensor x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_(true);
  Tensor d = D.forward(x_hat, y);
  Tensor g = autograd::grad({d}, {x_hat}, {ones_like(d)}, /*retain_graph=*/create_graph, create_graph)[0];
  Tensor n = norm(g.view({g.size(0), -1}), 2, {1});
  Tensor gp = mean(pow(n - 1.0, 2));
  return {create_graph ? gp : gp.detach(), mean(n.detach()).item<double>()};
}

/// The losses of an epoch so far (D over every batch, G over its steps, as the original averages
/// them), saved as exact bits in mid-epoch checkpoints.
struct LossSums {
  double d = 0, g = 0;
  int64_t nd = 0, ng = 0;
  double mean_d() const { return nd ? d / static_cast<double>(nd) : std::nan(""); }
  double mean_g() const { return ng ? g / static_cast<double>(ng) : std::nan(""); }
  nlohmann::json to_json() const {
    return {{"d_bits", std::bit_cast<uint64_t>(d)}, {"g_bits", std::bit_cast<uint64_t>(g)}, {"nd", nd}, {"ng", ng}};
  }
  static LossSums from_json(const nlohmann::json& j) {
    return {std::bit_cast<double>(j.at("d_bits").get<uint64_t>()), std::bit_cast<double>(j.at("g_bits").get<uint64_t>()),
            j.at("nd").get<int64_t>(), j.at("ng").get<int64_t>()};
  }
};

/// What one batch did.
struct StepResult {
  double d_loss;
  std::optional<double> g_loss;  // on the batches with a generator step
  double grad_norm;
};

/// One batch of the recipe: a critic step with
/// d_loss = -mean(D(real)) + mean(D(fake)) + 10 * GP, and on every n_critic-th batch a generator step
/// with g_loss = -mean(D(G(z', y))). Throws utils::Diverged, before the update, on a non-finite loss.
StepResult train_step(CGAN& gan, optim::Optimizer& opt_g, optim::Optimizer& opt_d, const Tensor& real, const Tensor& y,
                      bool generator_step, const utils::TrainPosition& pos) {
  DigitGenerator& G = *gan.G;
  Critic& D = *gan.D;
  auto check = [&](double v, const char* what) {
    if (!std::isfinite(v))
      throw utils::Diverged{std::string(what) + " is " + std::to_string(v) + " at step " + std::to_string(pos.step + 1) +
                            " (epoch " + std::to_string(pos.epoch + 1) + ", batch " + std::to_string(pos.batch + 1) + ")"};
  };
  const int64_t n = real.size(0);
  Tensor fake;
  {
    NoGradGuard no_grad;
    fake = G.forward(randn({n, kNoise}).to(real.device()), y);
  }
  Tensor d_real = D.forward(real, y).mean(), d_fake = D.forward(fake, y).mean();
  Penalty p = gradient_penalty(D, real, fake, y, /*create_graph=*/true);
  Tensor d_loss = d_fake - d_real + p.gp * kGpWeight;
  StepResult r{d_loss.item<double>(), std::nullopt, p.grad_norm};
  check(r.d_loss, "the critic loss");
  opt_d.zero_grad();
  d_loss.backward();
  opt_d.step();
  if (generator_step) {
    Tensor g_loss = -D.forward(G.forward(randn({n, kNoise}).to(real.device()), y), y).mean();
    r.g_loss = g_loss.item<double>();
    check(*r.g_loss, "the generator loss");
    opt_g.zero_grad();
    g_loss.backward();  // also fills D's .grad, which the next critic step zeroes first
    opt_g.step();
  }
  return r;
}

/// Test_loss_G and Test_loss_D on a data set: both networks in eval mode (no dropout, BatchNorm's
/// running statistics, no power iteration), no updates, noise and alphas from a stream seeded by
/// `seed`. Test_loss_D includes 10 * GP (its input gradient comes from autograd; parameters get none).
std::pair<double, double> test_losses(CGAN& gan, data::DataLoader& loader, Device device, uint64_t seed) {
  SeededScope stream(seed);
  gan.eval();
  double lg = 0, ld = 0;
  int64_t count = 0;
  for (auto& batch : loader) {
    Tensor real = batch.data.to(device), y = batch.target.to(device);
    const int64_t n = real.size(0);
    Tensor fake, d_real, d_fake;
    {
      NoGradGuard no_grad;
      fake = gan.G->forward(randn({n, kNoise}).to(device), y);
      d_fake = gan.D->forward(fake, y).mean();
      d_real = gan.D->forward(real, y).mean();
    }
    Penalty p = gradient_penalty(*gan.D, real, fake, y, /*create_graph=*/false);
    lg += -d_fake.item<double>() * static_cast<double>(n);
    ld += (d_fake - d_real + p.gp * kGpWeight).item<double>() * static_cast<double>(n);
    count += n;
  }
  gan.train();
  if (count == 0) return {std::nan(""), std::nan("")};
  return {lg / static_cast<double>(count), ld / static_cast<double>(count)};
}

/// The 10 x 10 grid of the fixed noise: row = digit (0 at the top), white padding.
void save_samples(DigitGenerator& G, const fs::path& png, uint64_t noise_seed, Device device) {
  Tensor y = labels_for({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10, device), images;
  {
    SeededScope stream(noise_seed);
    images = generate_images(G, y, device);
  }
  G.train();
  utils::GridOptions o;
  o.nrow = 10;
  o.pad_value = 1.0;
  o.value_range = {{-1.0, 1.0}};
  utils::save_image_grid(png, images, o);
}

// ---- shared command-line plumbing --------------------------------------------------------------

struct CommonOptions {
  std::string data;
  std::string out = kDefaultOut;
  std::string checkpoint;
  int threads = 0;
  std::string device = "cpu";
};

Device setup(const CommonOptions& o) { return utils::setup_device(o.threads, o.device); }

fs::path data_dir(const CommonOptions& o) { return data::find_data_dir(o.data, "mnist"); }

/// MNIST scaled to [-1, 1] (ToTensor, then Normalize((0.5,), (0.5,))).
data::DatasetPtr mnist_split(const fs::path& dir, bool train) {
  auto raw = std::make_shared<data::MNIST>(dir.string(), train);
  return std::make_shared<data::MapDataset>(raw, data::Compose({data::Normalize(0.5, 0.5)}), data::Apply::kPerBatch);
}

/// The checkpoint's metadata, refusing files that are not cgan_mnist checkpoints with a message
/// that says what they are.
nlohmann::json cgan_metadata(const io::Checkpoint& ckpt, const fs::path& path) {
  nlohmann::json meta = nlohmann::json::parse(ckpt.info.metadata, nullptr, /*allow_exceptions=*/false);
  if (meta.is_object() && meta.value("program", std::string()) == kProgram) return meta;
  std::string what = "it holds no cgan_mnist metadata";
  if (meta.is_object() && meta.contains("model") && meta["model"].is_string())
    what = "it is a checkpoint of another program's model '" + meta["model"].get<std::string>() +
           "' (mnist_cnn or catdog_cnn?)";
  EMBER_FAIL("checkpoint '", path.string(), "' was not written by cgan_mnist train: ", what);
}

/// Prefixes every key of `sd` (two optimizers and two schedulers share one checkpoint).
void add_prefixed(nn::StateDict& into, const std::string& prefix, const nn::StateDict& sd) {
  for (const auto& [k, t] : sd) into.insert(prefix + k, t);
}
/// The entries of `sd` under `prefix`, with the prefix removed.
nn::StateDict take_prefixed(const nn::StateDict& sd, const std::string& prefix) {
  nn::StateDict out;
  for (const auto& [k, t] : sd)
    if (k.rfind(prefix, 0) == 0) out.insert(k.substr(prefix.size()), t);
  return out;
}

/// The generator and critic of a checkpoint, for generate/evaluate.
struct LoadedGan {
  std::shared_ptr<CGAN> gan;
  nlohmann::json meta;
  fs::path path;
  int64_t epoch = 0, step = 0;  // where training stood when it was saved
};

LoadedGan load_gan(const CommonOptions& o, Device device) {
  utils::TrainedCheckpoint c = utils::read_trained_checkpoint("cgan_mnist", o.checkpoint, o.out, kDefaultOut, "last.safetensors");
  LoadedGan m{std::make_shared<CGAN>(), cgan_metadata(c.ckpt, c.path), c.path, c.ckpt.info.epoch, c.ckpt.info.step};
  utils::load_trained_weights(*m.gan, c.ckpt.model, c.path, device);
  return m;
}

// ---- train -------------------------------------------------------------------------------------

struct TrainOptions {
  int64_t epochs = kEpochs;
  int64_t batch_size = kBatchSize;
  std::optional<double> lr, lr_g, lr_d;  // --lr: the critic's, the generator's half of it (the original's ratio)
  uint64_t seed = kSeed;
  int workers = 1;
  bool resume = false;
  int64_t save_every = 0;  // critic steps; 0: only at the end of each epoch
  int64_t max_steps = 0;   // stop (saving) after this many critic steps in total; 0: no limit
  std::vector<std::string> command;
};

enum class Stop { kEpochDone, kInterrupted, kMaxSteps };

int run_train(const CommonOptions& common, TrainOptions t) {
  const Device device = setup(common);
  const fs::path out = common.out;
  const fs::path last_path = out / "last.safetensors";
  const fs::path resume_path = common.checkpoint.empty() ? last_path : fs::path(common.checkpoint);

  // On --resume the checkpoint's settings win: the run continues as it was started.
  nlohmann::json meta = nlohmann::json::object();
  std::optional<io::Checkpoint> resume_ckpt;
  if (t.resume) {
    EMBER_CHECK(fs::exists(resume_path), "--resume: no checkpoint at '", resume_path.string(), "'");
    resume_ckpt = io::read_checkpoint(resume_path.string());
    meta = cgan_metadata(*resume_ckpt, resume_path);
    t.batch_size = meta.at("batch_size").get<int64_t>();
    t.seed = meta.at("seed").get<uint64_t>();
    t.lr_g = meta.at("lr_g").get<double>();
    t.lr_d = meta.at("lr_d").get<double>();
  }
  const double lr_d = t.lr_d.value_or(t.lr.value_or(kLrD));
  const double lr_g = t.lr_g.value_or(t.lr ? *t.lr * (kLrG / kLrD) : kLrG);

  manual_seed(t.seed);
  CGAN gan;
  gan.apply(weights_init);
  gan.to(device);
  gan.train();
  optim::Adam opt_g(gan.G->parameters(), optim::AdamOptions(lr_g).betas({kBeta1, kBeta2}));
  optim::Adam opt_d(gan.D->parameters(), optim::AdamOptions(lr_d).betas({kBeta1, kBeta2}));
  const auto plateau = optim::ReduceLROnPlateauOptions().factor(kPlateauFactor).patience(kPlateauPatience);
  optim::ReduceLROnPlateau sched_g(opt_g, plateau), sched_d(opt_d, plateau);

  const fs::path dir = data_dir(common);
  data::DataLoader train_loader(mnist_split(dir, true),
                                data::DataLoaderOptions(t.batch_size).shuffle(true).num_workers(t.workers).seed(t.seed));
  data::DataLoader test_loader(mnist_split(dir, false), data::DataLoaderOptions(kTestBatchSize).num_workers(t.workers));
  EMBER_CHECK(train_loader.size() > 0, "the training set in '", dir.string(), "' is empty");

  utils::TrainPosition pos;
  LossSums sums;
  fs::create_directories(out);
  io::remove_stale_temporaries(last_path.string());  // left by a kill -9
  utils::MetricsLog log(out / "metrics");
  if (t.resume) {
    const io::Checkpoint& c = *resume_ckpt;
    try {
      gan.load_state_dict(c.model);
      EMBER_CHECK(c.optimizer && c.scheduler, "it holds no optimizer or scheduler state");
      opt_g.load_state_dict(take_prefixed(*c.optimizer, "G."));
      opt_d.load_state_dict(take_prefixed(*c.optimizer, "D."));
      sched_g.load_state_dict(take_prefixed(*c.scheduler, "G."));
      sched_d.load_state_dict(take_prefixed(*c.scheduler, "D."));
    } catch (const Error& e) {
      EMBER_FAIL("--resume: '", resume_path.string(), "': ", e.what());
    }
    if (c.rng) default_generator().set_state(*c.rng);
    pos.epoch = c.info.epoch;
    pos.step = c.info.step;
    utils::read_position(meta, pos);
    if (meta.contains("losses")) sums = LossSums::from_json(meta["losses"]);
    EMBER_CHECK(pos.batch <= train_loader.size(), "--resume: '", resume_path.string(), "' stopped at batch ", pos.batch,
                " of epoch ", pos.epoch + 1, " but the training set now has only ", train_loader.size(),
                " batches per epoch (a different --data?)");
    log = utils::MetricsLog::resume(out / "metrics", pos.epoch);
    std::cerr << "Resuming " << resume_path.string() << " at epoch " << pos.epoch + 1 << ", batch " << pos.batch << "/"
              << train_loader.size() << " (step " << pos.step << ")\n";
  }
  // steps.csv: every critic step's d_loss and D's lr; g_steps.csv: every generator step's g_loss
  // (numbered by the critic step it followed) and G's lr.
  utils::StepLog d_log(out / "steps.csv", t.resume ? pos.step : 0), g_log(out / "g_steps.csv", t.resume ? pos.step : 0);
  std::cerr << gan.summary() << "Adam G lr " << lr_g << ", D lr " << lr_d << ", betas (" << kBeta1 << ", " << kBeta2
            << "); n_critic " << kNCritic << ", GP weight " << kGpWeight << "; ReduceLROnPlateau(" << kPlateauFactor
            << ", " << kPlateauPatience << ") on each; data: " << dir.string() << "; " << t.epochs << " epochs of "
            << train_loader.size() << " batches of " << t.batch_size << "\n";

  int64_t saved_step = -1;
  auto save = [&](const fs::path& path) {
    if (!utils::all_finite(gan)) throw utils::Diverged{"the weights hold NaN or Inf after step " + std::to_string(pos.step)};
    meta = {{"program", kProgram},
            {"model", "original"},
            {"batch_size", t.batch_size},
            {"seed", t.seed},
            {"epochs", t.epochs},
            {"lr_g", lr_g},
            {"lr_d", lr_d},
            {"n_critic", kNCritic},
            {"gp_weight", kGpWeight},
            {"noise", kNoise},
            {"position", utils::position_json(pos)},
            {"losses", sums.to_json()}};
    io::Checkpoint c;
    c.model = gan.state_dict();
    c.optimizer.emplace();
    add_prefixed(*c.optimizer, "G.", opt_g.state_dict());
    add_prefixed(*c.optimizer, "D.", opt_d.state_dict());
    c.scheduler.emplace();
    add_prefixed(*c.scheduler, "G.", sched_g.state_dict());
    add_prefixed(*c.scheduler, "D.", sched_d.state_dict());
    c.rng = default_generator().get_state();
    c.info = {pos.epoch, pos.step, meta.dump()};
    utils::save_or_fail(path, [&] { io::save_checkpoint(path.string(), c); });
    if (path == last_path) saved_step = pos.step;
  };
  auto stopped = [&](Stop why) {
    std::cerr << (why == Stop::kMaxSteps ? "Stopped after step " + std::to_string(pos.step) + " (--max-steps)"
                                         : std::string("Interrupted (") + (utils::interrupt_signal() == SIGTERM ? "SIGTERM" : "SIGINT") +
                                               ") after step " + std::to_string(pos.step))
              << ", epoch " << pos.epoch + 1 << " batch " << pos.batch << "/" << train_loader.size() << "; saved "
              << last_path.string() << ". Resume with:\n  " << utils::resume_command(t.command) << "\n";
    return why == Stop::kMaxSteps ? 0 : utils::interrupt_exit_code();
  };
  const uint64_t noise_seed = t.seed + 1;  // the sample grids' fixed noise

  utils::InterruptHandler interrupts;  // Ctrl-C: finish the step, save, exit 130
  try {
    while (pos.epoch < t.epochs) {
      const auto t0 = std::chrono::steady_clock::now();
      utils::ProgressOptions po;
      po.unit = "step";
      utils::ProgressBar bar(train_loader.size(), "Epoch " + std::to_string(pos.epoch + 1) + "/" + std::to_string(t.epochs), po);
      if (pos.batch > 0) bar.update(pos.batch);
      train_loader.set_epoch(pos.epoch, pos.batch);
      Stop why = Stop::kEpochDone;
      for (auto& batch : train_loader) {
        Tensor real = batch.data.to(device), y = batch.target.to(device);
        const StepResult r = train_step(gan, opt_g, opt_d, real, y, (pos.batch + 1) % kNCritic == 0, pos);
        sums.d += r.d_loss;
        ++sums.nd;
        if (r.g_loss) {
          sums.g += *r.g_loss;
          ++sums.ng;
        }
        ++pos.batch;
        ++pos.step;
        d_log.append(pos, static_cast<float>(r.d_loss), opt_d.param_groups()[0].options().get_lr());
        if (r.g_loss) g_log.append(pos, static_cast<float>(*r.g_loss), opt_g.param_groups()[0].options().get_lr());
        bar.update(1, {{"D", sums.mean_d()}, {"G", sums.mean_g()}, {"|grad|", r.grad_norm}});
        const bool stop = utils::interrupt_requested() || (t.max_steps > 0 && pos.step >= t.max_steps);
        if (stop || (t.save_every > 0 && pos.step % t.save_every == 0)) save(last_path);
        if (utils::interrupt_requested()) {
          why = Stop::kInterrupted;
          break;
        }
        if (t.max_steps > 0 && pos.step >= t.max_steps) {
          why = Stop::kMaxSteps;
          break;
        }
      }
      bar.close();
      if (why != Stop::kEpochDone) return stopped(why);
      const double train_seconds = seconds_since(t0);
      const double train_g = sums.mean_g(), train_d = sums.mean_d();
      const auto [test_g, test_d] = test_losses(gan, test_loader, device, t.seed + 1000 + static_cast<uint64_t>(pos.epoch) + 1);
      if (sums.ng > 0) sched_g.step(train_g);
      sched_d.step(train_d);
      std::cout << "Epoch: " << pos.epoch + 1 << ", Train_loss_G:" << fixed(train_g) << ", Train_loss_D:" << fixed(train_d)
                << ", Test_loss_G:" << fixed(test_g) << ", Test_loss_D:" << fixed(test_d) << std::endl;
      std::cerr << "Epoch " << pos.epoch + 1 << ": " << fixed(train_seconds, 1) << " s training ("
                << fixed(train_seconds / static_cast<double>(std::max<int64_t>(sums.nd, 1)), 3) << " s per critic step)\n";
      log.append({{"epoch", static_cast<double>(pos.epoch + 1)}, {"train_loss_g", train_g}, {"train_loss_d", train_d},
                  {"test_loss_g", test_g}, {"test_loss_d", test_d}, {"lr_g", opt_g.param_groups()[0].options().get_lr()},
                  {"lr_d", opt_d.param_groups()[0].options().get_lr()}, {"epoch_seconds", train_seconds}});
      utils::LinePlot pd("Critic loss (Wasserstein + 10 GP)", "Epoch", "d_loss"), pg("Generator loss", "Epoch", "g_loss");
      pd.add("Train", log.column("train_loss_d")).add("Test", log.column("test_loss_d"));
      pg.add("Train", log.column("train_loss_g")).add("Test", log.column("test_loss_g"));
      utils::save_plots(out / "curves.png", {pd, pg}, 2, 600, 450);
      const int64_t epoch = pos.epoch + 1;
      if (epoch == 1 || epoch % 5 == 0 || epoch == t.epochs) {
        const fs::path png = out / ("samples_epoch_" + std::to_string(epoch) + ".png");
        save_samples(*gan.G, png, noise_seed, device);
      }
      pos = {pos.epoch + 1, 0, pos.step, {}};
      sums = {};
      save(last_path);
      if (utils::interrupt_requested() && pos.epoch < t.epochs) return stopped(Stop::kInterrupted);
    }
  } catch (const utils::Diverged& d) {
    std::cerr << "error: training diverged: " << d.what << "; stopped without saving. "
              << (!fs::exists(last_path) ? std::string("No checkpoint was written. ")
                                         : "The last good checkpoint is " + last_path.string() +
                                               (saved_step >= 0 ? " (step " + std::to_string(saved_step) + "). " : ". "))
              << "Try lower learning rates (this run: --lr-g " << lr_g << " --lr-d " << lr_d << ").\n";
    return kExitDiverged;
  }
  std::cerr << "wrote " << last_path.string() << ", metrics.csv, metrics.json, steps.csv, g_steps.csv, curves.png, "
            << "samples_epoch_*.png\n";
  return 0;
}

// ---- generate ----------------------------------------------------------------------------------

/// A 28 x 28 generated image (tanh output) as ink in [0, 1].
vision::GrayImage to_ink(const Tensor& image) {
  std::vector<float> v = image.contiguous().to_vector<float>();
  vision::GrayImage g(28, 28);
  for (size_t i = 0; i < v.size() && i < g.data.size(); ++i) g.data[i] = std::clamp((v[i] + 1.f) * 0.5f, 0.f, 1.f);
  return g;
}

/// Portable uniform numbers (std:: distributions differ between standard libraries).
struct Uniform {
  std::mt19937 gen;
  explicit Uniform(uint64_t seed) : gen(static_cast<uint32_t>(seed * 2654435761u + 12345u)) {}
  double operator()(double a, double b) { return a + (b - a) * (gen() / 4294967296.0); }
};

/// A number as handwriting on paper: the generated digits placed side by side (each trimmed to
/// its ink, a gap of 3-7 px and a vertical jitter of up to 2 px at MNIST's scale, as a hand
/// spaces them), dark ink on white, upscaled 3x. Separate, non-touching digits are what
/// `mnist_cnn read` segments best; it finds the polarity by itself. Faint grey below kPaper (a
/// generator's background is never exactly -1) becomes paper, so it neither widens the trimmed
/// digit nor draws a box around it.
vision::GrayImage compose_number(const std::vector<vision::GrayImage>& digits, uint64_t seed) {
  constexpr int kMargin = 10, kJitter = 2, kScale = 3;
  constexpr float kInk = 0.5f;     // what counts as a stroke when trimming
  constexpr float kPaper = 0.2f;   // fainter than this is background
  Uniform u(seed);
  struct Placed {
    const vision::GrayImage* img;
    int x0, x1, dx, dy;
  };
  std::vector<Placed> placed;
  int x = kMargin;
  for (const auto& d : digits) {
    int x0 = 28, x1 = -1;
    for (int c = 0; c < 28; ++c)
      for (int r = 0; r < 28; ++r)
        if (d(c, r) > kInk) {
          x0 = std::min(x0, c);
          x1 = std::max(x1, c);
        }
    if (x1 < x0) x0 = 10, x1 = 17;  // no ink: keep a digit-wide blank
    if (!placed.empty()) x += static_cast<int>(std::lround(u(3.0, 7.0)));
    const int dy = static_cast<int>(std::lround(u(-kJitter, kJitter)));
    placed.push_back({&d, x0, x1, x - x0, dy});
    x += x1 - x0 + 1;
  }
  const int width = x + kMargin, height = 28 + 2 * kMargin;
  vision::GrayImage ink(width, height, 0.f);
  for (const auto& p : placed)
    for (int r = 0; r < 28; ++r)
      for (int c = p.x0; c <= p.x1; ++c) {
        const int X = c + p.dx, Y = r + kMargin + p.dy;
        const float a = (*p.img)(c, r);
        float& v = ink(X, Y);
        v = std::max(v, a < kPaper ? 0.f : a);
      }
  vision::GrayImage big = vision::resize_area(ink, width * kScale, height * kScale);
  for (float& v : big.data) v = 1.f - 0.9f * std::clamp(v, 0.f, 1.f);  // dark ink, white paper
  return big;
}

/// Images of the digits of `number` (one per digit, fresh noise each).
std::vector<vision::GrayImage> number_digits(DigitGenerator& G, const std::string& number, Device device) {
  std::vector<int64_t> ds;
  for (char c : number) ds.push_back(c - '0');
  Tensor images = generate_images(G, labels_for(ds, 1, device), device);
  std::vector<vision::GrayImage> out;
  for (int64_t i = 0; i < images.size(0); ++i) out.push_back(to_ink(images.select(0, i)));
  return out;
}

void write_gray_png(const fs::path& path, const vision::GrayImage& g) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  io::write_png(path.string(), io::Image{g.width, g.height, 1, vision::to_u8(g)});
}

struct GenerateOptions {
  std::optional<int64_t> digit;
  std::string number;
  int64_t count = 64;
  std::string output;
  uint64_t seed = kSeed;
};

int run_generate(const CommonOptions& common, const GenerateOptions& g) {
  const Device device = setup(common);
  LoadedGan m = load_gan(common, device);
  manual_seed(g.seed);
  const fs::path png = g.output;
  if (!g.number.empty()) {
    write_gray_png(png, compose_number(number_digits(*m.gan->G, g.number, device), g.seed));
    std::cerr << "wrote " << png.string() << " (" << g.number << ", from " << m.path.string() << ")\n";
    return 0;
  }
  Tensor images = generate_images(*m.gan->G, labels_for({*g.digit}, g.count, device), device);
  utils::GridOptions o;
  o.nrow = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(g.count))));
  o.value_range = {{-1.0, 1.0}};
  if (png.has_parent_path()) fs::create_directories(png.parent_path());
  utils::save_image_grid(png, images, o);
  std::cerr << "wrote " << png.string() << " (" << g.count << " x digit " << *g.digit << ", from " << m.path.string()
            << ")\n";
  return 0;
}

// ---- evaluate ----------------------------------------------------------------------------------

/// Tutorial 1's classifier: its logits and its penultimate layer's features (the input of the last
/// Linear), on images in [0, 1].
struct Classifier {
  std::shared_ptr<nn::Sequential> net;
  std::string model;

  /// Features [N, F] and predicted digits of images [N, 1, 28, 28] in [0, 1].
  std::pair<Tensor, std::vector<int64_t>> run(const Tensor& images01, Device device) {
    NoGradGuard no_grad;
    net->eval();
    std::vector<Tensor> feats;
    std::vector<int64_t> pred;
    for (int64_t i = 0; i < images01.size(0); i += kTestBatchSize) {
      const int64_t m = std::min(kTestBatchSize, images01.size(0) - i);
      Tensor h = ((images01.narrow(0, i, m) - mnist_cnn::kMean) / mnist_cnn::kStd).to(device);
      for (size_t k = 0; k + 1 < net->size(); ++k) h = (*net)[static_cast<int64_t>(k)]->forward(h);
      feats.push_back(h.to(kCPU));
      for (int64_t p : argmax((*net)[-1]->forward(h), 1).to(kCPU).to_vector<int64_t>()) pred.push_back(p);
    }
    return {cat(feats, 0).to(kFloat64), pred};
  }
};

Classifier load_classifier(const std::string& path, Device device) {
  EMBER_CHECK(fs::exists(path), "no classifier at '", path,
              "': train tutorial 1's (mnist_cnn train --model improved) or pass --classifier FILE");
  io::Checkpoint ckpt = io::read_checkpoint(path);
  nlohmann::json meta = nlohmann::json::parse(ckpt.info.metadata, nullptr, false);
  EMBER_CHECK(meta.is_object() && meta.value("program", std::string()) != kProgram && meta.contains("model") &&
                  meta["model"].is_string(),
              "--classifier '", path, "' is not an mnist_cnn checkpoint (its metadata names no mnist_cnn model)");
  Classifier c{mnist_cnn::make_model(meta["model"].get<std::string>()), meta["model"].get<std::string>()};
  try {
    c.net->load_state_dict(ckpt.model);
  } catch (const Error& e) {
    EMBER_FAIL("--classifier '", path, "': ", e.what());
  }
  c.net->to(device);
  c.net->eval();
  return c;
}

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Matrix to_matrix(const Tensor& t) {
  std::vector<double> v = t.contiguous().to_vector<double>();
  return Eigen::Map<Matrix>(v.data(), t.size(0), t.size(1));
}

/// Fréchet distance between Gaussians fitted to two feature sets (FID's formula):
/// |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
double frechet_distance(const Matrix& a, const Matrix& b) {
  auto stats = [](const Matrix& x) {
    Eigen::RowVectorXd mu = x.colwise().mean();
    Matrix c = x.rowwise() - mu;
    Matrix cov = (c.transpose() * c) / std::max<double>(1.0, static_cast<double>(x.rows()) - 1.0);
    return std::pair<Eigen::RowVectorXd, Matrix>{mu, cov};
  };
  auto [m1, s1] = stats(a);
  auto [m2, s2] = stats(b);
  Eigen::SelfAdjointEigenSolver<Matrix> e1(s1);
  Eigen::VectorXd l1 = e1.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  Matrix sqrt1 = e1.eigenvectors() * l1.asDiagonal() * e1.eigenvectors().transpose();
  Matrix mid = sqrt1 * s2 * sqrt1;
  Eigen::SelfAdjointEigenSolver<Matrix> em(0.5 * (mid + mid.transpose()), Eigen::EigenvaluesOnly);
  const double tr_sqrt = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  return (m1 - m2).squaredNorm() + s1.trace() + s2.trace() - 2.0 * tr_sqrt;
}

/// Mean Euclidean distance between all pairs of rows (at most `cap` rows, the first ones).
double mean_pairwise_distance(const Matrix& x, int64_t cap = 500) {
  const int64_t n = std::min<int64_t>(x.rows(), cap);
  if (n < 2) return std::nan("");
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) sum += (x.row(i) - x.row(j)).norm();
  return sum / (static_cast<double>(n) * static_cast<double>(n - 1) / 2.0);
}

/// The rows of `x` whose label is `d`.
Matrix rows_of(const Matrix& x, const std::vector<int64_t>& labels, int64_t d) {
  std::vector<Eigen::Index> idx;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == d) idx.push_back(static_cast<Eigen::Index>(i));
  Matrix out(static_cast<Eigen::Index>(idx.size()), x.cols());
  for (size_t k = 0; k < idx.size(); ++k) out.row(static_cast<Eigen::Index>(k)) = x.row(idx[k]);
  return out;
}

/// Up to `limit` MNIST images in [0, 1] and their labels.
std::pair<Tensor, std::vector<int64_t>> mnist_images(const fs::path& dir, bool train, int64_t limit) {
  auto ds = std::make_shared<data::MNIST>(dir.string(), train);
  data::DataLoader loader(ds, data::DataLoaderOptions(kTestBatchSize));
  tensor_list xs;
  std::vector<int64_t> ys;
  int64_t n = 0;
  for (auto& b : loader) {
    xs.push_back(b.data);
    for (int64_t v : b.target.to_vector<int64_t>()) ys.push_back(v);
    n += b.data.size(0);
    if (n >= limit) break;
  }
  Tensor x = cat(xs, 0);
  if (x.size(0) > limit) {
    x = x.narrow(0, 0, limit);
    ys.resize(static_cast<size_t>(limit));
  }
  return {x, ys};
}

/// What `mnist_cnn read` prints for an image file (the default path: segment_digits, then the
/// classifier on every crop).
std::string read_number(Classifier& c, const fs::path& png, Device device) {
  vision::GrayImage gray = vision::from_image(io::read_image(png.string()));
  auto digits = vision::segment_digits(gray);
  if (digits.empty()) return "";
  std::vector<float> pixels;
  for (const auto& d : digits) pixels.insert(pixels.end(), d.image.data.begin(), d.image.data.end());
  Tensor x = tensor<float>(pixels, Shape{static_cast<int64_t>(digits.size()), 1, 28, 28});
  std::string text;
  const auto pred = c.run(x, device).second;
  for (size_t k = 0; k < digits.size(); ++k) {
    if (k > 0 && digits[k].line != digits[k - 1].line) text += ' ';
    text += static_cast<char>('0' + pred[k]);
  }
  return text;
}

struct EvaluateOptions {
  std::string classifier = kDefaultClassifier;
  int64_t per_class = 1000;
  int64_t rounds = 100;
  uint64_t seed = kSeed;
};

int run_evaluate(const CommonOptions& common, const EvaluateOptions& e) {
  const Device device = setup(common);
  LoadedGan m = load_gan(common, device);
  Classifier clf = load_classifier(e.classifier, device);
  const fs::path dir = data_dir(common);
  const auto t0 = std::chrono::steady_clock::now();
  manual_seed(e.seed);

  // Generated: per_class images of each digit.
  Tensor y = labels_for({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, e.per_class, device);
  Tensor fake01 = (generate_images(*m.gan->G, y, device) + 1.0) * 0.5;
  auto [fake_feat_t, fake_pred] = clf.run(fake01, device);
  const std::vector<int64_t> fake_labels = y.to(kCPU).to_vector<int64_t>();
  // Real: the test set, and as many training images for the floor.
  auto [test_x, test_y] = mnist_images(dir, false, 10000);
  auto [train_x, train_y] = mnist_images(dir, true, test_x.size(0));
  const Matrix fake_feat = to_matrix(fake_feat_t), test_feat = to_matrix(clf.run(test_x, device).first),
               train_feat = to_matrix(clf.run(train_x, device).first);

  std::array<int64_t, kClasses> right{}, total{};
  for (size_t i = 0; i < fake_labels.size(); ++i) {
    ++total[static_cast<size_t>(fake_labels[i])];
    right[static_cast<size_t>(fake_labels[i])] += fake_pred[i] == fake_labels[i];
  }
  int64_t right_all = 0;
  for (int64_t d = 0; d < kClasses; ++d) right_all += right[static_cast<size_t>(d)];
  const double fidelity = static_cast<double>(right_all) / static_cast<double>(fake_labels.size());
  const double fd = frechet_distance(fake_feat, test_feat), fd_floor = frechet_distance(train_feat, test_feat);

  std::cout << "Checkpoint: " << m.path.string() << " (" << m.epoch << " epochs, " << m.step << " critic steps); classifier: " << e.classifier << " ("
            << clf.model << ", " << fake_feat.cols() << " features)\n"
            << "Class fidelity: " << fixed(100 * fidelity, 2) << " % of " << fake_labels.size()
            << " generated digits classified as requested\n"
            << "Frechet distance (classifier features), generated vs " << test_feat.rows() << " test images: " << fixed(fd, 3)
            << "  (floor, " << train_feat.rows() << " training vs test images: " << fixed(fd_floor, 3) << ")\n\n"
            << "digit  fidelity  diversity generated  diversity real\n";
  nlohmann::json per_digit = nlohmann::json::array();
  double worst = 1.0;
  for (int64_t d = 0; d < kClasses; ++d) {
    const double f = static_cast<double>(right[static_cast<size_t>(d)]) / static_cast<double>(std::max<int64_t>(1, total[static_cast<size_t>(d)]));
    worst = std::min(worst, f);
    const double div_fake = mean_pairwise_distance(rows_of(fake_feat, fake_labels, d));
    const double div_real = mean_pairwise_distance(rows_of(test_feat, test_y, d));
    std::cout << "  " << d << "    " << std::setw(7) << fixed(100 * f, 2) << " %  " << std::setw(17) << fixed(div_fake, 3)
              << "  " << std::setw(14) << fixed(div_real, 3) << "\n";
    per_digit.push_back({{"digit", d}, {"fidelity", f}, {"diversity_generated", div_fake}, {"diversity_real", div_real}});
  }
  std::cout << "Lowest per-digit fidelity: " << fixed(100 * worst, 2) << " %\n";

  nlohmann::json result = {{"checkpoint", m.path.string()}, {"epoch", m.epoch}, {"step", m.step}, {"classifier", e.classifier},
                           {"per_class", e.per_class},      {"fidelity", fidelity},    {"fidelity_min", worst},
                           {"frechet_distance", fd},        {"frechet_floor", fd_floor}, {"per_digit", per_digit}};
  // Round trip: random 4-digit numbers drawn, then read back as `mnist_cnn read` does.
  if (e.rounds > 0) {
    Uniform u(e.seed + 7);
    const fs::path tmp = fs::path(common.out) / "roundtrip";
    fs::create_directories(tmp);
    int64_t exact = 0;
    std::vector<std::string> misread;
    for (int64_t i = 0; i < e.rounds; ++i) {
      std::string number;
      for (int k = 0; k < 4; ++k) number += static_cast<char>('0' + std::min(9, static_cast<int>(u(0.0, 10.0))));
      const fs::path png = tmp / (number + ".png");
      write_gray_png(png, compose_number(number_digits(*m.gan->G, number, device), e.seed + static_cast<uint64_t>(i)));
      const std::string got = read_number(clf, png, device);
      if (got == number) {
        ++exact;
        fs::remove(png);  // keep only the misread ones, to look at
      } else if (misread.size() < 10) {
        misread.push_back(number + " -> " + (got.empty() ? "(nothing)" : got));
      }
    }
    const double share = static_cast<double>(exact) / static_cast<double>(e.rounds);
    std::cout << "Round trip: " << exact << " of " << e.rounds << " random 4-digit numbers read back exactly ("
              << fixed(100 * share, 1) << " %)";
    if (!misread.empty()) {
      std::cout << "; e.g.";
      for (const auto& s : misread) std::cout << "  " << s;
      std::cout << "  (images in " << tmp.string() << ")";
    }
    std::cout << "\n";
    result["roundtrip"] = {{"numbers", e.rounds}, {"exact", exact}, {"share", share}};
  }
  const fs::path json_path = fs::path(common.out) / "evaluation.json";
  fs::create_directories(common.out);
  std::ofstream(json_path) << result.dump(2) << "\n";
  std::cerr << "wrote " << json_path.string() << " (" << fixed(seconds_since(t0), 1) << " s)\n";
  return 0;
}

// ---- main --------------------------------------------------------------------------------------

const CLI::Validator kPositive(
    [](std::string& s) -> std::string {
      try {
        if (std::stod(s) > 0) return "";
      } catch (const std::exception&) {
      }
      return "must be a positive number, got '" + s + "'";
    },
    "POSITIVE");

const CLI::Validator kNumber(
    [](std::string& s) -> std::string {
      if (s.empty() || s.size() > 32 || s.find_first_not_of("0123456789") != std::string::npos)
        return "expected 1 to 32 digits 0-9 (e.g. 2026), got '" + s + "'";
      return "";
    },
    "DIGITS");

void add_common(CLI::App* app, CommonOptions& o, bool data) {
  if (data) app->add_option("--data", o.data, "Directory with MNIST's IDX files (plain or .gz); default: standard lookup");
  app->add_option("--out", o.out, "Output directory (checkpoints, metrics, plots)")->capture_default_str();
  app->add_option("--checkpoint", o.checkpoint, "Checkpoint to load (default: <out>/last.safetensors)");
  app->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1 << 20));
  app->add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
}

int main(int argc, char** argv) {
  CLI::App app{"cgan_mnist: a conditional WGAN-GP with spectral normalisation that draws the MNIST digit you ask for"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cgan_mnist (Ember tutorial 4)");

  CommonOptions common;
  TrainOptions t;
  CLI::App* train_cmd = app.add_subcommand("train", "Train generator and critic; save checkpoints, metrics, curves.png, sample grids");
  add_common(train_cmd, common, true);
  train_cmd->add_option("--epochs", t.epochs, "Number of epochs")->check(kPositive)->capture_default_str();
  train_cmd->add_option("--batch-size", t.batch_size, "Training batch size")->check(CLI::Range(int64_t{2}, int64_t{65536}))->capture_default_str();
  train_cmd->add_option("--lr", t.lr, "Both learning rates at the original's ratio: the critic's, and half of it for the generator")
      ->check(kPositive);
  train_cmd->add_option("--lr-g", t.lr_g, "Generator learning rate (default 1e-4; overrides --lr)")->check(kPositive);
  train_cmd->add_option("--lr-d", t.lr_d, "Critic learning rate (default 2e-4; overrides --lr)")->check(kPositive);
  train_cmd->add_option("--seed", t.seed, "Seed of initialisation, shuffling, noise and dropout")->capture_default_str();
  train_cmd->add_option("--workers", t.workers, "Data loader threads (0: load on the training thread)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  train_cmd->add_flag("--resume", t.resume,
                      "Continue from --checkpoint (default <out>/last.safetensors) exactly where it stopped");
  train_cmd->add_option("--save-every", t.save_every, "Also save <out>/last.safetensors every N critic steps (0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  train_cmd->add_option("--max-steps", t.max_steps, "Stop after N critic steps in total, saving (--resume continues; 0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();

  GenerateOptions g;
  CLI::App* gen_cmd = app.add_subcommand("generate", "Draw digits: a grid of one digit (--digit) or a handwritten number (--number)");
  add_common(gen_cmd, common, false);
  auto* digit_opt = gen_cmd->add_option("--digit", g.digit, "The digit to draw, 0-9")->check(CLI::Range(0, 9));
  auto* number_opt = gen_cmd->add_option("--number", g.number, "A number to write, e.g. 2026 (digits side by side)")->check(kNumber);
  digit_opt->excludes(number_opt);
  auto* count_opt = gen_cmd->add_option("--count", g.count, "How many images of --digit")->check(CLI::Range(int64_t{1}, int64_t{10000}))->capture_default_str();
  count_opt->excludes(number_opt);
  gen_cmd->add_option("-o,--output", g.output, "PNG file to write")->required();
  gen_cmd->add_option("--seed", g.seed, "Seed of the noise (and of the spacing of --number)")->capture_default_str();

  EvaluateOptions e;
  CLI::App* eval_cmd = app.add_subcommand("evaluate", "Class fidelity, Frechet distance and diversity in tutorial 1's classifier's features, round trip");
  add_common(eval_cmd, common, true);
  eval_cmd->add_option("--classifier", e.classifier, "mnist_cnn checkpoint (tutorial 1; --model improved recommended)")->capture_default_str();
  eval_cmd->add_option("--per-class", e.per_class, "Generated images per digit")->check(CLI::Range(int64_t{2}, int64_t{100000}))->capture_default_str();
  eval_cmd->add_option("--rounds", e.rounds, "Random 4-digit numbers for the round trip through the reader (0: skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}))
      ->capture_default_str();
  eval_cmd->add_option("--seed", e.seed, "Seed of the noise and of the numbers")->capture_default_str();

  try {
    app.parse(argc, argv);
    if (*gen_cmd && !g.digit && g.number.empty())
      throw CLI::ValidationError("generate: needs --digit D (a grid of that digit) or --number N (a handwritten number)");
  } catch (const CLI::ParseError& err) {
    return app.exit(err);
  }
  t.command.assign(argv, argv + argc);
  try {
    if (*train_cmd) return run_train(common, t);
    if (*gen_cmd) return run_generate(common, g);
    if (*eval_cmd) return run_evaluate(common, e);
  } catch (const std::exception& err) {
    std::cerr << "error: " << err.what() << "\n";
    return 1;
  }
  return 1;
}
