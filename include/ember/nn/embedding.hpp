#pragma once
/// nn::Embedding (torch.nn.Embedding): a [num_embeddings, embedding_dim] table looked up by
/// integer indices of any shape. Initialised N(0, 1); the padding_idx row (if any) starts at zero
/// and never receives a gradient, so it stays what it is. `Embedding::from_pretrained` wraps an
/// existing table, frozen by default.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto emb = std::make_shared<nn::Embedding>(nn::EmbeddingOptions(10000, 128).padding_idx(0));
///   auto v = emb->forward(tokens);                     // tokens [B, T] int64 → [B, T, 128]
///   auto glove = nn::Embedding::from_pretrained(table); // frozen, weight.requires_grad() == false
/// ```
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/pointwise.hpp"

namespace ember::nn {

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  EMBER_ARG(int64_t, num_embeddings);
  EMBER_ARG(int64_t, embedding_dim);
  /// A row that is zero-initialised and gets no gradient (e.g. the <pad> token); negative counts
  /// from the end.
  EMBER_ARG(std::optional<int64_t>, padding_idx) = std::nullopt;
};

class Embedding : public UnaryModule {
 public:
  explicit Embedding(const EmbeddingOptions& options) : UnaryModule("Embedding"), options(options) {
    EMBER_CHECK(options.num_embeddings() >= 0 && options.embedding_dim() >= 0,
                "Embedding: sizes must be non-negative, got num_embeddings=", options.num_embeddings(),
                " embedding_dim=", options.embedding_dim());
    normalize_padding_idx();
    weight = register_parameter("weight", empty({options.num_embeddings(), options.embedding_dim()}, TensorOptions()));
    reset_parameters();
  }
  Embedding(int64_t num_embeddings, int64_t embedding_dim)
      : Embedding(EmbeddingOptions(num_embeddings, embedding_dim)) {}

  /// An Embedding whose table is a copy of `embeddings` ([num, dim]); frozen (no gradient)
  /// unless `freeze` is false. The padding row is kept as given (not zeroed), as in PyTorch.
  static std::shared_ptr<Embedding> from_pretrained(const Tensor& embeddings, bool freeze = true,
                                                    std::optional<int64_t> padding_idx = std::nullopt) {
    EMBER_CHECK(embeddings.defined() && embeddings.dim() == 2,
                "Embedding::from_pretrained: embeddings must be 2-dimensional, got shape ",
                embeddings.defined() ? embeddings.sizes() : Shape{});
    auto e = std::make_shared<Embedding>(
        EmbeddingOptions(embeddings.size(0), embeddings.size(1)).padding_idx(padding_idx));
    if (embeddings.is_floating_point()) e->to(embeddings.dtype());  // keep the table's dtype and device
    e->to(embeddings.device());
    {
      NoGradGuard ng;
      e->weight.copy_(embeddings.detach());
    }
    e->weight.requires_grad_(!freeze);
    return e;
  }

  /// weight ~ N(0, 1), then the padding row set to zero.
  void reset_parameters() {
    init::normal_(weight);
    if (options.padding_idx()) {
      NoGradGuard ng;
      weight.select(0, *options.padding_idx()).zero_();
    }
  }

  Tensor forward(const Tensor& indices) override {
    Tensor out = embedding(weight, indices);
    if (options.padding_idx() && out.requires_grad()) {
      // Same values, but lookups of the padding row are cut from the graph: that row gets no
      // gradient (PyTorch's padding_idx semantics).
      Tensor keep = ne(indices, Scalar(*options.padding_idx())).unsqueeze(-1);
      out = where(keep, out, out.detach());
    }
    return out;
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << options.num_embeddings() << ", " << options.embedding_dim();
    if (options.padding_idx()) os << ", padding_idx=" << *options.padding_idx();
    return os.str();
  }

  EmbeddingOptions options;
  Tensor weight;

 private:
  void normalize_padding_idx() {
    if (!options.padding_idx()) return;
    int64_t p = *options.padding_idx(), n = options.num_embeddings();
    EMBER_CHECK(p >= -n && p < n, "Embedding: padding_idx must be within num_embeddings (", n, "), got ", p);
    if (p < 0) options.padding_idx(p + n);
  }
};

}  // namespace ember::nn
