// ember_bench_torch: the libtorch peer of ember_bench_models (bench/bench_models.cpp). Same cases,
// same command line, same shapes, batch order, protocols and JSON-lines records (all from
// bench/harness.hpp); the models are the tutorials' originals written with libtorch's C++ frontend,
// layer for layer what the Ember runner builds (BERT as Hugging Face's BertForSequenceClassification,
// the WGAN-GP critic with spectral normalisation written out: the C++ frontend has none).
//
//   ember_bench_torch CASE --data DUMP_DIR --threads 2 --json runs.jsonl [--quick] [--round R]
#define EMBER_BENCH_COUNT_ALLOCATIONS
#include "harness.hpp"

#include <torch/torch.h>

#include <cstring>

#include "compile_only.hpp"

using bench::Args;
using bench::Record;
namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

constexpr const char* kFramework = "libtorch";

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

void add_memory(Record& r, long base_rss_kb, const bench::AllocCounts& c, int64_t steps) {
  r.extra["peak_rss_kb"] = static_cast<double>(bench::peak_rss_kb());
  r.extra["base_rss_kb"] = static_cast<double>(base_rss_kb);
  if (steps > 0 && bench::allocation_counting_available()) {
    r.extra["allocs_small_per_step"] = static_cast<double>(c.small) / static_cast<double>(steps);
    r.extra["allocs_large_per_step"] = static_cast<double>(c.large) / static_cast<double>(steps);
    r.extra["large_bytes_per_step"] = static_cast<double>(c.large_bytes) / static_cast<double>(steps);
  }
}

torch::Tensor pattern(at::IntArrayRef shape, uint64_t seed, bool requires_grad = false) {
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  bench::fill_pattern(t.data_ptr<float>(), t.numel(), seed);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

torch::Tensor index_pattern(at::IntArrayRef shape, int64_t high, uint64_t seed) {
  torch::Tensor t = torch::empty(shape, torch::kInt64);
  bench::fill_indices(t.data_ptr<int64_t>(), t.numel(), high, seed);
  return t;
}

/// Untimed warm-up steps, then timed steps; allocations counted over the timed ones.
template <typename Step>
Record time_steps(const Args& a, Record r, Step&& step) {
  bench::StepProtocol p = bench::step_protocol(a.quick);
  long base_rss = bench::current_rss_kb();
  double first_loss = 0, last_loss = 0;
  for (int i = 0; i < p.warmup; ++i) first_loss = step();
  bench::start_counting_allocations();
  for (int i = 0; i < p.timed; ++i) {
    double t0 = bench::now_s();
    last_loss = step();
    r.samples.push_back(bench::now_s() - t0);
  }
  bench::AllocCounts counts = bench::stop_counting_allocations();
  r.extra["first_loss"] = first_loss;
  r.extra["last_loss"] = last_loss;
  add_memory(r, base_rss, counts, p.timed);
  return r;
}

// ---- tutorial 1: the MNIST CNN -----------------------------------------------------------------------

nn::Sequential mnist_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 3)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Flatten(), nn::Linear(1600, 50), nn::Linear(50, 10));
}

std::pair<torch::Tensor, torch::Tensor> load_split(const std::string& dir, const std::string& split) {
  int64_t n = bench::mnist_dump_count(dir, split);
  torch::Tensor x = torch::empty({n, 1, 28, 28}, torch::kFloat32);
  torch::Tensor y = torch::empty({n}, torch::kInt64);
  bench::read_mnist_dump(dir, split, x.data_ptr<float>(), y.data_ptr<int64_t>(), n);
  return {x, y};
}

void run_mnist(const Args& a, int64_t batch) {
  bench::MnistProtocol p = bench::mnist_protocol(batch, a.quick);
  auto [xtr, ytr] = load_split(a.data_dir, "train");
  auto [xte, yte] = load_split(a.data_dir, "t10k");
  long base_rss = bench::current_rss_kb();
  int64_t ntrain = std::min(p.train_images, xtr.size(0)), ntest = std::min(p.test_images, xte.size(0));
  std::vector<int64_t> order = bench::permutation(xtr.size(0), 0);
  order.resize(static_cast<size_t>(ntrain));
  torch::Tensor perm = torch::from_blob(order.data(), {ntrain}, torch::kInt64).clone();

  torch::manual_seed(0);
  nn::Sequential net = mnist_net();
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  net->train();
  bench::AllocCounts counts;
  torch::Tensor loss;
  double t0 = bench::now_s();
  int64_t step = 0;
  for (int64_t i = 0; i < ntrain; i += batch, ++step) {
    if (step == p.count_from) bench::start_counting_allocations();
    torch::Tensor idx = perm.slice(0, i, std::min(i + batch, ntrain));
    torch::Tensor x = xtr.index_select(0, idx), y = ytr.index_select(0, idx);
    opt.zero_grad();
    loss = F::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    if (step == p.count_from + p.count_steps - 1) counts = bench::stop_counting_allocations();
  }
  double t_train = bench::now_s() - t0;
  float final_loss = loss.item<float>();

  net->eval();
  int64_t correct = 0;
  t0 = bench::now_s();
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < ntest; i += batch) {
      int64_t j = std::min(i + batch, ntest);
      torch::Tensor logits = net->forward(xte.slice(0, i, j));
      correct += logits.argmax(1).eq(yte.slice(0, i, j)).sum().item<int64_t>();
    }
  }
  double t_eval = bench::now_s() - t0;
  double acc = static_cast<double>(correct) / static_cast<double>(ntest);

  Record tr = make_record(a, "model", "mnist-cnn", bench::mnist_row_name(true, ntrain, batch),
                          "60000x1x28x28, SGD lr 0.01 momentum 0.9");
  tr.samples = {t_train};
  tr.extra["final_loss"] = final_loss;
  tr.extra["test_acc"] = acc;
  add_memory(tr, base_rss, counts, p.count_steps);
  bench::emit(a, tr);
  Record ev = make_record(a, "model", "mnist-cnn", bench::mnist_row_name(false, ntest, batch), "10000x1x28x28, no_grad");
  ev.samples = {t_eval};
  ev.extra["test_acc"] = acc;
  bench::emit(a, ev);
}

// ---- tutorial 2: the cat/dog CNN ----------------------------------------------------------------------

void run_catdog(const Args& a) {
  torch::Tensor x = pattern({32, 3, 150, 150}, 11);
  torch::Tensor y = index_pattern({32}, 2, 12);
  torch::manual_seed(0);
  nn::Sequential net;
  int64_t in = 3;
  for (int64_t out : {32, 64, 128, 256}) {
    net->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)));
    net->push_back(nn::BatchNorm2d(out));
    net->push_back(nn::ReLU());
    net->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    in = out;
  }
  net->push_back(nn::Flatten());
  net->push_back(nn::Linear(256 * 9 * 9, 512));
  net->push_back(nn::ReLU());
  net->push_back(nn::Dropout(0.5));
  net->push_back(nn::Linear(512, 2));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(1e-4));
  net->train();
  bench::emit(a, time_steps(a, make_record(a, "model", "catdog-cnn", "train step B=32", bench::kCatdogShape), [&] {
                opt.zero_grad();
                torch::Tensor loss = F::cross_entropy(net->forward(x), y);
                loss.backward();
                opt.step();
                return loss.item<double>();
              }));
}

// ---- tutorial 3: the BiLSTM classifier and a small BERT encoder ----------------------------------------

struct BiLstmNet : nn::Module {
  nn::Embedding emb{nn::EmbeddingOptions(50000, 64).padding_idx(0)};
  nn::LSTM lstm{nn::LSTMOptions(64, 64).num_layers(2).batch_first(true).bidirectional(true).dropout(0.5)};
  nn::Dropout drop{0.5};
  nn::Linear fc1{128, 64}, fc2{64, 2};
  BiLstmNet() {
    register_module("emb", emb);
    register_module("lstm", lstm);
    register_module("drop", drop);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    emb->weight.set_requires_grad(false);  // Embedding.from_pretrained(vectors, freeze=True)
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    torch::Tensor out = std::get<0>(lstm->forward(emb->forward(ids)));
    // The original reads the last time step (lstm_out[:, -1, :]).
    return fc2->forward(torch::relu(fc1->forward(drop->forward(out.select(1, -1)))));
  }
};

void run_bilstm(const Args& a) {
  torch::Tensor ids = index_pattern({32, 100}, 50000, 21);
  torch::Tensor y = index_pattern({32}, 2, 22);
  torch::manual_seed(0);
  auto net = std::make_shared<BiLstmNet>();
  std::vector<torch::Tensor> params;
  for (auto& p : net->parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
  net->train();
  bench::emit(a, time_steps(a, make_record(a, "model", "bilstm", "train step B=32 L=100", bench::kBilstmShape), [&] {
                opt.zero_grad();
                torch::Tensor loss = F::cross_entropy(net->forward(ids), y);
                loss.backward();
                opt.step();
                return loss.item<double>();
              }));
}

/// The small BERT classifier of tutorial 3 part 2 written out as Hugging Face's
/// BertForSequenceClassification computes it (and as Ember's models::BertForSequenceClassification
/// does): word + position + token-type embeddings, LayerNorm (eps 1e-12), dropout; 4 post-norm
/// encoder layers (separate query/key/value projections, softmax(QK^T/sqrt d) with dropout on the
/// weights, dense + dropout + residual + LayerNorm, FFN 256-1024 with exact GELU and no dropout
/// inside, dense + dropout + residual + LayerNorm); tanh pooler on [CLS], dropout, 2-way classifier.
/// Weights N(0, 0.02), biases 0, as transformers initialises them. (torch::nn::TransformerEncoderLayer
/// is not used: it has a dropout after the FFN activation and a fused in-projection, so it would
/// compute a different model.)
struct BertLayerPeer : nn::Module {
  static constexpr int64_t kHidden = 256, kHeads = 4, kHeadDim = 64;
  nn::Linear query{kHidden, kHidden}, key{kHidden, kHidden}, value{kHidden, kHidden}, attn_out{kHidden, kHidden};
  nn::Linear inter{kHidden, 1024}, out{1024, kHidden};
  nn::LayerNorm ln1{nn::LayerNormOptions({kHidden}).eps(1e-12)}, ln2{nn::LayerNormOptions({kHidden}).eps(1e-12)};
  BertLayerPeer() {
    register_module("query", query);
    register_module("key", key);
    register_module("value", value);
    register_module("attn_out", attn_out);
    register_module("inter", inter);
    register_module("out", out);
    register_module("ln1", ln1);
    register_module("ln2", ln2);
  }
  torch::Tensor drop(const torch::Tensor& t) { return F::dropout(t, F::DropoutFuncOptions().p(0.1).training(is_training())); }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, L, H]
    int64_t b = x.size(0), l = x.size(1);
    auto heads = [&](const torch::Tensor& t) { return t.view({b, l, kHeads, kHeadDim}).transpose(1, 2); };
    torch::Tensor q = heads(query->forward(x)), k = heads(key->forward(x)), v = heads(value->forward(x));
    torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(kHeadDim));
    torch::Tensor ctx = torch::matmul(drop(torch::softmax(scores, -1)), v).transpose(1, 2).reshape({b, l, kHidden});
    torch::Tensor a = ln1->forward(drop(attn_out->forward(ctx)) + x);
    return ln2->forward(drop(out->forward(torch::gelu(inter->forward(a)))) + a);
  }
};

struct BertPeer : nn::Module {
  static constexpr int64_t kHidden = 256, kLayers = 4;
  nn::Embedding word{21128, kHidden}, pos{512, kHidden}, type{2, kHidden};
  nn::LayerNorm norm{nn::LayerNormOptions({kHidden}).eps(1e-12)};
  nn::ModuleList layers;
  nn::Linear pooler{kHidden, kHidden}, classifier{kHidden, 2};
  BertPeer() {
    register_module("word", word);
    register_module("pos", pos);
    register_module("type", type);
    register_module("norm", norm);
    for (int64_t i = 0; i < kLayers; ++i) layers->push_back(BertLayerPeer());
    register_module("layers", layers);
    register_module("pooler", pooler);
    register_module("classifier", classifier);
    torch::NoGradGuard ng;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* lin = m->as<nn::Linear>()) {
        lin->weight.normal_(0, 0.02);
        lin->bias.zero_();
      } else if (auto* e = m->as<nn::Embedding>()) {
        e->weight.normal_(0, 0.02);
      }
    }
  }
  torch::Tensor drop(const torch::Tensor& t) { return F::dropout(t, F::DropoutFuncOptions().p(0.1).training(is_training())); }
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& types) {
    torch::Tensor positions = torch::arange(ids.size(1), torch::kInt64);
    torch::Tensor h = word->forward(ids) + type->forward(types) + pos->forward(positions).unsqueeze(0);
    h = drop(norm->forward(h));
    for (const auto& layer : *layers) h = layer->as<BertLayerPeer>()->forward(h);
    return classifier->forward(drop(torch::tanh(pooler->forward(h.select(1, 0)))));
  }
};

void run_bert(const Args& a) {
  torch::Tensor ids = index_pattern({16, 128}, 21128, 31);
  torch::Tensor y = index_pattern({16}, 2, 32);
  torch::Tensor types = torch::zeros({16, 128}, torch::kInt64);
  torch::manual_seed(0);
  auto net = std::make_shared<BertPeer>();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(2e-5));  // weight_decay 1e-2, as Ember's
  net->train();
  bench::emit(a, time_steps(a, make_record(a, "model", "bert", "train step B=16 L=128", bench::kBertShape), [&] {
                opt.zero_grad();
                torch::Tensor loss = F::cross_entropy(net->forward(ids, types), y);
                loss.backward();
                opt.step();
                return loss.item<double>();
              }));
}

// ---- tutorial 4: the WGAN-GP critic ---------------------------------------------------------------------

/// Spectral normalisation as torch.nn.utils.spectral_norm does it in training mode: one power
/// iteration on the flattened weight (u, v without gradient), then W / sigma with sigma
/// differentiable. (libtorch's C++ frontend has no spectral_norm.)
struct SpectralNorm {
  torch::Tensor u;
  torch::Tensor apply(const torch::Tensor& w) {
    torch::Tensor mat = w.reshape({w.size(0), -1});
    torch::Tensor v;
    {
      torch::NoGradGuard ng;
      if (!u.defined()) u = F::normalize(torch::randn({w.size(0)}), F::NormalizeFuncOptions().dim(0).eps(1e-12));
      v = F::normalize(torch::mv(mat.t(), u), F::NormalizeFuncOptions().dim(0).eps(1e-12));
      u = F::normalize(torch::mv(mat, v), F::NormalizeFuncOptions().dim(0).eps(1e-12));
    }
    return w / torch::dot(u, torch::mv(mat, v));
  }
};

struct Critic : nn::Module {
  nn::Embedding label{10, 784};
  nn::Conv2d c1{nn::Conv2dOptions(2, 64, 4).stride(2).padding(1)};
  nn::Conv2d c2{nn::Conv2dOptions(64, 128, 4).stride(2).padding(1)};
  nn::Conv2d c3{nn::Conv2dOptions(128, 256, 3).stride(1).padding(1)};
  nn::Linear f1{12544, 1024}, f2{1024, 1};
  SpectralNorm sn2, sn3, sn4, sn5;
  Critic() {
    register_module("label", label);
    register_module("c1", c1);
    register_module("c2", c2);
    register_module("c3", c3);
    register_module("f1", f1);
    register_module("f2", f2);
    // The example's weights_init: conv and linear weights N(0, 0.02), linear biases 0.
    torch::NoGradGuard ng;
    for (torch::Tensor w : {c1->weight, c2->weight, c3->weight, f1->weight, f2->weight}) w.normal_(0, 0.02);
    f1->bias.zero_();
    f2->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y) {
    auto act = [&](const torch::Tensor& t) { return F::dropout(F::leaky_relu(t, F::LeakyReLUFuncOptions().negative_slope(0.2)),
                                                               F::DropoutFuncOptions().p(0.3).training(is_training())); };
    torch::Tensor h = torch::cat({x, label->forward(y).view({-1, 1, 28, 28})}, 1);
    h = act(c1->forward(h));
    h = act(F::conv2d(h, sn2.apply(c2->weight), F::Conv2dFuncOptions().bias(c2->bias).stride(2).padding(1)));
    h = act(F::conv2d(h, sn3.apply(c3->weight), F::Conv2dFuncOptions().bias(c3->bias).stride(1).padding(1)));
    h = act(F::linear(h.flatten(1), sn4.apply(f1->weight), f1->bias));
    return F::linear(h, sn5.apply(f2->weight), f2->bias);
  }
};

void run_wgan(const Args& a) {
  const int64_t b = 128;
  torch::Tensor real = pattern({b, 1, 28, 28}, 41), fake = pattern({b, 1, 28, 28}, 42);
  torch::Tensor y = index_pattern({b}, 10, 43);
  torch::manual_seed(0);
  auto critic = std::make_shared<Critic>();
  torch::optim::Adam opt(critic->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  critic->train();
  bench::emit(a, time_steps(a, make_record(a, "model", "wgan-gp", "critic step + gradient penalty B=128", bench::kWganShape),
                            [&] {
                              // examples/cgan_mnist's order: D(real), D(fake), then the penalty.
                              torch::Tensor d_real = critic->forward(real, y).mean(), d_fake = critic->forward(fake, y).mean();
                              torch::Tensor alpha = torch::rand({b, 1, 1, 1});
                              torch::Tensor mix = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(true);
                              torch::Tensor d_mix = critic->forward(mix, y);
                              torch::Tensor g = torch::autograd::grad({d_mix}, {mix}, {torch::ones_like(d_mix)},
                                                                      /*retain_graph=*/true, /*create_graph=*/true)[0];
                              torch::Tensor gp = (g.view({b, -1}).norm(2, 1) - 1).pow(2).mean();
                              torch::Tensor loss = d_fake - d_real + 10 * gp;
                              opt.zero_grad();
                              loss.backward();
                              opt.step();
                              return loss.item<double>();
                            }));
}

// ---- ops ------------------------------------------------------------------------------------------------

void run_op(const Args& a, const bench::OpSpec& s, const bench::OpProtocol& p) {
  Record r = make_record(a, "op", s.group, s.name, s.shape);
  r.unit = s.unit;
  r.work = s.work;
  const auto& d = s.dims;
  std::function<void()> f;
  std::function<std::vector<torch::Tensor>()> outputs;
  torch::Tensor keep;
  using TL = std::vector<torch::Tensor>;
  auto grads = [](const torch::Tensor& out, const TL& inputs, const torch::Tensor& g) {
    return [=] { return torch::autograd::grad({out}, inputs, {g}, /*retain_graph=*/true); };
  };
  if (s.kind == "gemm") {
    torch::Tensor x = pattern({d[0], d[1]}, 1), w = pattern({d[1], d[2]}, 2);
    f = [=, &keep] { keep = torch::mm(x, w); };
  } else if (s.kind == "copy") {
    torch::Tensor x = pattern({d[0]}, 1), y = torch::empty({d[0]}, torch::kFloat32);
    f = [=, &keep]() mutable { keep = y.copy_(x); };
  } else if (s.kind == "linear") {
    torch::Tensor x = pattern({d[0], d[1]}, 1), w = pattern({d[2], d[1]}, 2), b = pattern({d[2]}, 3);
    f = [=, &keep] { keep = torch::linear(x, w, b); };
  } else if (s.kind == "conv_fwd" || s.kind == "conv_bwd") {
    bool bwd = s.kind == "conv_bwd", input_grad = bwd && d[7];
    torch::Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, input_grad), w = pattern({d[4], d[1], d[5], d[5]}, 2, bwd),
                  b = pattern({d[4]}, 3, bwd);
    if (!bwd) {
      f = [=, &keep] { keep = torch::conv2d(x, w, b, 1, d[6]); };
    } else {
      torch::Tensor out = torch::conv2d(x, w, b, 1, d[6]);
      outputs = grads(out, input_grad ? TL{x, w, b} : TL{w, b}, pattern(out.sizes(), 4));
    }
  } else if (s.kind == "maxpool_fwd") {
    torch::Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1);
    f = [=, &keep] { keep = torch::max_pool2d(x, 2); };
  } else if (s.kind == "maxpool_bwd") {
    torch::Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, true);
    torch::Tensor out = torch::max_pool2d(x, 2);
    outputs = grads(out, {x}, pattern(out.sizes(), 4));
  } else if (s.kind == "bn_fwd" || s.kind == "bn_bwd") {
    bool bwd = s.kind == "bn_bwd";
    torch::Tensor x = pattern({d[0], d[1], d[2], d[3]}, 1, bwd), w = torch::ones({d[1]}), b = torch::zeros({d[1]});
    torch::Tensor rm = torch::zeros({d[1]}), rv = torch::ones({d[1]});
    if (bwd) {
      w.requires_grad_(true);
      b.requires_grad_(true);
      torch::Tensor out = torch::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, false);
      outputs = grads(out, {x, w, b}, pattern(out.sizes(), 4));
    } else {
      f = [=, &keep] { keep = torch::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, false); };
    }
  } else if (s.kind == "xent") {
    torch::Tensor logits = pattern({d[0], d[1]}, 1, true);
    torch::Tensor target = index_pattern({d[0]}, d[1], 2);
    outputs = [=] { return torch::autograd::grad({F::cross_entropy(logits, target)}, {logits}); };
  } else if (s.kind == "emb_fwd" || s.kind == "emb_bwd") {
    torch::Tensor idx = index_pattern({d[0], d[1]}, d[2], 1);
    torch::Tensor w = pattern({d[2], d[3]}, 2, s.kind == "emb_bwd");
    if (s.kind == "emb_fwd") {
      f = [=, &keep] { keep = torch::embedding(w, idx); };
    } else {
      torch::Tensor out = torch::embedding(w, idx);
      outputs = grads(out, {w}, pattern(out.sizes(), 4));
    }
  } else if (s.kind == "lstm_cell") {
    int64_t b = d[0], in = d[1], h = d[2];
    torch::Tensor x = pattern({b, in}, 1, true), h0 = pattern({b, h}, 2, true), c0 = pattern({b, h}, 3, true);
    torch::Tensor wih = pattern({4 * h, in}, 4, true), whh = pattern({4 * h, h}, 5, true);
    torch::Tensor bih = pattern({4 * h}, 6, true), bhh = pattern({4 * h}, 7, true);
    torch::Tensor gh = pattern({b, h}, 8), gc = pattern({b, h}, 9);
    outputs = [=] {
      auto hc = torch::lstm_cell(x, {h0, c0}, wih, whh, bih, bhh);
      return torch::autograd::grad({std::get<0>(hc), std::get<1>(hc)}, {x, h0, c0, wih, whh, bih, bhh}, {gh, gc});
    };
  } else if (s.kind == "attention") {
    torch::Tensor q = pattern({d[0], d[1], d[2], d[3]}, 1, true), k = pattern({d[0], d[1], d[2], d[3]}, 2, true),
                  v = pattern({d[0], d[1], d[2], d[3]}, 3, true), g = pattern({d[0], d[1], d[2], d[3]}, 4);
    double scale = 1.0 / std::sqrt(static_cast<double>(d[3]));
    outputs = [=] {
      torch::Tensor o = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale, -1), v);
      return torch::autograd::grad({o}, {q, k, v}, {g});
    };
  } else {
    throw std::runtime_error("bench: unknown op kind " + s.kind);
  }
  if (outputs) {
    f = [&] { outputs(); };
  } else {
    outputs = [&] {
      f();
      return TL{keep};
    };
  }
  bench::Checksum c;
  for (const torch::Tensor& t : outputs()) {
    torch::Tensor ct = t.contiguous();
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

void run_overhead(const Args& a) {
  bench::OpProtocol p = bench::op_protocol(a.quick);
  auto row = [&](const std::string& name, std::vector<int64_t> shape, bool grad, auto op) {
    torch::Tensor x = pattern(shape, 1, grad), y = pattern(shape, 2, grad);
    torch::Tensor keep;
    Record r = make_record(a, "overhead", "overhead", name, "[" + bench::dims_str(shape, ",") + "]");
    r.unit = "us";
    keep = op(x, y);
    if (keep.requires_grad() != grad)
      throw std::runtime_error("overhead: " + name + ": autograd recording is not what the row says");
    r.samples = bench::time_calls([&] { keep = op(x, y); }, p.reps, p.min_rep_s);
    bench::emit(a, r);
  };
  auto add = [](const torch::Tensor& x, const torch::Tensor& y) { return x + y; };
  auto matmul1 = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::mm(x, y); };
  auto relu1 = [](const torch::Tensor& x, const torch::Tensor&) { return torch::relu(x); };
  row("a + b (no autograd)", {1}, false, add);
  row("a + b (requires_grad)", {1}, true, add);
  row("relu(a) (requires_grad)", {1}, true, relu1);
  row("mm 1x1 (no autograd)", {1, 1}, false, matmul1);
  row("mm 1x1 (requires_grad)", {1, 1}, true, matmul1);
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::compile_only_build("bench_torch")) return 2;
  try {
    Args a = bench::parse_args(argc, argv);
    if (a.case_name.empty()) {
      bench::usage(argv[0]);
      return 2;
    }
    if (a.case_name == "version") {
      std::printf("%d.%d.%d\n", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
      return 0;
    }
    torch::set_num_threads(a.threads);
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
    std::fprintf(stderr, "ember_bench_torch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
