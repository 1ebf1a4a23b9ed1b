// ember_bench_models: Ember's side of the model/op benchmark suite, plus the suite's report.
// bench/bench_torch.cpp is the identical program in libtorch; scripts/bench.sh runs the two
// alternately, one case per process, and then `report` turns their records into the tables.
//
//   ember_bench_models dump-mnist MNIST_DIR OUT_DIR      # normalised MNIST for both runners
//   ember_bench_models CASE --data OUT_DIR --threads 2 --json runs.jsonl [--quick] [--round R]
//   ember_bench_models report runs.jsonl OUT_PREFIX [key=value ...]   # JSON + Markdown + PNG
//   ember_bench_models pick-blas calibration.jsonl       # libtorch's better OPENBLAS_NUM_THREADS
//
// Cases (bench/harness.hpp has the shapes and protocols shared with the peer):
//   mnist_b32, mnist_b128   tutorial 1's CNN: one training epoch + the 10k evaluation
//   catdog_step             tutorial 2's CNN: one training step, batch 32, 3x150x150
//   bilstm_step             tutorial 3: the BiLSTM classifier's training step
//   bert_step               tutorial 3 part 2: the small BERT classifier's training step
//   wgan_critic_step        tutorial 4: one critic update of the conditional WGAN-GP (with its gradient penalty)
//   ops                     op rows at the tutorials' shapes
//   overhead                time per tiny op (dispatch + autograd bookkeeping)
#define EMBER_BENCH_COUNT_ALLOCATIONS
#include "harness.hpp"
#include "compile_only.hpp"

#include <cstring>
#include <memory>

#include "ember/data/mnist.hpp"
#include "ember/ember.hpp"
#include "ember/nn/batchnorm.hpp"
#include "ember/models/bert.hpp"
#include "ember/nn/rnn.hpp"
#include "ember/nn/spectral_norm.hpp"
#include "ember/ops/attention.hpp"
#include "report.hpp"

#include "../examples/cgan_mnist/models.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using bench::Args;
using bench::Record;

namespace {

constexpr const char* kFramework = "ember";

Record make_record(const Args& a, const std::string& kind, const std::string& group, const std::string& name,
                   const std::string& shape) {
  Record r;
  r.framework = kFramework;
  r.case_name = a.case_name;
  r.kind = kind;
  r.group = group;
  r.name = name;
  r.shape = shape;
  return r;
}

/// Memory figures of this process, added to a model record: peak RSS, the RSS once the data was
/// resident (so the model's own share can be told apart), and allocations per warm step.
void add_memory(Record& r, long base_rss_kb, const bench::AllocCounts& c, int64_t steps, uint64_t storage_allocs) {
  r.extra["peak_rss_kb"] = static_cast<double>(bench::peak_rss_kb());
  r.extra["base_rss_kb"] = static_cast<double>(base_rss_kb);
  if (steps > 0 && bench::allocation_counting_available()) {
    r.extra["allocs_small_per_step"] = static_cast<double>(c.small) / static_cast<double>(steps);
    r.extra["allocs_large_per_step"] = static_cast<double>(c.large) / static_cast<double>(steps);
    r.extra["large_bytes_per_step"] = static_cast<double>(c.large_bytes) / static_cast<double>(steps);
    r.extra["storage_system_allocs_per_step"] = static_cast<double>(storage_allocs) / static_cast<double>(steps);
  }
}

Tensor pattern(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  Tensor t = empty(shape, TensorOptions(kFloat32));
  bench::fill_pattern(t.data_ptr<float>(), t.numel(), seed);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor index_pattern(const Shape& shape, int64_t high, uint64_t seed) {
  Tensor t = empty(shape, TensorOptions(kInt64));
  bench::fill_indices(t.data_ptr<int64_t>(), t.numel(), high, seed);
  return t;
}

Tensor int64_tensor(const std::vector<int64_t>& v) {
  Tensor t = empty({static_cast<int64_t>(v.size())}, TensorOptions(kInt64));
  std::memcpy(t.data_ptr<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

// ---- tutorial 1: the MNIST CNN -----------------------------------------------------------------------

/// The original tutorial's network, as in examples/mnist_cnn (no activation between the two Linear layers).
std::shared_ptr<nn::Sequential> mnist_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back("conv1", std::make_shared<nn::Conv2d>(1, 32, 3));
  net->push_back("relu1", std::make_shared<nn::ReLU>());
  net->push_back("pool1", std::make_shared<nn::MaxPool2d>(2));
  net->push_back("conv2", std::make_shared<nn::Conv2d>(32, 64, 3));
  net->push_back("relu2", std::make_shared<nn::ReLU>());
  net->push_back("pool2", std::make_shared<nn::MaxPool2d>(2));
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  net->push_back("fc1", std::make_shared<nn::Linear>(1600, 50));
  net->push_back("fc2", std::make_shared<nn::Linear>(50, 10));
  return net;
}

std::pair<Tensor, Tensor> load_split(const std::string& dir, const std::string& split) {
  int64_t n = bench::mnist_dump_count(dir, split);
  Tensor x = empty({n, 1, 28, 28}, TensorOptions(kFloat32));
  Tensor y = empty({n}, TensorOptions(kInt64));
  bench::read_mnist_dump(dir, split, x.data_ptr<float>(), y.data_ptr<int64_t>(), n);
  return {x, y};
}

/// One training epoch (SGD lr 0.01, momentum 0.9, the shared batch order) and the test-set
/// evaluation at the same batch size; allocations counted over warm steps inside the epoch.
void run_mnist(const Args& a, int64_t batch) {
  bench::MnistProtocol p = bench::mnist_protocol(batch, a.quick);
  auto [xtr, ytr] = load_split(a.data_dir, "train");
  auto [xte, yte] = load_split(a.data_dir, "t10k");
  long base_rss = bench::current_rss_kb();
  int64_t ntrain = std::min(p.train_images, xtr.size(0)), ntest = std::min(p.test_images, xte.size(0));
  std::vector<int64_t> order = bench::permutation(xtr.size(0), 0);
  order.resize(static_cast<size_t>(ntrain));
  Tensor perm = int64_tensor(order);

  manual_seed(0);
  auto net = mnist_net();
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.01).momentum(0.9));
  net->train();
  bench::AllocCounts counts;
  uint64_t storage0 = 0, storage_allocs = 0;
  Tensor loss;
  double t0 = bench::now_s();
  int64_t step = 0;
  for (int64_t i = 0; i < ntrain; i += batch, ++step) {
    if (step == p.count_from) {
      storage0 = cpu_memory_stats().system_allocations;
      bench::start_counting_allocations();
    }
    Tensor idx = perm.slice(0, i, std::min(i + batch, ntrain));
    Tensor x = xtr.index_select(0, idx), y = ytr.index_select(0, idx);
    opt.zero_grad();
    loss = F::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    if (step == p.count_from + p.count_steps - 1) {
      counts = bench::stop_counting_allocations();
      storage_allocs = cpu_memory_stats().system_allocations - storage0;
    }
  }
  double t_train = bench::now_s() - t0;
  float final_loss = loss.item<float>();

  net->eval();
  int64_t correct = 0;
  t0 = bench::now_s();
  {
    NoGradGuard no_grad;
    for (int64_t i = 0; i < ntest; i += batch) {
      int64_t j = std::min(i + batch, ntest);
      Tensor logits = net->forward(xte.slice(0, i, j));
      correct += eq(logits.argmax(1), yte.slice(0, i, j)).sum().item<int64_t>();
    }
  }
  double t_eval = bench::now_s() - t0;
  double acc = static_cast<double>(correct) / static_cast<double>(ntest);

  Record tr = make_record(a, "model", "mnist-cnn", bench::mnist_row_name(true, ntrain, batch),
                          "60000x1x28x28, SGD lr 0.01 momentum 0.9");
  tr.samples = {t_train};
  tr.extra["final_loss"] = final_loss;
  tr.extra["test_acc"] = acc;
  add_memory(tr, base_rss, counts, p.count_steps, storage_allocs);
  bench::emit(a, tr);
  Record ev = make_record(a, "model", "mnist-cnn", bench::mnist_row_name(false, ntest, batch), "10000x1x28x28, no_grad");
  ev.samples = {t_eval};
  ev.extra["test_acc"] = acc;
  bench::emit(a, ev);
}

// ---- tutorial 2: the cat/dog CNN ----------------------------------------------------------------------

/// Four conv3x3(pad 1)-BatchNorm-ReLU-MaxPool blocks (32/64/128/256 channels, 150 -> 9), then
/// Linear(20736, 512)-ReLU-Dropout(0.5)-Linear(512, 2): the original notebook's network.
std::shared_ptr<nn::Sequential> catdog_net() {
  auto net = std::make_shared<nn::Sequential>();
  int64_t in = 3;
  int i = 1;
  for (int64_t out : {32, 64, 128, 256}) {
    std::string s = std::to_string(i++);
    net->push_back("conv" + s, std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 3).padding(1)));
    net->push_back("bn" + s, std::make_shared<nn::BatchNorm2d>(out));
    net->push_back("relu" + s, std::make_shared<nn::ReLU>());
    net->push_back("pool" + s, std::make_shared<nn::MaxPool2d>(2));
    in = out;
  }
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  net->push_back("fc1", std::make_shared<nn::Linear>(256 * 9 * 9, 512));
  net->push_back("relu", std::make_shared<nn::ReLU>());
  net->push_back("drop", std::make_shared<nn::Dropout>(0.5));
  net->push_back("fc2", std::make_shared<nn::Linear>(512, 2));
  return net;
}

/// Times `step` (a training step returning its loss) after the protocol's warm-up steps, with the
/// memory figures of the timed steps, and emits record `r`. `base_rss` is taken before the model
/// was built.
template <typename Step>
void time_training_steps(const Args& a, Record r, long base_rss, Step&& step) {
  bench::StepProtocol p = bench::step_protocol(a.quick);
  float first_loss = 0, last_loss = 0;
  for (int i = 0; i < p.warmup; ++i) first_loss = step();
  uint64_t storage0 = cpu_memory_stats().system_allocations;
  bench::start_counting_allocations();
  for (int i = 0; i < p.timed; ++i) {
    double t0 = bench::now_s();
    last_loss = step();
    r.samples.push_back(bench::now_s() - t0);
  }
  bench::AllocCounts counts = bench::stop_counting_allocations();
  r.extra["first_loss"] = first_loss;
  r.extra["last_loss"] = last_loss;
  add_memory(r, base_rss, counts, p.timed, cpu_memory_stats().system_allocations - storage0);
  bench::emit(a, r);
}

/// Timed training steps on one fixed synthetic batch (the figure is the framework's step, not the
/// JPEG pipeline): Adam(lr 1e-4, weight_decay 1e-4) and cross-entropy, as in the recipe.
void run_catdog(const Args& a) {
  Tensor x = pattern({32, 3, 150, 150}, 11);
  Tensor y = index_pattern({32}, 2, 12);
  long base_rss = bench::current_rss_kb();
  manual_seed(0);
  auto net = catdog_net();
  optim::Adam opt(net->parameters(), optim::AdamOptions(1e-4).weight_decay(1e-4));
  net->train();
  time_training_steps(a, make_record(a, "model", "catdog-cnn", "train step B=32", bench::kCatdogShape), base_rss, [&] {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    return loss.item<float>();
  });
}

// ---- tutorial 3: the BiLSTM classifier -------------------------------------------------------------------

/// The original recipe's classifier: frozen Embedding(50000, 64) -> LSTM(64, 64, 2 layers,
/// bidirectional, dropout 0.5) -> the last time step -> Dropout(0.5) -> Linear(128, 64) -> ReLU ->
/// Linear(64, 2), as bench_torch.cpp's BiLstmNet.
struct BiLstmNet : nn::Module {
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::Linear> fc1, fc2;
  BiLstmNet() {
    emb = register_module("emb", nn::Embedding::from_pretrained(randn({50000, 64}), /*freeze=*/true, /*padding_idx=*/0));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(
                                       nn::LSTMOptions(64, 64).num_layers(2).batch_first(true).bidirectional(true).dropout(0.5)));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.5));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(128, 64));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(64, 2));
  }
  Tensor forward(const Tensor& ids) {
    Tensor out = std::get<0>(lstm->forward(emb->forward(ids)));
    return fc2->forward(relu(fc1->forward(drop->forward(out.select(1, -1)))));
  }
};

void run_bilstm(const Args& a) {
  Tensor ids = index_pattern({32, 100}, 50000, 21);
  Tensor y = index_pattern({32}, 2, 22);
  long base_rss = bench::current_rss_kb();
  manual_seed(0);
  auto net = std::make_shared<BiLstmNet>();
  std::vector<Tensor> params;
  for (auto& t : net->parameters())
    if (t.requires_grad()) params.push_back(t);
  optim::Adam opt(params, optim::AdamOptions(1e-3));
  net->train();
  time_training_steps(a, make_record(a, "model", "bilstm", "train step B=32 L=100", bench::kBilstmShape), base_rss, [&] {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(net->forward(ids), y);
    loss.backward();
    opt.step();
    return loss.item<float>();
  });
}

// ---- tutorial 3 part 2: the small BERT classifier ------------------------------------------------------

/// models::BertForSequenceClassification with BertConfig::small (4 layers, hidden 256, 4 heads,
/// FFN 1024, GELU, post-norm, dropout 0.1, vocab 21128, 512 positions, 2 token types), as the
/// sentiment tutorial fine-tunes it. Timed: zero_grad, forward (embeddings + LayerNorm, 4 encoder
/// layers, tanh pooler on [CLS], dropout, 2-way classifier), cross-entropy, backward, AdamW step;
/// no attention mask (every token real), token types all 0 — what bench_torch.cpp's BertPeer computes.
void run_bert(const Args& a) {
  Tensor ids = index_pattern({16, 128}, 21128, 31);
  Tensor y = index_pattern({16}, 2, 32);
  Tensor types = zeros({16, 128}, TensorOptions(kInt64));
  long base_rss = bench::current_rss_kb();
  manual_seed(0);
  models::BertConfig cfg = models::BertConfig::small(21128);
  cfg.set_num_labels(2);
  auto net = std::make_shared<models::BertForSequenceClassification>(cfg);
  optim::AdamW opt(net->parameters(), optim::AdamWOptions(2e-5));
  net->train();
  time_training_steps(a, make_record(a, "model", "bert", "train step B=16 L=128", bench::kBertShape), base_rss, [&] {
    opt.zero_grad();
    Tensor loss = net->forward(ids, {}, types, y).loss;
    loss.backward();
    opt.step();
    return loss.item<float>();
  });
}

// ---- tutorial 4: the conditional WGAN-GP critic -----------------------------------------------------------

/// One critic update as examples/cgan_mnist's train_step does it, on a fixed batch of real and
/// fake images (the generator's forward is not timed): D(real), D(fake), the gradient penalty at
/// x_hat = alpha real + (1 - alpha) fake through a double backward (create_graph), d_loss =
/// mean D(fake) - mean D(real) + 10 GP, zero_grad, backward, Adam(2e-4, betas 0.5/0.999). Three
/// critic forwards in training mode, so three power iterations per spectrally normalised layer.
void run_wgan(const Args& a) {
  const int64_t b = 128;
  Tensor real = pattern({b, 1, 28, 28}, 41), fake = pattern({b, 1, 28, 28}, 42);
  Tensor y = index_pattern({b}, 10, 43);
  long base_rss = bench::current_rss_kb();
  manual_seed(0);
  auto critic = std::make_shared<cgan_mnist::Critic>();  // exactly what `cgan_mnist train` trains
  critic->apply(cgan_mnist::weights_init);
  optim::Adam opt(critic->parameters(), optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  critic->train();
  time_training_steps(a, make_record(a, "model", "wgan-gp", "critic step + gradient penalty B=128", bench::kWganShape),
                      base_rss, [&] {
                        Tensor d_real = critic->forward(real, y).mean(), d_fake = critic->forward(fake, y).mean();
                        Tensor alpha = rand({b, 1, 1, 1});
                        Tensor x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_(true);
                        Tensor d = critic->forward(x_hat, y);
                        Tensor g = autograd::grad({d}, {x_hat}, {ones_like(d)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
                        Tensor gp = mean(pow(norm(g.view({b, -1}), 2, {1}) - 1.0, 2));
                        Tensor loss = d_fake - d_real + gp * 10.0;
                        opt.zero_grad();
                        loss.backward();
                        opt.step();
                        return loss.item<float>();
                      });
}

// ---- ops ------------------------------------------------------------------------------------------------

/// Times one op row; `check` holds the checksum of one call's outputs, compared with the peer's.
void run_op(const Args& a, const bench::OpSpec& s, const bench::OpProtocol& p) {
  Record r = make_record(a, "op", s.group, s.name, s.shape);
  r.unit = s.unit;
  r.work = s.work;
  const auto& d = s.dims;
  std::function<void()> f;
  std::function<tensor_list()> outputs;  // the tensors the checksum covers
  Tensor keep;                           // the result of the last timed call
  if (s.kind == "gemm") {
    Tensor x = pattern({d[0], d[1]}, 1), w = pattern({d[1], d[2]}, 2);
    f = [=, &keep] { keep = mm(x, w); };
  } else if (s.kind == "copy") {
    Tensor x = pattern({d[0]}, 1), y = empty({d[0]}, TensorOptions(kFloat32));
    f = [=, &keep]() mutable { keep = y.copy_(x); };
  } else if (s.kind == "linear") {
    Tensor x = pattern({d[0], d[1]}, 1), w = pattern({d[2], d[1]}, 2), b = pattern({d[2]}, 3);
    f = [=, &keep] { keep = linear(x, w, b); };
  } else if (s.kind == "conv_fwd" || s.kind == "conv_bwd") {
    bool bwd = s.kind == "conv_bwd", input_grad = bwd && d[7];
    Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, input_grad), w = pattern({d[4], d[1], d[5], d[5]}, 2, bwd),
           b = pattern({d[4]}, 3, bwd);
    if (!bwd) {
      f = [=, &keep] { keep = conv2d(x, w, b, 1, d[6]); };
    } else {
      Tensor out = conv2d(x, w, b, 1, d[6]);
      Tensor g = pattern(out.sizes(), 4);
      tensor_list inputs = input_grad ? tensor_list{x, w, b} : tensor_list{w, b};
      outputs = [=] { return autograd::grad({out}, inputs, {g}, true); };
    }
  } else if (s.kind == "maxpool_fwd") {
    Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1);
    f = [=, &keep] { keep = max_pool2d(x, 2); };
  } else if (s.kind == "maxpool_bwd") {
    Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, true);
    Tensor out = max_pool2d(x, 2), g = pattern(out.sizes(), 4);
    outputs = [=] { return autograd::grad({out}, {x}, {g}, true); };
  } else if (s.kind == "bn_fwd" || s.kind == "bn_bwd") {
    bool bwd = s.kind == "bn_bwd";
    Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, bwd), w = ones({d[1]}), b = zeros({d[1]});
    Tensor rm = zeros({d[1]}), rv = ones({d[1]});
    if (bwd) {
      w.requires_grad_(true);
      b.requires_grad_(true);
      Tensor out = batch_norm(x, rm, rv, w, b, true);
      Tensor g = pattern(out.sizes(), 4);
      outputs = [=] { return autograd::grad({out}, {x, w, b}, {g}, true); };
    } else {
      f = [=, &keep] { keep = batch_norm(x, rm, rv, w, b, true); };
    }
  } else if (s.kind == "xent") {
    Tensor logits = pattern({d[0], d[1]}, 1, true);
    Tensor target = index_pattern({d[0]}, d[1], 2);
    outputs = [=] { return autograd::grad({F::cross_entropy(logits, target)}, {logits}); };
  } else if (s.kind == "emb_fwd" || s.kind == "emb_bwd") {
    Tensor idx = index_pattern({d[0], d[1]}, d[2], 1);
    Tensor w = pattern({d[2], d[3]}, 2, s.kind == "emb_bwd");
    if (s.kind == "emb_fwd") {
      f = [=, &keep] { keep = embedding(w, idx); };
    } else {
      Tensor out = embedding(w, idx), g = pattern(out.sizes(), 4);
      outputs = [=] { return autograd::grad({out}, {w}, {g}, true); };
    }
  } else if (s.kind == "lstm_cell") {
    // One step of one direction: ember::rnn_layer over a 1-step sequence (what nn::LSTM runs).
    const int64_t b = d[0], in = d[1], h = d[2];
    Tensor x = pattern({b, in}, 1, true), h0 = pattern({b, h}, 2, true), c0 = pattern({b, h}, 3, true);
    Tensor wih = pattern({4 * h, in}, 4, true), whh = pattern({4 * h, h}, 5, true);
    Tensor bih = pattern({4 * h}, 6, true), bhh = pattern({4 * h}, 7, true);
    Tensor gh = pattern({b, h}, 8), gc = pattern({b, h}, 9);
    outputs = [=] {
      RnnLayerResult res = rnn_layer(RnnMode::kLSTM, x.unsqueeze(0), h0.unsqueeze(0), c0.unsqueeze(0),
                                     {RnnDirectionWeights{wih, whh, bih, bhh}}, {});
      return autograd::grad({res.h_n.squeeze(0), res.c_n.squeeze(0)}, {x, h0, c0, wih, whh, bih, bhh}, {gh, gc});
    };
  } else if (s.kind == "attention") {
    // q, k, v [B, heads, L, d] as BERT's self-attention hands them over; no mask, no dropout.
    const Shape qs{d[0], d[1], d[2], d[3]};
    Tensor q = pattern(qs, 1, true), k = pattern(qs, 2, true), v = pattern(qs, 3, true), g = pattern(qs, 4);
    outputs = [=] { return autograd::grad({scaled_dot_product_attention(q, k, v)}, {q, k, v}, {g}); };
  } else {
    EMBER_FAIL("bench: unknown op kind ", s.kind);
  }
  if (outputs) {
    f = [&] { outputs(); };
  } else {
    outputs = [&] {
      f();
      return tensor_list{keep};
    };
  }
  bench::Checksum c;
  for (const Tensor& t : outputs()) {
    Tensor ct = t.contiguous();
    c.add(ct.data_ptr<float>(), ct.numel());
  }
  r.extra["check_sum"] = c.sum;
  r.extra["check_abs_sum"] = c.abs_sum;
  r.samples = bench::time_calls(f, p.reps, p.min_rep_s);
  bench::emit(a, r);
}

void run_ops(const Args& a) {
  bench::OpProtocol p = bench::op_protocol(a.quick);
  for (const auto& s : bench::op_specs(a.quick)) run_op(a, s, p);
}

// ---- per-op overhead --------------------------------------------------------------------------------

void run_overhead(const Args& a) {
  bench::OpProtocol p = bench::op_protocol(a.quick);
  auto row = [&](const std::string& name, const Shape& shape, bool grad, auto op) {
    Tensor x = pattern(shape, 1, grad), y = pattern(shape, 2, grad);
    Tensor keep;
    Record r = make_record(a, "overhead", "overhead", name, "[" + bench::dims_str({shape.begin(), shape.end()}, ",") + "]");
    r.unit = "us";
    keep = op(x, y);
    EMBER_CHECK(keep.requires_grad() == grad, "overhead: ", name, ": autograd recording is not what the row says");
    // The result (and with autograd its graph node) is released every call, as in a real step.
    r.samples = bench::time_calls([&] { keep = op(x, y); }, p.reps, p.min_rep_s);
    bench::emit(a, r);
  };
  auto add = [](const Tensor& x, const Tensor& y) { return x + y; };
  auto matmul1 = [](const Tensor& x, const Tensor& y) { return mm(x, y); };
  auto relu1 = [](const Tensor& x, const Tensor&) { return relu(x); };
  row("a + b (no autograd)", {1}, false, add);
  row("a + b (requires_grad)", {1}, true, add);
  row("relu(a) (requires_grad)", {1}, true, relu1);
  row("mm 1x1 (no autograd)", {1, 1}, false, matmul1);
  row("mm 1x1 (requires_grad)", {1, 1}, true, matmul1);
}

// ---- rows Ember cannot run yet (none today; kept for the next model) ------------------------------------------------------------------

[[maybe_unused]] void run_missing_model(const Args& a, const std::string& group, const std::string& name, const char* shape,
                       const std::string& missing) {
  bench::emit(a, bench::not_implemented(kFramework, a.case_name, "model", group, name, shape, missing));
}

// ---- dump-mnist --------------------------------------------------------------------------------------

/// Reads MNIST with Ember's IDX reader (plain or .gz) and writes the normalised images and the
/// labels both runners load.
void dump_mnist(const std::string& mnist_dir, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  for (bool train : {true, false}) {
    data::MNIST ds(mnist_dir, train);
    Tensor x = ((ds.images() - 0.1307) / 0.3081).contiguous();
    Tensor y = ds.targets().contiguous();
    std::string split = train ? "train" : "t10k";
    bench::write_binary(bench::mnist_dump_path(out_dir, split, "images"), x.data_ptr<float>(),
                        static_cast<size_t>(x.numel()) * sizeof(float));
    bench::write_binary(bench::mnist_dump_path(out_dir, split, "labels"), y.data_ptr<int64_t>(),
                        static_cast<size_t>(y.numel()) * sizeof(int64_t));
    std::fprintf(stderr, "dump-mnist: %s: %lld images\n", split.c_str(), static_cast<long long>(ds.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::compile_only_build("bench_models")) return 2;
  try {
    Args a = bench::parse_args(argc, argv);
    if (a.case_name.empty() || a.case_name == "--help") {
      bench::usage(argv[0]);
      std::fprintf(stderr, "       %s dump-mnist MNIST_DIR OUT_DIR\n       %s report RUNS.jsonl OUT_PREFIX [key=value...]\n",
                   argv[0], argv[0]);
      return 2;
    }
    if (a.case_name == "dump-mnist") {
      EMBER_CHECK(a.rest.size() == 2, "dump-mnist: expected MNIST_DIR OUT_DIR");
      dump_mnist(a.rest[0], a.rest[1]);
      return 0;
    }
    if (a.case_name == "pick-blas") {
      EMBER_CHECK(a.rest.size() == 1, "pick-blas: expected CALIBRATION.jsonl");
      return bench::pick_blas(a.rest[0]);
    }
    if (a.case_name == "report") {
      EMBER_CHECK(a.rest.size() >= 2, "report: expected RUNS.jsonl OUT_PREFIX [key=value ...]");
      return bench::write_report(a.rest[0], a.rest[1], std::vector<std::string>(a.rest.begin() + 2, a.rest.end()));
    }
    set_num_threads(a.threads);
    if (a.case_name == "mnist_b32") run_mnist(a, 32);
    else if (a.case_name == "mnist_b128") run_mnist(a, 128);
    else if (a.case_name == "catdog_step") run_catdog(a);
    else if (a.case_name == "bilstm_step") run_bilstm(a);
    else if (a.case_name == "bert_step") run_bert(a);
    else if (a.case_name == "wgan_critic_step") run_wgan(a);
    else if (a.case_name == "ops") run_ops(a);
    else if (a.case_name == "overhead") run_overhead(a);
    else {
      bench::usage(argv[0]);
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_bench_models: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
