#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "golden_json.hpp"
#include "ember/nn/attention_pool.hpp"
#include "ember/nn/nn.hpp"
#include "ember/nn/rnn.hpp"
#include "ember/ops/rnn.hpp"

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// nn::LSTM, nn::GRU (ops/rnn.hpp's fused and composite layers) and nn::AttentionPooling:
// PyTorch 1.13 goldens (tests/golden/rnn/rnn.json, written by tests/golden/make_rnn_golden.py),
// the packed-sequence semantics of lengths, fused == composite, gradcheck and gradgradcheck in
// float64, dropout between layers, errors.

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using ojson = nlohmann::ordered_json;
namespace nn = ember::nn;

Tensor rnn_from_json(const ojson& j, ember::DType dt = ember::kFloat64) { return ember_test::tensor_from_json(j, dt); }

/// Empty when `a` matches `e` within tol + tol |e|; otherwise what differs.
std::string rnn_compare(const Tensor& a, const ojson& e, const std::string& what, double tol) {
  return ember_test::compare_to_golden(a, e, what, ember_test::Tolerance::sum(tol));
}

const ojson& rnn_golden() {
  static const ojson j = [] {
    std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/golden/rnn/rnn.json");
    return f ? ojson::parse(f) : ojson();
  }();
  return j;
}

std::shared_ptr<nn::detail::RNNBase> make_rnn(const std::string& mode, const ojson& o) {
  auto set = [&](auto opts) {
    return opts.num_layers(o.at("num_layers").get<int64_t>())
        .bias(o.at("bias").get<bool>())
        .batch_first(o.at("batch_first").get<bool>())
        .bidirectional(o.at("bidirectional").get<bool>());
  };
  const int64_t I = o.at("input_size"), H = o.at("hidden_size");
  if (mode == "lstm") return std::make_shared<nn::LSTM>(set(nn::LSTMOptions(I, H)));
  return std::make_shared<nn::GRU>(set(nn::GRUOptions(I, H)));
}

/// (output, h_n, c_n) of an LSTM or GRU held as RNNBase.
std::tuple<Tensor, Tensor, Tensor> run_rnn(nn::detail::RNNBase& m, const Tensor& x, const Tensor& h0, const Tensor& c0,
                                           const Tensor& lengths) {
  if (auto* l = dynamic_cast<nn::LSTM*>(&m)) {
    std::optional<std::tuple<Tensor, Tensor>> hx;
    if (h0.defined()) hx = std::make_tuple(h0, c0);
    auto [out, st] = l->forward(x, hx, lengths);
    return {out, std::get<0>(st), std::get<1>(st)};
  }
  auto [out, h] = dynamic_cast<nn::GRU&>(m).forward(x, h0, lengths);
  return {out, h, Tensor()};
}

/// Runs one golden case in `dt` with implementation `impl`; every mismatch is a failed CHECK.
void check_golden_case(const ojson& c, ember::DType dt, ember::RnnImpl impl, double tol) {
  const std::string name = c.at("name").get<std::string>() + (dt == ember::kFloat32 ? " (float32)" : "") +
                           (impl == ember::RnnImpl::kComposite ? " (composite)" : "");
  auto m = make_rnn(c.at("mode"), c.at("options"));
  m->impl = impl;
  m->to(dt);
  std::vector<std::string> names, golden_names;
  for (auto& [k, v] : c.at("params").items()) golden_names.push_back(k);
  tensor_list params;
  for (auto& [pname, p] : m->named_parameters()) {
    names.push_back(pname);
    params.push_back(p);
    if (!c.at("params").contains(pname)) continue;
    ember::NoGradGuard ng;
    p.copy_(rnn_from_json(c.at("params").at(pname), dt));
  }
  CHECK_MESSAGE(names == golden_names, name, ": parameter names/order differ from PyTorch's");
  Tensor x = rnn_from_json(c.at("input"), dt).requires_grad_(true);
  Tensor h0 = c.contains("h0") ? rnn_from_json(c.at("h0"), dt).requires_grad_(true) : Tensor();
  Tensor c0 = c.contains("c0") ? rnn_from_json(c.at("c0"), dt).requires_grad_(true) : Tensor();
  Tensor lengths = c.contains("lengths") ? ember::tensor(c.at("lengths").get<std::vector<int64_t>>()) : Tensor();
  auto [out, hn, cn] = run_rnn(*m, x, h0, c0, lengths);
  std::string msg = rnn_compare(out, c.at("output"), name + " output", tol);
  CHECK_MESSAGE(msg.empty(), msg);
  msg = rnn_compare(hn, c.at("h_n"), name + " h_n", tol);
  CHECK_MESSAGE(msg.empty(), msg);
  tensor_list outs{out, hn}, gouts{rnn_from_json(c.at("grad_output"), dt), rnn_from_json(c.at("grad_h_n"), dt)};
  if (c.contains("c_n")) {
    msg = rnn_compare(cn, c.at("c_n"), name + " c_n", tol);
    CHECK_MESSAGE(msg.empty(), msg);
    outs.push_back(cn);
    gouts.push_back(rnn_from_json(c.at("grad_c_n"), dt));
  }
  tensor_list wrt{x};
  std::vector<std::string> wrt_names{"input"};
  if (h0.defined()) wrt.push_back(h0), wrt_names.push_back("h0");
  if (c0.defined()) wrt.push_back(c0), wrt_names.push_back("c0");
  for (size_t i = 0; i < params.size(); ++i) wrt.push_back(params[i]), wrt_names.push_back(names[i]);
  tensor_list grads = ember::autograd::grad(outs, wrt, gouts);
  for (size_t i = 0; i < wrt.size(); ++i) {
    msg = rnn_compare(grads[i], c.at("grads").at(wrt_names[i]), name + " grad of " + wrt_names[i], tol);
    CHECK_MESSAGE(msg.empty(), msg);
  }
}

/// Random float64 tensor (seeded through Ember's generator).
Tensor rnd(const ember::Shape& s) { return ember::randn(s, ember::kFloat64); }

/// Everything an RNN returns, flattened into one vector (for gradcheck).
Tensor flat_all(const Tensor& out, const Tensor& hn, const Tensor& cn) {
  tensor_list parts{out.reshape({-1}), hn.reshape({-1})};
  if (cn.defined()) parts.push_back(cn.reshape({-1}));
  return ember::cat(parts, 0);
}

}  // namespace

TEST_CASE("nn::LSTM / nn::GRU: PyTorch 1.13 goldens (outputs, states, gradients of inputs and every parameter)") {
  const ojson& g = rnn_golden();
  if (g.is_null()) {
    MESSAGE("tests/golden/rnn/rnn.json not found (define EMBER_SOURCE_DIR); golden cases skipped");
    return;
  }
  int n = 0;
  for (const ojson& c : g.at("cases")) {
    ++n;
    check_golden_case(c, ember::kFloat64, ember::RnnImpl::kAuto, 1e-9);
    check_golden_case(c, ember::kFloat64, ember::RnnImpl::kComposite, 1e-9);
    check_golden_case(c, ember::kFloat32, ember::RnnImpl::kAuto, 2e-4);
  }
  CHECK(n == 14);
}

TEST_CASE("nn::LSTM / nn::GRU: parameter names, shapes, initialisation range, repr") {
  ember::manual_seed(3);
  nn::LSTM lstm(nn::LSTMOptions(5, 4).num_layers(2).bidirectional(true).batch_first(true).dropout(0.5));
  std::vector<std::string> expect;
  for (std::string l : {"0", "1"})
    for (std::string sfx : {"", "_reverse"})
      for (std::string p : {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"}) expect.push_back(p + l + sfx);
  CHECK(lstm.state_dict().keys() == expect);
  CHECK(lstm.weights(0, 0).w_ih.sizes() == ember::Shape{16, 5});
  CHECK(lstm.weights(1, 1).w_ih.sizes() == ember::Shape{16, 8});  // layer 1 reads both directions
  CHECK(lstm.weights(1, 1).w_hh.sizes() == ember::Shape{16, 4});
  CHECK(lstm.weights(0, 1).b_hh.sizes() == ember::Shape{16});
  for (auto& p : lstm.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.abs().max().item<double>() <= 0.5);  // U(-1/sqrt(4), 1/sqrt(4))
  }
  CHECK(lstm.weights(0, 0).w_ih.abs().max().item<double>() > 0.3);  // not all tiny
  CHECK(lstm.repr() == "LSTM(5, 4, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)");
  nn::GRU gru(nn::GRUOptions(3, 2).bias(false));
  CHECK(gru.state_dict().keys() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
  CHECK(gru.weights(0, 0).w_ih.sizes() == ember::Shape{6, 3});
  CHECK(gru.repr() == "GRU(3, 2, bias=False)");
  CHECK(lstm.num_parameters() == 2 * (16 * 5 + 16 * 4 + 32) + 2 * (16 * 8 + 16 * 4 + 32));
}

TEST_CASE("nn::LSTM / nn::GRU: lengths behave like packing each sequence on its own") {
  // Each sequence of a padded batch must give exactly what it gives alone, cut to its length:
  // outputs past the length are zero and h_n / c_n are the states at the true end (the reverse
  // direction starts at the true last step).
  ember::manual_seed(11);
  for (const char* mode : {"lstm", "gru"}) {
    for (auto impl : {ember::RnnImpl::kAuto, ember::RnnImpl::kComposite}) {
      CAPTURE(mode);
      ojson o = {{"input_size", 3}, {"hidden_size", 4}, {"num_layers", 2}, {"bias", true}, {"batch_first", true},
                 {"bidirectional", true}};
      auto m = make_rnn(mode, o);
      m->impl = impl;
      m->to(ember::kFloat64);
      const int64_t T = 6;
      std::vector<int64_t> len{4, 6, 1, 0, 3};
      const int64_t B = static_cast<int64_t>(len.size());
      Tensor x = rnd({B, T, 3});
      Tensor h0 = rnd({4, B, 4}), c0 = rnd({4, B, 4});
      bool lstm = std::string(mode) == "lstm";
      auto [out, hn, cn] = run_rnn(*m, x, h0, lstm ? c0 : Tensor(), ember::tensor(len));
      CHECK(out.sizes() == ember::Shape{B, T, 8});
      CHECK(hn.sizes() == ember::Shape{4, B, 4});
      for (int64_t b = 0; b < B; ++b) {
        CAPTURE(b);
        Tensor tail = out.select(0, b).narrow(0, len[b], T - len[b]);
        CHECK(tail.abs().sum().item<double>() == 0.0);
        Tensor hb = h0.narrow(1, b, 1).contiguous(), cb = c0.narrow(1, b, 1).contiguous();
        if (len[b] == 0) {  // nothing to run: the initial state comes back
          CHECK((hn.narrow(1, b, 1) - hb).abs().max().item<double>() == 0.0);
          if (lstm) CHECK((cn.narrow(1, b, 1) - cb).abs().max().item<double>() == 0.0);
          continue;
        }
        auto [o1, h1, c1] = run_rnn(*m, x.narrow(0, b, 1).narrow(1, 0, len[b]), hb, lstm ? cb : Tensor(), Tensor());
        CHECK((out.narrow(0, b, 1).narrow(1, 0, len[b]) - o1).abs().max().item<double>() < 1e-12);
        CHECK((hn.narrow(1, b, 1) - h1).abs().max().item<double>() < 1e-12);
        if (lstm) CHECK((cn.narrow(1, b, 1) - c1).abs().max().item<double>() < 1e-12);
      }
    }
  }
}

TEST_CASE("rnn_layer: the fused CPU kernels equal the composite ops (forward and every gradient)") {
  ember::manual_seed(5);
  // The large size has enough work for the two directions to run on two threads.
  for (bool large : {false, true})
  for (auto mode : {ember::RnnMode::kLSTM, ember::RnnMode::kGRU}) {
    for (int D : {1, 2}) {
      for (bool with_len : {false, true}) {
        for (bool bias : {true, false}) {
          if (large && (D == 1 || !bias)) continue;
          CAPTURE(large);
          CAPTURE(ember::rnn_mode_name(mode));
          CAPTURE(D);
          CAPTURE(with_len);
          CAPTURE(bias);
          const int64_t T = large ? 16 : 7, B = large ? 8 : 4, I = 5, H = large ? 32 : 3;
          const int64_t G = ember::rnn_gate_count(mode) * H;
          auto leaf = [](Tensor t) { return t.requires_grad_(true); };
          Tensor x = leaf(rnd({T, B, I})), h0 = leaf(rnd({D, B, H}));
          Tensor c0 = mode == ember::RnnMode::kLSTM ? leaf(rnd({D, B, H})) : Tensor();
          std::vector<ember::RnnDirectionWeights> w(D);
          tensor_list wrt{x, h0};
          if (c0.defined()) wrt.push_back(c0);
          for (auto& p : w) {
            p.w_ih = leaf(rnd({G, I}));
            p.w_hh = leaf(rnd({G, H}));
            if (bias) p.b_ih = leaf(rnd({G})), p.b_hh = leaf(rnd({G}));
            for (auto* t : {&p.w_ih, &p.w_hh, &p.b_ih, &p.b_hh})
              if (t->defined()) wrt.push_back(*t);
          }
          std::vector<int64_t> len;
          if (with_len) len = large ? std::vector<int64_t>{16, 2, 0, 5, 9, 16, 1, 11} : std::vector<int64_t>{7, 2, 0, 5};
          auto run = [&](ember::RnnImpl impl) {
            auto r = ember::rnn_layer(mode, x, h0, c0, w, len, impl);
            Tensor all = flat_all(r.output, r.h_n, r.c_n);
            Tensor v = ember::sin(ember::arange(ember::Scalar(all.numel()), ember::kFloat64));
            tensor_list g = ember::autograd::grad({all}, wrt, {v});
            g.insert(g.begin(), all.detach());
            return g;
          };
          tensor_list a = run(ember::RnnImpl::kAuto), b = run(ember::RnnImpl::kComposite);
          for (size_t i = 0; i < a.size(); ++i) {
            CAPTURE(i);
            CHECK((a[i] - b[i]).abs().max().item<double>() < 1e-11 * (1 + b[i].abs().max().item<double>()));
          }
        }
      }
    }
  }
}

TEST_CASE("nn::LSTM / nn::GRU: gradcheck and gradgradcheck in float64 (bidirectional, lengths, initial states)") {
  ember::manual_seed(7);
  for (const char* mode : {"lstm", "gru"}) {
    CAPTURE(mode);
    bool lstm = std::string(mode) == "lstm";
    // Bidirectional with lengths (full, partial, 1) and initial states: first order on B = 3,
    // second order on a smaller batch (every element of every input and of the grad_output is
    // perturbed, through a recomputed composite graph, so it is the slow part).
    for (int64_t B : {3, 2}) {
      CAPTURE(B);
      const int64_t I = B == 3 ? 2 : 1;
      ojson o = {{"input_size", I}, {"hidden_size", 2}, {"num_layers", 1}, {"bias", true}, {"batch_first", true},
                 {"bidirectional", true}};
      auto m = make_rnn(mode, o);
      m->to(ember::kFloat64);
      Tensor len = B == 3 ? ember::tensor<int64_t>({3, 1, 2}) : ember::tensor<int64_t>({1, 3});
      Tensor x = rnd({B, 3, I}).requires_grad_(true);
      Tensor h0 = rnd({2, B, 2}).requires_grad_(true);
      Tensor c0 = rnd({2, B, 2}).requires_grad_(true);
      tensor_list in{x, h0};
      if (lstm) in.push_back(c0);
      for (auto& p : m->parameters()) in.push_back(p);
      auto f = [&](const tensor_list& t) {
        // For the second order the input is not a leaf (the recomputed graph must stop at it).
        Tensor xin = B == 2 ? ember::mul(t[0], ember::Scalar(2.0)) : t[0];
        auto [out, hn, cn] = run_rnn(*m, xin, t[1], lstm ? t[2] : Tensor(), len);
        return flat_all(out, hn, cn);
      };
      if (B == 3) {
        CHECK_GRADCHECK(f, in);
      } else {
        auto r = ember::autograd::gradgradcheck(f, in);
        CHECK_MESSAGE(r.ok, r.message);
      }
    }
    // Two layers (the second reads the first's packed output), no lengths, no initial state.
    ojson o2 = {{"input_size", 2}, {"hidden_size", 2}, {"num_layers", 2}, {"bias", true}, {"batch_first", false},
                {"bidirectional", true}};
    auto m2 = make_rnn(mode, o2);
    m2->to(ember::kFloat64);
    tensor_list in2{rnd({3, 2, 2}).requires_grad_(true)};
    for (auto& p : m2->parameters()) in2.push_back(p);
    auto f2 = [&](const tensor_list& t) {
      auto [out, hn, cn] = run_rnn(*m2, t[0], Tensor(), Tensor(), Tensor());
      return flat_all(out, hn, cn);
    };
    CHECK_GRADCHECK(f2, in2);
    // Second order through two stacked layers, on the smallest sizes.
    ojson o3 = o2;
    o3["input_size"] = 1;
    o3["hidden_size"] = 1;
    auto m3 = make_rnn(mode, o3);
    m3->to(ember::kFloat64);
    tensor_list in3{rnd({2, 1, 1}).requires_grad_(true)};
    for (auto& p : m3->parameters()) in3.push_back(p);
    auto f3 = [&](const tensor_list& t) {
      auto [out, hn, cn] = run_rnn(*m3, t[0], Tensor(), Tensor(), Tensor());
      return flat_all(out, hn, cn);
    };
    auto r3 = ember::autograd::gradgradcheck(f3, in3);
    CHECK_MESSAGE(r3.ok, r3.message);
  }
}

TEST_CASE("nn::LSTM: dropout acts between layers, in training mode only") {
  ember::manual_seed(13);
  Tensor x = ember::randn({4, 3, 5});
  nn::LSTM one(nn::LSTMOptions(5, 6).dropout(0.5));  // one layer: nothing between layers
  auto [a1, s1] = one.forward(x);
  one.eval();
  auto [b1, t1] = one.forward(x);
  CHECK((a1 - b1).abs().max().item<double>() == 0.0);

  nn::LSTM two(nn::LSTMOptions(5, 6).num_layers(2).dropout(0.5));
  two.eval();
  auto [e1, u1] = two.forward(x);
  auto [e2, u2] = two.forward(x);
  CHECK((e1 - e2).abs().max().item<double>() == 0.0);
  two.train();
  auto [r1, v1] = two.forward(x);
  auto [r2, v2] = two.forward(x);
  CHECK((r1 - e1).abs().max().item<double>() > 1e-3);  // the second layer saw dropped inputs
  CHECK((r1 - r2).abs().max().item<double>() > 1e-3);  // fresh masks each call
  // The first layer's final state is not affected by the dropout that follows it.
  CHECK((std::get<0>(v1).narrow(0, 0, 1) - std::get<0>(u1).narrow(0, 0, 1)).abs().max().item<double>() < 1e-6);
  // No dropout on the last layer's output: no exact zeros appear in it.
  CHECK(ember::eq(r1, ember::Scalar(0.0)).sum().item<int64_t>() == 0);
}

TEST_CASE("nn::LSTM / nn::GRU: unbatched input, float32 training step, time-major layout") {
  ember::manual_seed(17);
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2));
  Tensor x = ember::randn({5, 3});
  auto [out, h] = gru.forward(x);
  CHECK(out.sizes() == ember::Shape{5, 4});
  CHECK(h.sizes() == ember::Shape{2, 4});
  auto [outb, hb] = gru.forward(x.unsqueeze(1));
  CHECK((outb.squeeze(1) - out).abs().max().item<double>() < 1e-6);

  // A few Adam steps on a float32 LSTM lower the loss (the fused backward drives a real update).
  nn::LSTM lstm(nn::LSTMOptions(3, 8).batch_first(true).bidirectional(true));
  auto head = std::make_shared<nn::Linear>(16, 1);
  std::vector<Tensor> params = lstm.parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  ember::optim::Adam opt(params, ember::optim::AdamOptions(0.02));
  Tensor xs = ember::randn({16, 6, 3});
  Tensor ys = xs.sum({1, 2}).unsqueeze(1);  // a target the model can learn
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    auto [o, st] = lstm.forward(xs);
    Tensor pred = head->forward(o.select(1, 5));
    Tensor loss = ((pred - ys) * (pred - ys)).mean();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  CHECK(last < 0.5 * first);
}

TEST_CASE("nn::LSTM / nn::GRU: clear errors for bad input, lengths and states") {
  nn::LSTM lstm(nn::LSTMOptions(3, 2).num_layers(2).batch_first(true));
  Tensor x = ember::randn({4, 5, 3});
  CHECK_THROWS_WITH_AS(lstm.forward(ember::randn({4, 5, 3, 1})), doctest::Contains("expected input to be 2-D"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(ember::randn({4, 5, 2})),
                       doctest::Contains("input.size(-1) must be equal to input_size. Expected 3, got 2"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x.to(ember::kFloat64)), doctest::Contains("parameters are float32"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(ember::randn({4, 0, 3})), doctest::Contains("at least one time step"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::nullopt, ember::tensor<int64_t>({5, 5, 6, 1})),
                       doctest::Contains("lengths[2] = 6 is outside [0, 5]"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::nullopt, ember::tensor<int64_t>({5, -1, 2, 1})),
                       doctest::Contains("lengths[1] = -1"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::nullopt, ember::tensor<int64_t>({5, 5})),
                       doctest::Contains("expected lengths of shape [4]"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::nullopt, ember::tensor<float>({5, 5, 5, 5})),
                       doctest::Contains("int64 or int32"), ember::Error);
  Tensor good = ember::zeros({2, 4, 2});
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::make_tuple(ember::zeros({1, 4, 2}), good)),
                       doctest::Contains("expected h0 (hx[0]) of shape [2, 4, 2]"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::make_tuple(good, ember::zeros({2, 3, 2}))),
                       doctest::Contains("expected c0 (hx[1]) of shape [2, 4, 2]"), ember::Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, std::make_tuple(good, Tensor())), doctest::Contains("both h0 and c0"),
                       ember::Error);
  nn::GRU gru(nn::GRUOptions(3, 2));
  CHECK_THROWS_WITH_AS(gru.forward(ember::randn({5, 4, 3}), ember::zeros({1, 2, 2})),
                       doctest::Contains("GRU: expected h0 (hx) of shape [1, 4, 2]"), ember::Error);
  CHECK_THROWS_WITH_AS(gru.forward(ember::randn({5, 3}), Tensor(), ember::tensor<int64_t>({5})),
                       doctest::Contains("only supported for batched"), ember::Error);
  CHECK_THROWS_WITH_AS(nn::LSTM(nn::LSTMOptions(3, 0)), doctest::Contains("hidden_size must be positive"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(nn::GRU(nn::GRUOptions(3, 2).dropout(1.5)), doctest::Contains("dropout should be"),
                       ember::Error);
  // The op checks its weights itself.
  std::vector<ember::RnnDirectionWeights> w{{ember::zeros({8, 3}), ember::zeros({8, 3}), {}, {}}};
  CHECK_THROWS_WITH_AS(ember::rnn_layer(ember::RnnMode::kLSTM, ember::zeros({2, 1, 3}), {}, {}, w),
                       doctest::Contains("expected weight_ih of shape [12, 3]"), ember::Error);
}

TEST_CASE("nn::AttentionPooling: masked softmax over valid steps, weighted sum, gradients") {
  ember::manual_seed(19);
  nn::AttentionPooling pool(nn::AttentionPoolingOptions(4).hidden_size(3));
  CHECK(pool.state_dict().keys() == std::vector<std::string>{"proj.weight", "proj.bias", "score.weight"});
  pool.to(ember::kFloat64);
  Tensor x = rnd({3, 5, 4});
  Tensor len = ember::tensor<int64_t>({5, 2, 0});
  auto [pooled, w] = pool.forward(x, len);
  CHECK(pooled.sizes() == ember::Shape{3, 4});
  CHECK(w.sizes() == ember::Shape{3, 5});
  std::vector<double> wv = w.to_vector<double>();
  // Masked steps weigh exactly 0, valid ones > 0 and sum to 1; a length-0 row is all zero.
  for (int64_t b = 0; b < 3; ++b) {
    double s = 0;
    for (int64_t t = 0; t < 5; ++t) {
      double v = wv[b * 5 + t];
      if (t >= len.to_vector<int64_t>()[b]) CHECK(v == 0.0);
      else CHECK(v > 0.0);
      s += v;
    }
    CHECK(s == doctest::Approx(b == 2 ? 0.0 : 1.0).epsilon(1e-12));
  }
  CHECK(pooled.select(0, 2).abs().sum().item<double>() == 0.0);
  // Values: pooled = Σ w_t x_t, with w = softmax of v·tanh(W x + b) over the valid steps.
  Tensor s = ember::matmul(ember::tanh(ember::linear(x, pool.proj->weight, pool.proj->bias)), pool.score->weight.t());
  Tensor w1 = ember::softmax(s.select(0, 1).narrow(0, 0, 2).squeeze(1), 0);
  Tensor p1 = ember::matmul(w1.unsqueeze(0), x.select(0, 1).narrow(0, 0, 2)).squeeze(0);
  CHECK((p1 - pooled.select(0, 1)).abs().max().item<double>() < 1e-12);
  // Padding values never matter.
  Tensor x2 = x.clone();
  {
    ember::NoGradGuard ng;
    x2.select(0, 1).narrow(0, 2, 3).fill_(1e6);
  }
  CHECK((std::get<0>(pool.forward(x2, len)) - pooled).abs().max().item<double>() < 1e-12);
  // Without lengths every step counts.
  auto [pa, wa] = pool.forward(x);
  CHECK(wa.sum({1}).sub(ember::ones({3}, ember::kFloat64)).abs().max().item<double>() < 1e-12);
  // Gradients (no NaN from the empty row) and second order.
  Tensor xg = x.clone().requires_grad_(true);
  tensor_list in{xg};
  for (auto& p : pool.parameters()) in.push_back(p);
  auto f = [&](const tensor_list& t) {
    auto [p, ww] = pool.forward(t[0], len);
    return ember::cat({p.reshape({-1}), ww.reshape({-1})}, 0);
  };
  CHECK_GRADS(f, in);
  nn::AttentionPooling lin(nn::AttentionPoolingOptions(4).batch_first(false));
  lin.to(ember::kFloat64);
  CHECK(lin.state_dict().keys() == std::vector<std::string>{"score.weight"});
  auto [pt, wt] = lin.forward(x.transpose(0, 1), len);
  CHECK(wt.sizes() == ember::Shape{3, 5});
  CHECK_THROWS_WITH_AS(pool.forward(x, ember::tensor<int64_t>({6, 1, 1})), doctest::Contains("lengths[0] = 6"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(pool.forward(rnd({3, 5, 2})), doctest::Contains("expected 4 features per step"), ember::Error);
}
