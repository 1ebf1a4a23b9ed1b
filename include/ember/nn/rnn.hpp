#pragma once
/// nn::LSTM and nn::GRU (torch.nn.LSTM / torch.nn.GRU): multi-layer, optionally bidirectional
/// recurrent layers with PyTorch's parameter names, shapes, gate order and initialisation.
///
/// Parameters, per layer k and direction (suffix "_reverse" for the backward direction), in
/// PyTorch's order: weight_ih_l{k} [G*H, in], weight_hh_l{k} [G*H, H], bias_ih_l{k} [G*H],
/// bias_hh_l{k} [G*H], with G = 4 (LSTM gates i, f, g, o) or 3 (GRU gates r, z, n); `in` is
/// input_size for layer 0 and D*H above (D = 2 when bidirectional). All are drawn from
/// U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch, so a state dict saved by PyTorch loads unchanged.
///
/// forward(input, state, lengths):
/// - input [B, T, in] with batch_first, else [T, B, in]; or unbatched [T, in].
/// - state: initial (h0, c0) for an LSTM, h0 for a GRU, each [num_layers*D, B, H] (layer-major,
///   then direction, as PyTorch); zeros when omitted.
/// - lengths (optional, int64/int32 [B], values in [0, T]): the equivalent of
///   pack_padded_sequence(enforce_sorted=false) → RNN → pad_packed_sequence(total_length=T):
///   outputs past a sequence's length are zero, the reverse direction starts at the true last
///   step, and h_n / c_n are the states at each sequence's true end. A length of 0 (PyTorch
///   refuses it) gives zero outputs and returns the initial state as h_n / c_n.
/// - returns output [B, T, D*H] (batch_first; a transposed view, as PyTorch's) or [T, B, D*H],
///   and h_n (and c_n) [num_layers*D, B, H].
/// Dropout (options.dropout) applies to the outputs of every layer but the last, in training
/// mode only. The per-layer work is ember::rnn_layer (ops/rnn.hpp): fused CPU kernels with one
/// autograd node per layer, differentiable to any order.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(64, 64).num_layers(2).batch_first(true)
///                                              .bidirectional(true).dropout(0.5));
///   auto [out, state] = lstm->forward(x);                  // x [32, 100, 64] → out [32, 100, 128]
///   auto [h_n, c_n] = state;                               // [4, 32, 64] each
///   auto [out2, st2] = lstm->forward(x, std::nullopt, lengths);  // padded batch, lengths [32]
///   auto gru = std::make_shared<nn::GRU>(nn::GRUOptions(64, 32));
///   auto [y, h] = gru->forward(x_time_major);
/// ```
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "ember/nn/activation.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/rnn.hpp"

namespace ember::nn {

/// Options shared by LSTMOptions and GRUOptions (setters chain and keep the derived type).
template <typename Derived>
struct RNNOptionsBase {
  RNNOptionsBase(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  EMBER_ARG_CRTP(Derived, int64_t, input_size);
  EMBER_ARG_CRTP(Derived, int64_t, hidden_size);
  EMBER_ARG_CRTP(Derived, int64_t, num_layers) = 1;
  /// Whether the layers have bias_ih / bias_hh.
  EMBER_ARG_CRTP(Derived, bool, bias) = true;
  /// Input and output as [B, T, features] instead of [T, B, features] (states are unaffected).
  EMBER_ARG_CRTP(Derived, bool, batch_first) = false;
  /// Dropout probability on the outputs of each layer except the last (training mode only).
  EMBER_ARG_CRTP(Derived, double, dropout) = 0.0;
  EMBER_ARG_CRTP(Derived, bool, bidirectional) = false;
};

struct LSTMOptions : RNNOptionsBase<LSTMOptions> {
  LSTMOptions(int64_t input_size, int64_t hidden_size) : RNNOptionsBase(input_size, hidden_size) {}
};
struct GRUOptions : RNNOptionsBase<GRUOptions> {
  GRUOptions(int64_t input_size, int64_t hidden_size) : RNNOptionsBase(input_size, hidden_size) {}
};

namespace detail {

/// What LSTM and GRU share: parameters, checks, the layer loop. Not used directly.
class RNNBase : public Module {
 public:
  /// The parameters of layer `layer`, direction `dir` (0 forward, 1 reverse).
  const RnnDirectionWeights& weights(int64_t layer, int64_t dir) const {
    return weights_.at(static_cast<size_t>(layer * num_directions() + dir));
  }
  int64_t num_directions() const { return bidirectional_ ? 2 : 1; }

  /// Re-draws every parameter from U(-1/sqrt(H), 1/sqrt(H)).
  void reset_parameters() {
    const double bound = hidden_size_ > 0 ? 1.0 / std::sqrt(static_cast<double>(hidden_size_)) : 0.0;
    for (auto& p : parameters(false)) init::uniform_(p, -bound, bound);
  }
  /// A no-op kept for PyTorch code that calls it (the weights are used where they are).
  void flatten_parameters() {}

  /// Which implementation runs the layers: kAuto (fused CPU kernels where they apply) or
  /// kComposite (step-by-step Ember ops; for tests and debugging, same results).
  RnnImpl impl = RnnImpl::kAuto;

  std::string extra_repr() const override {
    std::ostringstream os;
    os << input_size_ << ", " << hidden_size_;
    if (num_layers_ != 1) os << ", num_layers=" << num_layers_;
    if (!bias_) os << ", bias=False";
    if (batch_first_) os << ", batch_first=True";
    if (dropout_ != 0) os << ", dropout=" << ember::nn::detail::fmt_double(dropout_);
    if (bidirectional_) os << ", bidirectional=True";
    return os.str();
  }

 protected:
  RNNBase(RnnMode mode, int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias, bool batch_first,
          double dropout, bool bidirectional)
      : Module(rnn_mode_name(mode)),
        mode_(mode),
        input_size_(input_size),
        hidden_size_(hidden_size),
        num_layers_(num_layers),
        bias_(bias),
        batch_first_(batch_first),
        dropout_(dropout),
        bidirectional_(bidirectional) {
    const char* op = rnn_mode_name(mode);
    EMBER_CHECK(input_size > 0 && hidden_size > 0, op, ": input_size and hidden_size must be positive, got ",
                input_size, " and ", hidden_size);
    EMBER_CHECK(num_layers >= 1, op, ": num_layers must be at least 1, got ", num_layers);
    EMBER_CHECK(dropout >= 0 && dropout <= 1, op, ": dropout should be a number in range [0, 1] representing the "
                "probability of an element being zeroed, got ", dropout);
    const int64_t G = rnn_gate_count(mode) * hidden_size, D = num_directions();
    for (int64_t l = 0; l < num_layers; ++l) {
      const int64_t in = l == 0 ? input_size : D * hidden_size;
      for (int64_t d = 0; d < D; ++d) {
        const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
        RnnDirectionWeights w;
        w.w_ih = register_parameter("weight_ih" + sfx, empty({G, in}, TensorOptions()));
        w.w_hh = register_parameter("weight_hh" + sfx, empty({G, hidden_size}, TensorOptions()));
        if (bias) {
          w.b_ih = register_parameter("bias_ih" + sfx, empty({G}, TensorOptions()));
          w.b_hh = register_parameter("bias_hh" + sfx, empty({G}, TensorOptions()));
        }
        weights_.push_back(w);
      }
    }
    reset_parameters();
  }

  /// Runs the layers. h0 / c0: [L*D, B, H] or undefined. Returns output (in the input's layout),
  /// h_n, c_n (undefined for a GRU).
  std::tuple<Tensor, Tensor, Tensor> run(const Tensor& input, const Tensor& h0_in, const Tensor& c0_in,
                                         const Tensor& lengths_in) {
    const char* op = rnn_mode_name(mode_);
    const bool lstm = mode_ == RnnMode::kLSTM;
    EMBER_CHECK(input.defined(), op, ": the input is undefined");
    EMBER_CHECK(input.dim() == 2 || input.dim() == 3, op, ": expected input to be 2-D (unbatched [T, ", input_size_,
                "]) or 3-D (", batch_first_ ? "[B, T, " : "[T, B, ", input_size_, "]), got ", input.dim(),
                "-D input of shape ", input.sizes());
    EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
    EMBER_CHECK(input.size(-1) == input_size_, op, ": input.size(-1) must be equal to input_size. Expected ",
                input_size_, ", got ", input.size(-1), " (input shape ", input.sizes(), ")");
    const Tensor& w0 = weights_[0].w_ih;
    EMBER_CHECK(input.dtype() == w0.dtype() && input.device() == w0.device(), op, ": input is ", input.dtype(),
                " on ", input.device(), " but the parameters are ", w0.dtype(), " on ", w0.device(),
                " (convert the input or call module->to(...))");
    const bool batched = input.dim() == 3;
    Tensor x = batched ? (batch_first_ ? input.transpose(0, 1) : input) : input.unsqueeze(1);  // [T, B, I]
    const int64_t T = x.size(0), B = x.size(1), D = num_directions(), H = hidden_size_;
    EMBER_CHECK(T > 0, op, ": expected at least one time step, got input of shape ", input.sizes());
    EMBER_CHECK(B > 0, op, ": expected a non-empty batch, got input of shape ", input.sizes());

    auto state = [&](const Tensor& s, const char* what) -> Tensor {
      if (!s.defined()) return s;
      const Shape want = batched ? Shape{num_layers_ * D, B, H} : Shape{num_layers_ * D, H};
      EMBER_CHECK(s.sizes() == want, op, ": expected ", what, " of shape ", want, " (num_layers * num_directions",
                  batched ? ", batch, hidden_size" : ", hidden_size", "), got ", s.sizes());
      EMBER_CHECK(s.dtype() == input.dtype() && s.device() == input.device(), op, ": ", what, " is ", s.dtype(),
                  " on ", s.device(), " but the input is ", input.dtype(), " on ", input.device());
      return batched ? s : s.unsqueeze(1);
    };
    Tensor h0 = state(h0_in, lstm ? "h0 (hx[0])" : "h0 (hx)");
    Tensor c0 = state(c0_in, "c0 (hx[1])");

    std::vector<int64_t> lengths;
    if (lengths_in.defined()) {
      EMBER_CHECK(batched, op, ": lengths are only supported for batched (3-D) input");
      EMBER_CHECK(lengths_in.dim() == 1 && lengths_in.size(0) == B, op, ": expected lengths of shape [", B,
                  "] (one per sequence), got ", lengths_in.sizes());
      EMBER_CHECK(lengths_in.dtype() == kInt64 || lengths_in.dtype() == kInt32, op,
                  ": expected lengths as an int64 or int32 tensor, got ", lengths_in.dtype());
      lengths = lengths_in.to(kCPU).to_vector<int64_t>();
      for (int64_t b = 0; b < B; ++b)
        EMBER_CHECK(lengths[b] >= 0 && lengths[b] <= T, op, ": lengths[", b, "] = ", lengths[b],
                    " is outside [0, ", T, "] (T = the input's number of time steps)");
    }

    Tensor layer_in = x;
    tensor_list hs, cs;
    for (int64_t l = 0; l < num_layers_; ++l) {
      std::vector<RnnDirectionWeights> w(weights_.begin() + l * D, weights_.begin() + (l + 1) * D);
      Tensor h0l = h0.defined() ? h0.narrow(0, l * D, D) : Tensor();
      Tensor c0l = c0.defined() ? c0.narrow(0, l * D, D) : Tensor();
      RnnLayerResult r = rnn_layer(mode_, layer_in, h0l, c0l, w, lengths, impl);
      hs.push_back(r.h_n);
      if (lstm) cs.push_back(r.c_n);
      layer_in = r.output;
      if (l + 1 < num_layers_ && dropout_ > 0 && is_training()) layer_in = ember::dropout(layer_in, dropout_, true);
    }
    Tensor out = layer_in;
    Tensor h_n = hs.size() == 1 ? hs[0] : cat(hs, 0);
    Tensor c_n = lstm ? (cs.size() == 1 ? cs[0] : cat(cs, 0)) : Tensor();
    if (!batched) {
      out = out.squeeze(1);
      h_n = h_n.squeeze(1);
      if (lstm) c_n = c_n.squeeze(1);
    } else if (batch_first_) {
      out = out.transpose(0, 1);
    }
    return {out, h_n, c_n};
  }

  RnnMode mode_;
  int64_t input_size_, hidden_size_, num_layers_;
  bool bias_, batch_first_;
  double dropout_;
  bool bidirectional_;
  std::vector<RnnDirectionWeights> weights_;  // layer-major, then direction
};

}  // namespace detail

/// torch.nn.LSTM (see the header comment).
class LSTM : public detail::RNNBase {
 public:
  explicit LSTM(const LSTMOptions& options)
      : RNNBase(RnnMode::kLSTM, options.input_size(), options.hidden_size(), options.num_layers(), options.bias(),
                options.batch_first(), options.dropout(), options.bidirectional()),
        options(options) {}
  LSTM(int64_t input_size, int64_t hidden_size) : LSTM(LSTMOptions(input_size, hidden_size)) {}

  /// Returns (output, (h_n, c_n)). `hx` = (h0, c0), both [num_layers*D, B, H]; `lengths` [B].
  std::tuple<Tensor, std::tuple<Tensor, Tensor>> forward(const Tensor& input,
                                                         const std::optional<std::tuple<Tensor, Tensor>>& hx = std::nullopt,
                                                         const Tensor& lengths = {}) {
    Tensor h0, c0;
    if (hx) {
      std::tie(h0, c0) = *hx;
      EMBER_CHECK(h0.defined() && c0.defined(), "LSTM: hx must hold both h0 and c0 (or be std::nullopt)");
    }
    auto [out, h_n, c_n] = run(input, h0, c0, lengths);
    return {out, {h_n, c_n}};
  }

  LSTMOptions options;
};

/// torch.nn.GRU (see the header comment).
class GRU : public detail::RNNBase {
 public:
  explicit GRU(const GRUOptions& options)
      : RNNBase(RnnMode::kGRU, options.input_size(), options.hidden_size(), options.num_layers(), options.bias(),
                options.batch_first(), options.dropout(), options.bidirectional()),
        options(options) {}
  GRU(int64_t input_size, int64_t hidden_size) : GRU(GRUOptions(input_size, hidden_size)) {}

  /// Returns (output, h_n). `hx` = h0 [num_layers*D, B, H] or undefined; `lengths` [B].
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& hx = {}, const Tensor& lengths = {}) {
    auto [out, h_n, c_n] = run(input, hx, Tensor(), lengths);
    return {out, h_n};
  }

  GRUOptions options;
};

}  // namespace ember::nn
