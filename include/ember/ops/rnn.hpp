#pragma once
/// One recurrent layer (LSTM or GRU, one or both directions) over a whole time-major sequence,
/// with PyTorch's gate equations and the semantics of a packed sequence when lengths are given.
/// nn::LSTM / nn::GRU (nn/rnn.hpp) stack these layers.
///
///   LSTM (gates i, f, g, o):  i = σ(W_ii x + b_ii + W_hi h + b_hi), f, o likewise, g with tanh;
///                             c' = f c + i g,  h' = o tanh(c')
///   GRU  (gates r, z, n):     r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
///                             n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h
///
/// Lengths (B values in [0, T]) make the layer behave like pack_padded_sequence(enforce_sorted=
/// False) → RNN → pad_packed_sequence(total_length=T): sequence b only sees steps t < lengths[b];
/// its outputs at later steps are zero, the reverse direction starts at its true last step, and
/// h_n / c_n are the states at its true end. Length 0 (which PyTorch refuses) is allowed: the
/// sequence's outputs are all zero and its h_n / c_n are the initial states.
///
/// Two implementations with the same results:
/// - the fused CPU path (float32/float64): per direction one GEMM projects every step's input,
///   then per step one GEMM (h @ W_hh^T) and one fused pass over the gates; the two directions
///   run on two threads, each with everything it needs, so a layer is one fork/join (this keeps
///   it fast on a loaded machine, where threads that wait for each other lose their time
///   slices). Its backward runs the same recurrence in reverse (per step one GEMM for dh), and the
///   weight and input gradients are a few GEMMs over all steps. The whole layer is one autograd
///   node, so a 100-step sequence costs no per-step graph bookkeeping.
/// - the composite path (any device/dtype; `RnnImpl::kComposite`): the same equations with
///   differentiable Ember ops, step by step. When a backward is itself recorded (create_graph),
///   the fused node recomputes the layer this way and differentiates it, so gradients of
///   gradients are exact.
///
/// Example:
/// ```
///   std::vector<ember::RnnDirectionWeights> w = {{w_ih, w_hh, b_ih, b_hh}};     // [4H, I], [4H, H], [4H], [4H]
///   auto r = ember::rnn_layer(ember::RnnMode::kLSTM, x, {}, {}, w, {5, 3});    // x [T, 2, I]
///   // r.output [T, 2, H]; r.h_n, r.c_n [1, 2, H]
/// ```
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ember/autograd/engine.hpp"
#include "ember/core/parallel.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/cpu_gemm.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/join.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/pointwise.hpp"
#include "ember/ops/shape.hpp"
#include "ember/ops/unary.hpp"

namespace ember {

enum class RnnMode { kLSTM, kGRU };
/// kAuto: the fused CPU kernels where they apply (CPU, float32/float64), the composite otherwise.
enum class RnnImpl { kAuto, kComposite };

inline const char* rnn_mode_name(RnnMode m) { return m == RnnMode::kLSTM ? "LSTM" : "GRU"; }
/// Gates per hidden unit: 4 for an LSTM (i, f, g, o), 3 for a GRU (r, z, n).
inline int64_t rnn_gate_count(RnnMode m) { return m == RnnMode::kLSTM ? 4 : 3; }

/// The parameters of one direction of one layer (PyTorch's weight_ih_l{k}[_reverse], weight_hh_…,
/// bias_ih_…, bias_hh_…): [G*H, I], [G*H, H], [G*H], [G*H]; the biases undefined without bias.
struct RnnDirectionWeights {
  Tensor w_ih, w_hh, b_ih, b_hh;
};

/// output [T, B, D*H] (time-major; direction d in columns [d*H, (d+1)*H)), h_n [D, B, H], and for
/// an LSTM c_n [D, B, H] (undefined for a GRU).
struct RnnLayerResult {
  Tensor output, h_n, c_n;
};

/// mask[b, t] = t < lengths[b]: a bool [B, T] tensor on lengths' device (lengths: int64/int32 [B]).
inline Tensor sequence_mask(const Tensor& lengths, int64_t max_len) {
  EMBER_CHECK(lengths.defined(), "sequence_mask: lengths is undefined");
  EMBER_CHECK(lengths.dim() == 1 && (lengths.dtype() == kInt64 || lengths.dtype() == kInt32),
              "sequence_mask: expected lengths as an int64 or int32 tensor of shape [B], got ", lengths.dtype(), " ",
              lengths.sizes());
  EMBER_CHECK(max_len >= 0, "sequence_mask: max_len must be non-negative, got ", max_len);
  Tensor steps = arange(Scalar(max_len), TensorOptions(kInt64).device(lengths.device())).unsqueeze(0);
  return lt(steps, lengths.to(kInt64).unsqueeze(1));
}

namespace detail {

// ---- checks --------------------------------------------------------------------------------------

/// Checks the shapes, dtypes and devices of one layer's arguments; returns the hidden size.
inline int64_t rnn_check_layer(RnnMode mode, const Tensor& x, const Tensor& h0, const Tensor& c0,
                               const std::vector<RnnDirectionWeights>& w, const std::vector<int64_t>& lengths) {
  const char* op = mode == RnnMode::kLSTM ? "lstm_layer" : "gru_layer";
  EMBER_CHECK(w.size() == 1 || w.size() == 2, op, ": expected the weights of 1 or 2 directions, got ", w.size());
  EMBER_CHECK(x.defined() && x.dim() == 3, op, ": expected a time-major input [T, B, input_size], got shape ",
              x.defined() ? x.sizes() : Shape{});
  EMBER_CHECK(x.is_floating_point(), op, ": expected a floating point input, got ", x.dtype());
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = static_cast<int64_t>(w.size());
  EMBER_CHECK(T > 0 && B > 0, op, ": expected a non-empty sequence and batch, got input of shape ", x.sizes());
  EMBER_CHECK(w[0].w_hh.defined() && w[0].w_hh.dim() == 2, op, ": weight_hh must be 2-D");
  const int64_t H = w[0].w_hh.size(1), G = rnn_gate_count(mode) * H;
  auto check = [&](const Tensor& t, const Shape& want, const char* what, int64_t d) {
    EMBER_CHECK(t.defined() && t.sizes() == want, op, ": expected ", what, d ? "_reverse" : "", " of shape ", want,
                ", got ", t.defined() ? t.sizes() : Shape{});
    EMBER_CHECK(t.dtype() == x.dtype(), op, ": ", what, " has dtype ", t.dtype(), " but the input has ", x.dtype());
    EMBER_CHECK(t.device() == x.device(), op, ": ", what, " is on ", t.device(), " but the input is on ", x.device());
  };
  for (int64_t d = 0; d < D; ++d) {
    check(w[d].w_ih, {G, I}, "weight_ih", d);
    check(w[d].w_hh, {G, H}, "weight_hh", d);
    EMBER_CHECK(w[d].b_ih.defined() == w[d].b_hh.defined(), op, ": bias_ih and bias_hh must both be given or both be undefined");
    if (w[d].b_ih.defined()) {
      check(w[d].b_ih, {G}, "bias_ih", d);
      check(w[d].b_hh, {G}, "bias_hh", d);
    }
  }
  if (h0.defined()) check(h0, {D, B, H}, "h0", 0);
  if (mode == RnnMode::kLSTM) {
    if (c0.defined()) check(c0, {D, B, H}, "c0", 0);
  } else {
    EMBER_CHECK(!c0.defined(), op, ": a GRU has no cell state, but c0 was given");
  }
  if (!lengths.empty()) {
    EMBER_CHECK(static_cast<int64_t>(lengths.size()) == B, op, ": expected ", B, " lengths (one per sequence), got ",
                lengths.size());
    for (size_t b = 0; b < lengths.size(); ++b)
      EMBER_CHECK(lengths[b] >= 0 && lengths[b] <= T, op, ": length ", lengths[b], " of sequence ", b,
                  " is outside [0, ", T, "] (T = the input's time steps)");
  }
  return H;
}

// ---- composite (differentiable ops, any device) -------------------------------------------------

inline RnnLayerResult rnn_layer_composite(RnnMode mode, const Tensor& x, const Tensor& h0, const Tensor& c0,
                                          const std::vector<RnnDirectionWeights>& w, const std::vector<int64_t>& lengths) {
  const bool lstm = mode == RnnMode::kLSTM;
  const int64_t T = x.size(0), B = x.size(1), D = static_cast<int64_t>(w.size()), H = w[0].w_hh.size(1);
  Tensor mask;  // [T, B, 1] bool: step t is inside sequence b
  if (!lengths.empty()) {
    Tensor len = tensor(lengths, {B}, TensorOptions(kInt64));
    mask = sequence_mask(len, T).t().unsqueeze(2).to(x.device());
  }
  tensor_list outs(D), hs(D), cs(D);
  for (int64_t d = 0; d < D; ++d) {
    const RnnDirectionWeights& p = w[d];
    Tensor xp = matmul(x, p.w_ih.t());  // every step at once: [T, B, G]
    if (p.b_ih.defined()) xp = add(xp, p.b_ih);
    Tensor h = h0.defined() ? h0.select(0, d) : zeros({B, H}, x.options());
    Tensor c = lstm ? (c0.defined() ? c0.select(0, d) : zeros({B, H}, x.options())) : Tensor();
    tensor_list steps(T);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = d == 0 ? s : T - 1 - s;
      Tensor gh = matmul(h, p.w_hh.t());
      if (p.b_hh.defined()) gh = add(gh, p.b_hh);
      Tensor gi = xp.select(0, t);
      Tensor h_new, c_new;
      if (lstm) {
        Tensor gates = add(gi, gh);
        Tensor i = sigmoid(gates.narrow(1, 0, H)), f = sigmoid(gates.narrow(1, H, H));
        Tensor g = tanh(gates.narrow(1, 2 * H, H)), o = sigmoid(gates.narrow(1, 3 * H, H));
        c_new = add(mul(f, c), mul(i, g));
        h_new = mul(o, tanh(c_new));
      } else {
        Tensor r = sigmoid(add(gi.narrow(1, 0, H), gh.narrow(1, 0, H)));
        Tensor z = sigmoid(add(gi.narrow(1, H, H), gh.narrow(1, H, H)));
        Tensor n = tanh(add(gi.narrow(1, 2 * H, H), mul(r, gh.narrow(1, 2 * H, H))));
        h_new = add(n, mul(z, sub(h, n)));
      }
      if (mask.defined()) {
        Tensor m = mask.select(0, t);
        h = where(m, h_new, h);
        if (lstm) c = where(m, c_new, c);
        steps[t] = where(m, h_new, Scalar(0.0));
      } else {
        h = h_new;
        c = c_new;
        steps[t] = h_new;
      }
    }
    outs[d] = stack(steps, 0);
    hs[d] = h;
    cs[d] = c;
  }
  RnnLayerResult r;
  r.output = D == 1 ? outs[0] : cat(outs, 2);
  r.h_n = stack(hs, 0);
  if (lstm) r.c_n = stack(cs, 0);
  return r;
}

// ---- fused CPU kernels ---------------------------------------------------------------------------

template <typename S>
using RnnRowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using RnnMap = Eigen::Map<RnnRowMat<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename S>
using RnnCMap = Eigen::Map<const RnnRowMat<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename S>
using RnnVec = Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>;
template <typename S>
using RnnCVec = Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>>;

/// Raw pointers and sizes shared by the fused forward and backward of one layer.
template <typename S>
struct RnnFusedArgs {
  bool lstm = true;
  int64_t T = 0, B = 0, I = 0, H = 0, D = 1, G = 0;
  const int64_t* len = nullptr;      // [B] or null (every sequence has T steps)
  const S* x = nullptr;              // [T, B, I]
  const S* w_ih = nullptr;           // [D*G, I], the directions stacked
  std::vector<const S*> w_hh;        // D × [G, H]
  S* xp = nullptr;                   // [T, B, D*G]: projections, overwritten by the gate activations
  S* hprev = nullptr;                // [D, T, B, H]: the state each step starts from
  S* cprev = nullptr;                // [D, T, B, H] (LSTM)
  S* ghn = nullptr;                  // [D, T, B, H] (GRU): W_hn h + b_hn of each step
  bool valid(int64_t t, int64_t b) const { return !len || t < len[b]; }
  int64_t time(int64_t d, int64_t s) const { return d == 0 ? s : T - 1 - s; }
};

/// Forward of one direction: one GEMM projects every step's input, then per step one GEMM and
/// one pass over the gates. out [T, B, D*H], hn / cn [B, H] of this direction; h0 / c0 [B, H] or
/// null (zeros); bias_x [G] (folded into the projection) and bias_hn [H] (GRU) or null.
template <typename S>
void rnn_direction_forward(const RnnFusedArgs<S>& a, int64_t d, const S* h0, const S* c0, const S* bias_x,
                           const S* bias_hn, S* out, S* hn, S* cn) {
  const int64_t T = a.T, B = a.B, I = a.I, H = a.H, G = a.G, DG = a.D * a.G, DH = a.D * a.H, BH = B * H;
  {
    // xp[:, d's gates] [T*B, G] = x [T*B, I] @ W_ih^T
    cpu::gemm<S>(false, true, T * B, G, I, S(1), a.x, I, a.w_ih + d * G * I, I, S(0), a.xp + d * G, DG);
    if (bias_x) {
      RnnMap<S> xpd(a.xp + d * G, T * B, G, Eigen::OuterStride<>(DG));
      xpd.rowwise() += Eigen::Map<const Eigen::Matrix<S, 1, Eigen::Dynamic>>(bias_x, G);
    }
  }
  S* hp = a.hprev + d * T * BH;
  S* cp = a.lstm ? a.cprev + d * T * BH : nullptr;
  const int64_t t0 = a.time(d, 0);
  if (h0) std::copy(h0, h0 + BH, hp + t0 * BH);
  else std::fill(hp + t0 * BH, hp + t0 * BH + BH, S(0));
  if (a.lstm) {
    if (c0) std::copy(c0, c0 + BH, cp + t0 * BH);
    else std::fill(cp + t0 * BH, cp + t0 * BH + BH, S(0));
  }
  const S* whh = a.w_hh[static_cast<size_t>(d)];  // [G, H]
  std::vector<S> gh_buf(a.lstm ? 0 : static_cast<size_t>(B * G));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = a.time(d, s);
    const S* h = hp + t * BH;
    S* hnext = s + 1 < T ? hp + a.time(d, s + 1) * BH : hn;
    if (a.lstm) {
      const S* c = cp + t * BH;
      S* cnext = s + 1 < T ? cp + a.time(d, s + 1) * BH : cn;
      // gates [B, G] += h [B, H] @ W_hh^T
      cpu::gemm<S>(false, true, B, G, H, S(1), h, H, whh, H, S(1), a.xp + t * B * DG + d * G, DG);
      for (int64_t b = 0; b < B; ++b) {
        S* g = a.xp + (t * B + b) * DG + d * G;
        RnnVec<S> ig(g, H), fg(g + H, H), gg(g + 2 * H, H), og(g + 3 * H, H);
        ig = ig.logistic();
        fg = fg.logistic();
        gg = gg.tanh();
        og = og.logistic();
        RnnCVec<S> cv(c + b * H, H), hv(h + b * H, H);
        RnnVec<S> cnv(cnext + b * H, H), hnv(hnext + b * H, H), ov(out + (t * B + b) * DH + d * H, H);
        if (a.valid(t, b)) {
          cnv = fg * cv + ig * gg;
          hnv = og * cnv.tanh();
          ov = hnv;
        } else {
          cnv = cv;
          hnv = hv;
          ov.setZero();
        }
      }
    } else {
      cpu::gemm<S>(false, true, B, G, H, S(1), h, H, whh, H, S(0), gh_buf.data(), G);
      for (int64_t b = 0; b < B; ++b) {
        S* g = a.xp + (t * B + b) * DG + d * G;
        S* ghr = gh_buf.data() + b * G;
        RnnVec<S> rg(g, H), zg(g + H, H), ng(g + 2 * H, H), ghnv(a.ghn + ((d * T + t) * B + b) * H, H);
        ghnv = RnnCVec<S>(ghr + 2 * H, H);
        if (bias_hn) ghnv += RnnCVec<S>(bias_hn, H);
        rg = (rg + RnnCVec<S>(ghr, H)).logistic();
        zg = (zg + RnnCVec<S>(ghr + H, H)).logistic();
        ng = (ng + rg * ghnv).tanh();
        RnnCVec<S> hv(h + b * H, H);
        RnnVec<S> hnv(hnext + b * H, H), ov(out + (t * B + b) * DH + d * H, H);
        if (a.valid(t, b)) {
          hnv = ng + zg * (hv - ng);
          ov = hnv;
        } else {
          hnv = hv;
          ov.setZero();
        }
      }
    }
  }
}

/// Backward of one direction through time. dy [T, B, D*H]; dhn, dcn [B, H] or null. Writes the
/// gate gradients dg [T, B, D*G] (this direction's columns; zero at steps outside a sequence),
/// for a GRU also dgh [T, B, G] (the hidden side: its n part is multiplied by r), and dh0 / dc0.
template <typename S>
void rnn_direction_backward(const RnnFusedArgs<S>& a, int64_t d, const S* dy, const S* dhn, const S* dcn, S* dg,
                            S* dgh, S* dh0, S* dc0) {
  const int64_t T = a.T, B = a.B, H = a.H, G = a.G, DG = a.D * a.G, DH = a.D * a.H, BH = B * H;
  const S* hp = a.hprev + d * T * BH;
  const S* cp = a.lstm ? a.cprev + d * T * BH : nullptr;
  std::vector<S> dh(static_cast<size_t>(BH), S(0)), dc(static_cast<size_t>(BH), S(0)), dtot(static_cast<size_t>(H));
  std::vector<S> dh_gemm(static_cast<size_t>(BH)), dh_direct(a.lstm ? 0 : static_cast<size_t>(BH));
  std::vector<S> tanh_c(static_cast<size_t>(H));
  if (dhn) std::copy(dhn, dhn + BH, dh.begin());
  if (dcn && a.lstm) std::copy(dcn, dcn + BH, dc.begin());
  const S* whh = a.w_hh[static_cast<size_t>(d)];  // [G, H]
  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = a.time(d, s);
    bool any = false;
    for (int64_t b = 0; b < B; ++b) {
      S* dgr = dg + (t * B + b) * DG + d * G;
      S* dghr = a.lstm ? dgr : dgh + (t * B + b) * G;
      if (!a.valid(t, b)) {
        std::fill(dgr, dgr + G, S(0));
        if (!a.lstm) std::fill(dghr, dghr + G, S(0));
        continue;
      }
      any = true;
      RnnVec<S> dt(dtot.data(), H);
      dt = RnnCVec<S>(dh.data() + b * H, H) + RnnCVec<S>(dy + (t * B + b) * DH + d * H, H);
      const S* g = a.xp + (t * B + b) * DG + d * G;
      if (a.lstm) {
        RnnCVec<S> ig(g, H), fg(g + H, H), gg(g + 2 * H, H), og(g + 3 * H, H), cpv(cp + (t * B + b) * H, H);
        RnnVec<S> dcv(dc.data() + b * H, H);
        RnnVec<S> di(dgr, H), df(dgr + H, H), dgg(dgr + 2 * H, H), dout(dgr + 3 * H, H);
        RnnVec<S> tc(tanh_c.data(), H);
        tc = (fg * cpv + ig * gg).tanh();
        dout = dt * tc * og * (S(1) - og);
        dcv += dt * og * (S(1) - tc * tc);
        di = dcv * gg * ig * (S(1) - ig);
        df = dcv * cpv * fg * (S(1) - fg);
        dgg = dcv * ig * (S(1) - gg * gg);
        dcv *= fg;
      } else {
        RnnCVec<S> rg(g, H), zg(g + H, H), ng(g + 2 * H, H), hv(hp + (t * B + b) * H, H);
        RnnCVec<S> ghnv(a.ghn + ((d * T + t) * B + b) * H, H);
        RnnVec<S> dr(dgr, H), dz(dgr + H, H), dn(dgr + 2 * H, H);
        dn = dt * (S(1) - zg) * (S(1) - ng * ng);  // through n's tanh: d(W_in x + b_in)
        dz = dt * (hv - ng) * zg * (S(1) - zg);
        dr = dn * ghnv * rg * (S(1) - rg);
        std::copy(dgr, dgr + 2 * H, dghr);
        RnnVec<S>(dghr + 2 * H, H) = dn * rg;
        RnnVec<S>(dh_direct.data() + b * H, H) = dt * zg;
      }
    }
    if (!any) continue;
    // dh of the previous step = dgates_hidden @ W_hh (+ z dh for a GRU).
    cpu::gemm<S>(false, false, B, H, G, S(1), a.lstm ? dg + t * B * DG + d * G : dgh + t * B * G, a.lstm ? DG : G, whh,
                 H, S(0), dh_gemm.data(), H);
    for (int64_t b = 0; b < B; ++b) {
      if (!a.valid(t, b)) continue;  // outside the sequence the state passes through unchanged
      RnnVec<S> dhv(dh.data() + b * H, H);
      dhv = RnnCVec<S>(dh_gemm.data() + b * H, H);
      if (!a.lstm) dhv += RnnCVec<S>(dh_direct.data() + b * H, H);
    }
  }
  std::copy(dh.begin(), dh.end(), dh0);
  if (a.lstm) std::copy(dc.begin(), dc.end(), dc0);
}

/// Runs f(d) for each direction. Two directions with enough work (`work`: multiply-adds of one
/// direction's recurrent GEMMs) run on two threads, Eigen staying serial inside the region; a
/// single direction runs here so that Eigen may thread its GEMMs. Small layers stay serial: a
/// fork/join per call costs more than it saves.
template <typename F>
void rnn_for_directions(int64_t D, int64_t work, const F& f) {
  if (D == 1 || work < kSmallGemmWork) {
    for (int64_t d = 0; d < D; ++d) f(d);
    return;
  }
  parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; ++d) f(d);
  });
}

/// The backward of the fused layer when it is itself recorded (create_graph): the layer is
/// recomputed with the composite ops from the saved inputs and differentiated, so the returned
/// gradients depend differentiably on the inputs and on `g`.
inline tensor_list rnn_layer_recorded_backward(RnnMode mode, const tensor_list& saved, const Tensor& g,
                                               const autograd::BackwardCtx& ctx, const std::vector<int64_t>& lengths) {
  // saved: x, h0, c0, then (w_ih, w_hh, b_ih, b_hh) per direction.
  tensor_list in(saved.size()), wanted;
  std::vector<size_t> idx;
  for (size_t i = 0; i < saved.size(); ++i) {
    if (!saved[i].defined()) continue;
    if (ctx.needs(i)) {
      // A fresh full-range view to differentiate against (valid for any strides): its node stops
      // the inner backward here, so the graph before the layer is not run twice.
      in[i] = saved[i].slice(0, 0, saved[i].size(0));
      wanted.push_back(in[i]);
      idx.push_back(i);
    } else {
      in[i] = saved[i].detach();
    }
  }
  const size_t D = (saved.size() - 3) / 4;
  std::vector<RnnDirectionWeights> w(D);
  for (size_t d = 0; d < D; ++d) w[d] = {in[3 + 4 * d], in[4 + 4 * d], in[5 + 4 * d], in[6 + 4 * d]};
  RnnLayerResult r = rnn_layer_composite(mode, in[0], in[1], in[2], w, lengths);
  tensor_list parts{r.output.reshape({-1}), r.h_n.reshape({-1})};
  if (r.c_n.defined()) parts.push_back(r.c_n.reshape({-1}));
  Tensor packed = cat(parts, 0);
  tensor_list grads = autograd::grad({packed}, wanted, {g}, /*retain_graph=*/true, /*create_graph=*/true,
                                     /*allow_unused=*/true);
  tensor_list out(saved.size());
  for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = grads[k];
  return out;
}

inline RnnLayerResult rnn_layer_fused(RnnMode mode, const Tensor& x_in, const Tensor& h0_in, const Tensor& c0_in,
                                      const std::vector<RnnDirectionWeights>& w, const std::vector<int64_t>& lengths) {
  const bool lstm = mode == RnnMode::kLSTM;
  const int64_t T = x_in.size(0), B = x_in.size(1), I = x_in.size(2), D = static_cast<int64_t>(w.size());
  const int64_t H = w[0].w_hh.size(1), G = rnn_gate_count(mode) * H, DG = D * G, DH = D * H;
  const int64_t n_out = T * B * DH, n_state = D * B * H;
  const DType dt = x_in.dtype();
  const bool has_bias = w[0].b_ih.defined();

  Tensor x = x_in.detach().contiguous();
  tensor_list wih_parts, w_hh(D);
  for (int64_t d = 0; d < D; ++d) {
    wih_parts.push_back(w[d].w_ih.detach());
    w_hh[d] = w[d].w_hh.detach().contiguous();
  }
  Tensor w_ih = D == 1 ? wih_parts[0].contiguous() : cat(wih_parts, 0);  // [D*G, I]
  // Biases folded into the input projection: both LSTM biases; a GRU's b_ih and the r, z parts
  // of b_hh (b_hn stays inside r * (W_hn h + b_hn)).
  Tensor bias_x, bias_hn;
  if (has_bias) {
    NoGradGuard ng;
    tensor_list bx(D), bn(D);
    for (int64_t d = 0; d < D; ++d) {
      Tensor bi = w[d].b_ih.detach(), bh = w[d].b_hh.detach();
      if (lstm) {
        bx[d] = add(bi, bh);
      } else {
        bx[d] = add(bi, cat({bh.narrow(0, 0, 2 * H), zeros({H}, bh.options())}, 0));
        bn[d] = bh.narrow(0, 2 * H, H);
      }
    }
    bias_x = (D == 1 ? bx[0] : cat(bx, 0)).contiguous();
    if (!lstm) bias_hn = (D == 1 ? bn[0] : cat(bn, 0)).contiguous();
  }
  Tensor h0 = h0_in.defined() ? h0_in.detach().contiguous() : Tensor();
  Tensor c0 = c0_in.defined() ? c0_in.detach().contiguous() : Tensor();

  Tensor packed = make_tensor({n_out + (lstm ? 2 : 1) * n_state}, dt, kCPU);  // output | h_n | c_n
  Tensor xp = make_tensor({T, B, DG}, dt, kCPU);
  Tensor hprev = make_tensor({D, T, B, H}, dt, kCPU);
  Tensor aux = make_tensor({D, T, B, H}, dt, kCPU);  // LSTM: the cell state before each step; GRU: W_hn h + b_hn
  auto lens = std::make_shared<std::vector<int64_t>>(lengths);

  // The kernels' view of the layer, the same for the forward and its backward (whose closure keeps
  // these buffers alive).
  auto fused_args = [=]<typename S>() {
    RnnFusedArgs<S> a;
    a.lstm = lstm, a.T = T, a.B = B, a.I = I, a.H = H, a.D = D, a.G = G;
    a.len = lens->empty() ? nullptr : lens->data();
    a.x = x.data_ptr<S>();
    a.w_ih = w_ih.data_ptr<S>();
    for (int64_t d = 0; d < D; ++d) a.w_hh.push_back(w_hh[d].data_ptr<S>());
    a.xp = xp.data_ptr<S>();
    a.hprev = hprev.data_ptr<S>();
    (lstm ? a.cprev : a.ghn) = aux.data_ptr<S>();
    return a;
  };
  visit_floating(dt, rnn_mode_name(mode), [&]<typename S>() {
    RnnFusedArgs<S> a = fused_args.template operator()<S>();
    S* out = packed.data_ptr<S>();
    S* hn = out + n_out;
    S* cn = lstm ? hn + n_state : nullptr;
    auto run = [&](int64_t d) {
      rnn_direction_forward<S>(a, d, h0.defined() ? h0.data_ptr<S>() + d * B * H : nullptr,
                               c0.defined() ? c0.data_ptr<S>() + d * B * H : nullptr,
                               has_bias ? bias_x.data_ptr<S>() + d * G : nullptr, bias_hn.defined() ? bias_hn.data_ptr<S>() + d * H : nullptr, out, hn + d * B * H,
                               lstm ? cn + d * B * H : nullptr);
    };
    rnn_for_directions(D, T * B * G * (H + I), run);
  });

  tensor_list inputs{x_in, h0_in, c0_in};
  for (const auto& p : w) {
    inputs.push_back(p.w_ih);
    inputs.push_back(p.w_hh);
    inputs.push_back(p.b_ih);
    inputs.push_back(p.b_hh);
  }
  if (autograd::needs_grad_list(inputs)) {
    const size_t n_in = inputs.size();
    autograd::record(
        lstm ? "LstmBackward" : "GruBackward", packed, inputs, inputs,
        [=](const Tensor& g_in, const autograd::BackwardCtx& ctx) -> tensor_list {
          tensor_list saved(n_in);
          for (size_t i = 0; i < saved.size(); ++i) saved[i] = ctx.saved(i);  // checks in-place changes
          if (is_grad_enabled()) return rnn_layer_recorded_backward(mode, saved, g_in, ctx, *lens);
          Tensor g = g_in.to(dt).contiguous();
          const bool need_x = ctx.needs(0), need_h0 = ctx.needs(1), need_c0 = ctx.needs(2);
          bool need_w = false;
          for (size_t i = 3; i < saved.size(); ++i) need_w = need_w || ctx.needs(i);
          Tensor dg = make_tensor({T, B, DG}, dt, kCPU);
          Tensor dgh = lstm ? Tensor() : make_tensor({D, T, B, G}, dt, kCPU);
          Tensor dh0 = make_tensor({D, B, H}, dt, kCPU), dc0 = make_tensor({D, B, H}, dt, kCPU);
          Tensor dx, dw_ih;
          tensor_list dw_hh(D), db_hh(D);
          Tensor db_x;
          visit_floating(dt, rnn_mode_name(mode), [&]<typename S>() {
            RnnFusedArgs<S> a = fused_args.template operator()<S>();
            const S* gp = g.data_ptr<S>();
            for (int64_t d = 0; d < D; ++d) {
              dw_hh[d] = make_tensor({G, H}, dt, kCPU);
              db_hh[d] = make_tensor({G}, dt, kCPU);
            }
            if (need_w) {
              dw_ih = make_tensor({DG, I}, dt, kCPU);
              db_x = make_tensor({DG}, dt, kCPU);
            }
            // Direction 1 writes its share of dx apart; the two are added after the region.
            Tensor dx1;
            if (need_x) {
              dx = make_tensor({T, B, I}, dt, kCPU);
              if (D == 2) dx1 = make_tensor({T, B, I}, dt, kCPU);
            }
            rnn_for_directions(D, T * B * G * (H + I), [&](int64_t d) {
              {
                S* dghd = lstm ? nullptr : dgh.data_ptr<S>() + d * T * B * G;
                rnn_direction_backward<S>(a, d, gp, gp + n_out + d * B * H, lstm ? gp + n_out + n_state + d * B * H : nullptr,
                                          dg.data_ptr<S>(), dghd, dh0.data_ptr<S>() + d * B * H,
                                          dc0.data_ptr<S>() + d * B * H);
                // The rest of this direction's gradients are GEMMs over all steps at once.
                const S* dgd = dg.data_ptr<S>() + d * G;  // [T*B, G], leading dimension DG
                if (need_x) {  // dx [T*B, I] = dgates @ W_ih
                  cpu::gemm<S>(false, false, T * B, I, G, S(1), dgd, DG, a.w_ih + d * G * I, I, S(0),
                               (d == 0 ? dx : dx1).data_ptr<S>(), I);
                }
                if (!need_w) return;
                // dW_ih [G, I] = dgates^T @ x
                cpu::gemm<S>(true, false, G, I, T * B, S(1), dgd, DG, a.x, I, S(0), dw_ih.data_ptr<S>() + d * G * I, I);
                Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>>(db_x.data_ptr<S>() + d * G, G) =
                    RnnCMap<S>(dgd, T * B, G, Eigen::OuterStride<>(DG)).colwise().sum();
                // dW_hh [G, H] = sum over steps of dgates_hidden^T h_prev.
                const S* dghs = lstm ? dgd : dghd;
                const int64_t ldgh = lstm ? DG : G;
                cpu::gemm<S>(true, false, G, H, T * B, S(1), dghs, ldgh, a.hprev + d * T * B * H, H, S(0),
                             dw_hh[d].data_ptr<S>(), H);
                Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>>(db_hh[d].data_ptr<S>(), G) =
                    RnnCMap<S>(dghs, T * B, G, Eigen::OuterStride<>(ldgh)).colwise().sum();
              }
            });
            if (need_x && D == 2) {
              Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>(dx.data_ptr<S>(), T * B * I) +=
                  Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>>(dx1.data_ptr<S>(), T * B * I);
            }
          });
          tensor_list out(n_in);
          if (need_x) out[0] = dx;
          if (need_h0) out[1] = dh0;
          if (need_c0 && lstm) out[2] = dc0;
          for (int64_t d = 0; d < D; ++d) {
            const size_t k = 3 + 4 * static_cast<size_t>(d);
            if (ctx.needs(k)) out[k] = dw_ih.narrow(0, d * G, G);
            if (ctx.needs(k + 1)) out[k + 1] = dw_hh[d];
            if (ctx.needs(k + 2)) out[k + 2] = db_x.narrow(0, d * G, G);
            if (ctx.needs(k + 3)) out[k + 3] = lstm ? db_x.narrow(0, d * G, G) : db_hh[d];
          }
          return out;
        });
  }
  RnnLayerResult r;
  r.output = packed.narrow(0, 0, n_out).view({T, B, DH});
  r.h_n = packed.narrow(0, n_out, n_state).view({D, B, H});
  if (lstm) r.c_n = packed.narrow(0, n_out + n_state, n_state).view({D, B, H});
  return r;
}

}  // namespace detail

/// One LSTM or GRU layer over a time-major input x [T, B, I] (see the header comment). h0 / c0:
/// [D, B, H] initial states or undefined (zeros); c0 only for an LSTM. `w` holds 1 or 2
/// directions; `lengths` is empty (every sequence has T steps) or B values in [0, T].
inline RnnLayerResult rnn_layer(RnnMode mode, const Tensor& x, const Tensor& h0, const Tensor& c0,
                                const std::vector<RnnDirectionWeights>& w, const std::vector<int64_t>& lengths = {},
                                RnnImpl impl = RnnImpl::kAuto) {
  detail::rnn_check_layer(mode, x, h0, c0, w, lengths);
  const bool fused = impl == RnnImpl::kAuto && !x.is_cuda() && (x.dtype() == kFloat32 || x.dtype() == kFloat64);
  return fused ? detail::rnn_layer_fused(mode, x, h0, c0, w, lengths)
               : detail::rnn_layer_composite(mode, x, h0, c0, w, lengths);
}

}  // namespace ember
