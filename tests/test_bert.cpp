#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/models/bert.hpp"
#include "ember/text/mlm_collator.hpp"
#include "golden_json.hpp"
#include "scratch_dir.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// models::BertModel / BertForSequenceClassification / BertForMaskedLM against a Hugging
// Face-layout checkpoint written by plain PyTorch 1.13 (tests/golden/make_bert_golden.py:
// tests/golden/bert/tiny_{cls,mlm,mlm_legacy} + bert.json): logits, loss and gradients in
// float32 and float64; save_pretrained round trips (and PyTorch reads what Ember wrote); the
// load report (missing head, unused keys, legacy names); config and safetensors errors; the MLM
// collator; the linear warm-up/decay schedule; the weight-decay groups; gradcheck.

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
namespace models = ember::models;
using bjson = nlohmann::json;

std::string bert_dir(const std::string& name) { return std::string(EMBER_SOURCE_DIR) + "/tests/golden/bert/" + name; }

const bjson& bert_golden() {
  static const bjson j = [] {
    std::ifstream f(bert_dir("bert.json"));
    return f ? bjson::parse(f) : bjson();
  }();
  return j;
}

bool have_golden() {
  if (bert_golden().is_null()) {
    MESSAGE("skipped: tests/golden/bert/bert.json not found (set EMBER_SOURCE_DIR)");
    return false;
  }
  return true;
}

Tensor gi(const char* name) { return ember_test::tensor_from_json(bert_golden().at(name)); }

/// What an error message says, or "" when `f` does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Compares logits, loss and the recorded gradients of `case_name` ("cls" or "mlm").
template <typename M>
void check_against_golden(M& model, const std::string& case_name, ember::DType dt, double tol) {
  const bjson& c = bert_golden().at(case_name);
  model.to(dt);
  model.eval();
  model.zero_grad();
  Tensor labels = gi(case_name == "cls" ? "cls_labels" : "mlm_labels");
  auto out = model.forward(gi("input_ids"), gi("attention_mask"), gi("token_type_ids"), labels);
  CHECK(out.logits.dtype() == dt);
  std::string d = ember_test::compare_to_golden(out.logits, c.at("logits"), case_name + " logits", ember_test::Tolerance::sum(tol));
  CHECK_MESSAGE(d.empty(), d);
  CHECK(out.loss.template item<double>() == doctest::Approx(c.at("loss").get<double>()).epsilon(tol));
  out.loss.backward();
  std::map<std::string, Tensor> params;
  for (auto& [k, p] : model.named_parameters()) params[k] = p;
  for (auto it = c.at("grads").begin(); it != c.at("grads").end(); ++it) {
    REQUIRE_MESSAGE(params.count(it.key()), it.key());
    std::string e = ember_test::compare_to_golden(params[it.key()].grad(), it.value(), case_name + " grad " + it.key(),
                                                  ember_test::Tolerance::sum(tol));
    CHECK_MESSAGE(e.empty(), e);
  }
}

std::map<std::string, std::vector<double>> values_of(const ember::nn::Module& m) {
  std::map<std::string, std::vector<double>> v;
  for (const auto& [k, t] : m.state_dict()) v[k] = t.to(ember::kFloat64).contiguous().to_vector<double>();
  return v;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() &&
         a.to(ember::kFloat64).contiguous().to_vector<double>() == b.to(ember::kFloat64).contiguous().to_vector<double>();
}
bool all_finite(const Tensor& t) {
  for (double v : t.to(ember::kFloat64).contiguous().to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

models::BertConfig tiny_config() {
  models::BertConfig c;
  c.vocab_size = 7;
  c.hidden_size = 4;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 6;
  c.max_position_embeddings = 5;
  c.type_vocab_size = 2;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  c.initializer_range = 0.5;
  return c;
}

}  // namespace

TEST_CASE("BertForSequenceClassification: Hugging Face checkpoint, logits/loss/gradients match PyTorch") {
  if (!have_golden()) return;
  for (auto dt : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dt);
    models::LoadReport rep;
    auto model = models::BertForSequenceClassification::from_pretrained(bert_dir("tiny_cls"),
                                                                        models::PretrainedOptions().report(&rep));
    CHECK(rep.missing_keys.empty());
    CHECK(rep.unexpected_keys.empty());
    CHECK(rep.loaded == 41);  // 5 embeddings + 2 x 16 per layer + pooler + classifier
    CHECK(model->num_labels() == 3);
    CHECK(model->config.hidden_size == 16);
    check_against_golden(*model, "cls", dt, dt == ember::kFloat32 ? 2e-5 : 1e-10);
  }
}

TEST_CASE("BertForMaskedLM: tied decoder, both key spellings, logits/loss/gradients match PyTorch") {
  if (!have_golden()) return;
  for (const char* dir : {"tiny_mlm", "tiny_mlm_legacy"}) {
    for (auto dt : {ember::kFloat32, ember::kFloat64}) {
      CAPTURE(dir);
      CAPTURE(dt);
      models::LoadReport rep;
      auto model = models::BertForMaskedLM::from_pretrained(bert_dir(dir), models::PretrainedOptions().report(&rep));
      CHECK(rep.missing_keys.empty());
      CHECK(rep.unexpected_keys.empty());  // position_ids and the stored decoder.weight are not "unused"
      if (std::string(dir) == "tiny_mlm_legacy") {
        bool gamma = false, decoder_bias = false;
        for (const auto& r : rep.renamed_keys) {
          gamma = gamma || contains(r, "LayerNorm.gamma -> ");
          decoder_bias = decoder_bias || r == "cls.predictions.decoder.bias -> cls.predictions.bias";
        }
        CHECK(gamma);
        CHECK(decoder_bias);
      }
      // The decoder is the embedding table itself.
      CHECK(model->cls->predictions->decoder->weight.is_same(model->bert->embeddings->word_embeddings->weight));
      CHECK(!model->bert->pooler);
      check_against_golden(*model, "mlm", dt, dt == ember::kFloat32 ? 2e-5 : 1e-10);

      // masked_lm: the same loss, logits only at the labelled positions.
      auto full = model->forward(gi("input_ids"), gi("attention_mask"), gi("token_type_ids"), gi("mlm_labels"));
      auto part = model->masked_lm(gi("input_ids"), gi("attention_mask"), gi("token_type_ids"), gi("mlm_labels"));
      CHECK(part.logits.sizes() == ember::Shape{5, 50});
      CHECK(part.targets.to_vector<int64_t>() == std::vector<int64_t>{11, 4, 3, 49, 30});
      CHECK(part.loss.item<double>() == doctest::Approx(full.loss.item<double>()).epsilon(1e-6));
      Tensor row = full.logits.select(0, 2).select(0, 5);  // the 5th labelled position
      CHECK(ember::sub(part.logits.select(0, 4), row).abs().max().item<double>() < 1e-5);
    }
  }
}

TEST_CASE("BERT save_pretrained: Hugging Face layout, identical reload, readable by PyTorch") {
  if (!have_golden()) return;
  ember_test::ScratchDir tmp("bert_save");
  auto cls = models::BertForSequenceClassification::from_pretrained(bert_dir("tiny_cls"), models::PretrainedOptions().verbose(false));
  cls->save_pretrained((tmp.path() / "cls").string());
  auto mlm = models::BertForMaskedLM::from_pretrained(bert_dir("tiny_mlm_legacy"), models::PretrainedOptions().verbose(false));
  mlm->save_pretrained((tmp.path() / "mlm").string());

  models::LoadReport rep;
  auto cls2 = models::BertForSequenceClassification::from_pretrained((tmp.path() / "cls").string(),
                                                                     models::PretrainedOptions().report(&rep));
  CHECK(rep.missing_keys.empty());
  CHECK(rep.unexpected_keys.empty());
  CHECK(values_of(*cls2) == values_of(*cls));
  CHECK(cls2->config.id2label == cls->config.id2label);
  auto mlm2 = models::BertForMaskedLM::from_pretrained((tmp.path() / "mlm").string(), models::PretrainedOptions().report(&rep));
  CHECK(rep.missing_keys.empty());
  CHECK(rep.unexpected_keys.empty());
  CHECK(rep.renamed_keys.empty());  // Ember writes the current spellings
  CHECK(values_of(*mlm2) == values_of(*mlm));

  // What transformers expects in the file: its key names, no tied copy, format=pt metadata.
  std::string st = (tmp.path() / "mlm" / "model.safetensors").string();
  auto file = ember::io::read_safetensors(st);
  CHECK(file.metadata.at("format") == "pt");
  CHECK(file.tensors.contains("cls.predictions.bias"));
  CHECK(file.tensors.contains("bert.encoder.layer.1.output.LayerNorm.weight"));
  CHECK(!file.tensors.contains("cls.predictions.decoder.weight"));
  CHECK(!file.tensors.contains("bert.pooler.dense.weight"));
  auto cfg = bjson::parse(slurp((tmp.path() / "mlm" / "config.json").string()));
  CHECK(cfg.at("architectures").at(0) == "BertForMaskedLM");
  CHECK(cfg.at("model_type") == "bert");
  CHECK(cfg.at("hidden_act") == "gelu");

  if (!have_torch()) {
    MESSAGE("skipped the PyTorch reader: /usr/bin/python3 with torch is not available");
    return;
  }
  std::string cmd = "/usr/bin/python3 " + std::string(EMBER_SOURCE_DIR) + "/tests/golden/make_bert_golden.py check";
  for (const char* kind : {"cls", "mlm"}) cmd += " '" + (tmp.path() / kind).string() + "' " + kind;
  CHECK_MESSAGE(std::system((cmd + " >/dev/null").c_str()) == 0, cmd);
}

TEST_CASE("BERT from_pretrained: missing head created and reported, unused keys reported, prefixes") {
  if (!have_golden()) return;
  models::LoadReport rep;
  // A masked-LM checkpoint into a classifier: the classifier (and the pooler) are new.
  auto cls = models::BertForSequenceClassification::from_pretrained(
      bert_dir("tiny_mlm"), models::PretrainedOptions().num_labels(2).verbose(false).report(&rep));
  CHECK(cls->num_labels() == 2);
  CHECK(std::set<std::string>(rep.missing_keys.begin(), rep.missing_keys.end()) ==
        std::set<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"});
  CHECK(rep.unexpected_keys.size() == 5);
  for (const auto& k : rep.unexpected_keys) CHECK(k.rfind("cls.predictions.", 0) == 0);
  std::string w = rep.warnings("BertForSequenceClassification", "tiny_mlm");
  CHECK(contains(w, "newly initialized: ['bert.pooler.dense.weight'"));
  CHECK(contains(w, "were not used when initializing BertForSequenceClassification"));
  // The new head is initialised as Hugging Face does: N(0, 0.02) weight, zero bias.
  CHECK(cls->classifier->bias.abs().max().item<double>() == 0);
  double sd = ember::sqrt(ember::mean(ember::square(cls->classifier->weight))).item<double>();
  CHECK(sd > 0.005);
  CHECK(sd < 0.05);
  // The loaded encoder weights are the checkpoint's.
  auto file = ember::io::load_safetensors(bert_dir("tiny_mlm") + "/model.safetensors");
  CHECK(same_values(cls->bert->encoder->layers[1]->output->dense->weight,
                     file.at("bert.encoder.layer.1.output.dense.weight")));

  // A head model's file into BertModel: "bert." dropped, head keys unused.
  auto base = models::BertModel::from_pretrained(bert_dir("tiny_cls"), models::PretrainedOptions().verbose(false).report(&rep));
  CHECK(rep.missing_keys.empty());
  CHECK(std::set<std::string>(rep.unexpected_keys.begin(), rep.unexpected_keys.end()) ==
        std::set<std::string>{"classifier.weight", "classifier.bias"});
  // And back: a bare BertModel folder into a classifier gets the prefix added.
  ember_test::ScratchDir tmp("bert_prefix");
  base->save_pretrained(tmp.path().string());
  CHECK(ember::io::read_safetensors((tmp.path() / "model.safetensors").string()).tensors.contains("embeddings.LayerNorm.weight"));
  auto cls3 = models::BertForSequenceClassification::from_pretrained(tmp.path().string(),
                                                                     models::PretrainedOptions().verbose(false).report(&rep));
  CHECK(rep.unexpected_keys.empty());
  CHECK(rep.missing_keys == std::vector<std::string>{"classifier.weight", "classifier.bias"});
  CHECK(same_values(cls3->bert->pooler->dense->weight, base->pooler->dense->weight));
}

TEST_CASE("BertConfig: missing or absurd fields name the file and the field") {
  if (!have_golden()) return;
  ember_test::ScratchDir tmp("bert_config");
  const bjson good = bjson::parse(slurp(bert_dir("tiny_cls/config.json")));
  auto with = [&](const std::string& field, const bjson& value, bool erase = false) {
    bjson j = good;
    if (erase) j.erase(field);
    else j[field] = value;
    spit(tmp / "config.json", j.dump());
    return error_of([&] { models::BertConfig::from_pretrained(tmp.path().string()); });
  };
  CHECK(with("hidden_size", 16).empty());
  struct Case {
    std::string field;
    bjson value;
    bool erase;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"hidden_size", nullptr, true, "missing field \"hidden_size\""},
      {"vocab_size", nullptr, true, "missing field \"vocab_size\""},
      {"hidden_size", 15, false, "hidden_size (15) is not a multiple of num_attention_heads (2)"},
      {"vocab_size", -5, false, "vocab_size must be in [1, "},
      {"num_hidden_layers", "two", false, "field \"num_hidden_layers\" must be an integer, got \"two\""},
      {"intermediate_size", 32.5, false, "field \"intermediate_size\" must be an integer"},
      {"hidden_act", "swish", false, "hidden_act \"swish\" is not supported"},
      {"hidden_act", 3, false, "field \"hidden_act\" must be a string"},
      {"hidden_dropout_prob", 1.5, false, "hidden_dropout_prob must be in [0, 1)"},
      {"layer_norm_eps", 0, false, "layer_norm_eps must be in (0, 1)"},
      {"layer_norm_eps", "tiny", false, "field \"layer_norm_eps\" must be a number"},
      {"pad_token_id", 50, false, "pad_token_id 50 is outside the vocabulary"},
      {"max_position_embeddings", 0, false, "max_position_embeddings must be in [1, "},
      {"num_attention_heads", 0, false, "num_attention_heads must be in [1, "},
      {"model_type", "gpt2", false, "model_type is \"gpt2\""},
      {"position_embedding_type", "relative_key", false, "position_embedding_type \"relative_key\" is not supported"},
      {"id2label", bjson::object({{"0", "a"}, {"2", "b"}}), false, "id2label ids must be 0"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.field);
    CAPTURE(c.value.dump());
    std::string e = with(c.field, c.value, c.erase);
    CHECK_MESSAGE(contains(e, c.expect), e);
    CHECK_MESSAGE(contains(e, "config.json"), e);
  }
  spit(tmp / "config.json", "{\"hidden_size\": 16,");
  CHECK(contains(error_of([&] { models::BertConfig::from_pretrained(tmp.path().string()); }), "is not valid JSON"));
  CHECK(contains(error_of([&] { models::BertConfig::from_pretrained((tmp.path() / "nowhere").string()); }),
                 "does not exist"));
  // 768.0 is an integer written as a float: accepted, as Python would.
  CHECK(with("hidden_size", 16.0).empty());
}

TEST_CASE("BERT from_pretrained: lying safetensors files and mismatched shapes give clear errors") {
  if (!have_golden()) return;
  ember_test::ScratchDir tmp("bert_lying");
  std::filesystem::copy_file(bert_dir("tiny_cls/config.json"), tmp / "config.json");
  const std::string bytes = slurp(bert_dir("tiny_cls/model.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  bjson header = bjson::parse(bytes.substr(8, n));
  const std::string data = bytes.substr(8 + n);
  auto write_with = [&](const bjson& h, const std::string& d) {
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    uint64_t len = text.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &len, 8);
    spit(tmp / "model.safetensors", out + text + d);
    return error_of([&] {
      models::BertForSequenceClassification::from_pretrained(tmp.path().string(), models::PretrainedOptions().verbose(false));
    });
  };
  CHECK(write_with(header, data).empty());
  const std::string key = "classifier.bias";
  {
    bjson h = header;  // offsets past the end of the file
    auto off = h[key]["data_offsets"];
    h[key]["data_offsets"] = {off[0].get<uint64_t>() + 1000000, off[1].get<uint64_t>() + 1000000};
    std::string e = write_with(h, data);
    CHECK_MESSAGE(contains(e, "run past the end of the data"), e);
    CHECK_MESSAGE(contains(e, key), e);
    CHECK_MESSAGE(contains(e, "model.safetensors"), e);
  }
  {
    bjson h = header;  // a shape that disagrees with the byte count
    h[key]["shape"] = {4};
    std::string e = write_with(h, data);
    CHECK_MESSAGE(contains(e, "needs 16 bytes but data_offsets"), e);
  }
  {
    std::string e = write_with(header, data.substr(0, data.size() - 10));  // truncated
    CHECK_MESSAGE(contains(e, "model.safetensors"), e);
    CHECK(!e.empty());
  }
  {
    std::string e = write_with(header, data + "junk!!!!");  // undescribed trailing bytes
    CHECK_MESSAGE(contains(e, "not described by the header"), e);
  }
  {
    bjson h = header;  // a consistent file, but not the shapes config.json promises
    h[key]["shape"] = {1, 3};  // [1, 3] has the bytes of [3]: the reader accepts it, the model not
    std::string e = write_with(h, data);
    CHECK_MESSAGE(contains(e, "size mismatch for classifier.bias: copying a param with shape [1, 3]"), e);
    bjson cfg = bjson::parse(slurp(bert_dir("tiny_cls/config.json")));
    cfg["intermediate_size"] = 24;  // ... and a wrong config gives size mismatches
    spit(tmp / "config.json", cfg.dump());
    e = write_with(header, data);
    CHECK_MESSAGE(contains(e, "size mismatch for bert.encoder.layer.0.intermediate.dense.weight"), e);
    CHECK_MESSAGE(contains(e, "does config.json describe this checkpoint"), e);
  }
  std::filesystem::remove(tmp / "model.safetensors");
  CHECK(contains(error_of([&] { models::BertModel::from_pretrained(tmp.path().string()); }), "has no model.safetensors"));
  spit(tmp / "pytorch_model.bin", "pickle");
  CHECK(contains(error_of([&] { models::BertModel::from_pretrained(tmp.path().string()); }), "safe_serialization=True"));
}

TEST_CASE("BertModel: input checks, padding, HF initialisation") {
  ember::manual_seed(3);
  models::BertConfig c = tiny_config();
  c.initializer_range = 0.02;
  c.pad_token_id = 1;
  models::BertModel bert(c);
  bert.eval();
  CHECK(bert.embeddings->word_embeddings->weight.select(0, 1).abs().max().item<double>() == 0);
  CHECK(bert.embeddings->LayerNorm->weight.min().item<double>() == 1);
  CHECK(bert.encoder->layers[0]->attention->self->query->bias.abs().max().item<double>() == 0);
  Tensor ids = ember::tensor<int64_t>({2, 3, 4, 5, 6, 2}, {1, 6});
  CHECK(contains(error_of([&] { bert.forward(ids); }), "sequence length 6 exceeds max_position_embeddings (5)"));
  CHECK(contains(error_of([&] { bert.forward(ember::zeros({2, 3})); }), "input_ids"));
  Tensor ids3 = ember::tensor<int64_t>({2, 3, 4}, {1, 3});
  CHECK(contains(error_of([&] { bert.forward(ids3, ember::ones({1, 4}, ember::kInt64)); }), "attention_mask"));
  CHECK(!error_of([&] { bert.forward(ids3, {}, ember::full({1, 3}, 2, ember::kInt64)); }).empty());  // type 2 of 2
  // Padding: appending padded tokens changes nothing at the real positions.
  Tensor a = bert.forward(ids3).last_hidden_state;
  Tensor b = bert.forward(ember::tensor<int64_t>({2, 3, 4, 1, 1}, {1, 5}),
                          ember::tensor<int64_t>({1, 1, 1, 0, 0}, {1, 5})).last_hidden_state;
  CHECK(ember::sub(a, b.narrow(1, 0, 3)).abs().max().item<double>() < 1e-5);
  // A row of only padding gives finite values (finfo.min, not -inf), as transformers.
  Tensor z = bert.forward(ids3, ember::zeros({1, 3}, ember::kInt64)).last_hidden_state;
  CHECK(all_finite(z));
}

TEST_CASE("BertModel: gradcheck (and gradgradcheck) in float64 with padding") {
  ember::manual_seed(5);
  models::BertConfig c = tiny_config();
  c.hidden_act = "gelu";
  models::BertModel bert(c);
  bert.to(ember::kFloat64);
  bert.eval();
  Tensor ids = ember::tensor<int64_t>({2, 5, 3, 0, 4, 6, 1, 3}, {2, 4});
  Tensor mask = ember::tensor<int64_t>({1, 1, 1, 0, 1, 1, 1, 1}, {2, 4});
  Tensor types = ember::tensor<int64_t>({0, 0, 0, 0, 0, 0, 1, 1}, {2, 4});
  // The word embeddings are left out: the pad_token_id row gets no gradient by design
  // (padding_idx), which finite differences would not see.
  ember::tensor_list params;
  for (auto& [n, p] : bert.named_parameters())
    if (n != "embeddings.word_embeddings.weight") params.push_back(p);
  auto f = [&](const ember::tensor_list&) {
    auto o = bert.forward(ids, mask, types);
    return ember::cat({o.last_hidden_state.reshape({-1}), o.pooler_output.reshape({-1})}, 0);
  };
  auto r = ember::autograd::gradcheck(f, params);
  CHECK_MESSAGE(r.ok, r.message);
  auto& l0 = bert.encoder->layers[0];
  ember::tensor_list some{l0->attention->self->query->weight, l0->intermediate->dense->weight,
                          bert.embeddings->LayerNorm->weight};
  auto r2 = ember::autograd::gradgradcheck(f, some);
  CHECK_MESSAGE(r2.ok, r2.message);
}

TEST_CASE("DataCollatorForLanguageModeling: 15% / 80-10-10 proportions, never special or padding, seeded") {
  const int64_t V = 1000, kMask = 103, kPad = 0, kCls = 101, kSep = 102, kUnk = 100;
  const int64_t B = 64, L = 512;
  std::vector<int64_t> ids(B * L), att(B * L, 1);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = L - 3 * b;  // later rows padded
    for (int64_t t = 0; t < L; ++t) {
      int64_t& v = ids[b * L + t];
      if (t == 0) v = kCls;
      else if (t == len - 1) v = kSep;
      else if (t >= len) v = kPad, att[b * L + t] = 0;
      else v = t % 97 == 0 ? kUnk : 200 + (b * 7 + t * 13) % 800;
    }
  }
  Tensor tids = ember::tensor(ids, {B, L}), tatt = ember::tensor(att, {B, L});
  ember::text::DataCollatorForLanguageModeling collate(V, kMask, {kPad, kUnk, kCls, kSep, kMask});
  ember::text::DataCollatorForLanguageModeling twin = collate;
  auto m = collate(tids, tatt);
  auto in = m.input_ids.to_vector<int64_t>(), lab = m.labels.to_vector<int64_t>();
  int64_t eligible = 0, chosen = 0, masked = 0, kept = 0, random = 0;
  bool special_touched = false, label_wrong = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool special = ids[i] == kPad || ids[i] == kCls || ids[i] == kSep || ids[i] == kUnk;
    if (special || att[i] == 0) {
      special_touched = special_touched || lab[i] != -100 || in[i] != ids[i];
      continue;
    }
    ++eligible;
    if (lab[i] == -100) {
      label_wrong = label_wrong || in[i] != ids[i];
      continue;
    }
    label_wrong = label_wrong || lab[i] != ids[i];
    ++chosen;
    if (in[i] == kMask) ++masked;
    else if (in[i] == ids[i]) ++kept;
    else ++random;
  }
  CHECK(!special_touched);
  CHECK(!label_wrong);
  const double p = static_cast<double>(chosen) / static_cast<double>(eligible);
  CHECK(p == doctest::Approx(0.15).epsilon(0.05));  // ~27k eligible: sd of p is 0.002
  CHECK(static_cast<double>(masked) / static_cast<double>(chosen) == doctest::Approx(0.8).epsilon(0.03));
  CHECK(static_cast<double>(random) / static_cast<double>(chosen) == doctest::Approx(0.1).epsilon(0.15));
  CHECK(static_cast<double>(kept) / static_cast<double>(chosen) == doctest::Approx(0.1).epsilon(0.15));
  // Deterministic: a copy continues the same stream; the next call draws new masks.
  auto m2 = twin(tids, tatt);
  CHECK(same_values(m2.labels, m.labels));
  auto m3 = collate(tids, tatt);
  CHECK(!same_values(m3.labels, m.labels));
  auto state = collate.get_state();
  auto m4 = collate(tids, tatt);
  collate.set_state(state);
  CHECK(same_values(collate(tids, tatt).input_ids, m4.input_ids));
  CHECK(contains(error_of([&] { collate(ember::zeros({2, 3})); }), "integer input_ids"));
  CHECK(contains(error_of([] {
          ember::text::DataCollatorForLanguageModeling(V, kMask, {}, ember::text::MlmCollatorOptions().mlm_probability(1.5));
        }),
        "mlm_probability"));
}

TEST_CASE("LinearWarmupDecayLR: transformers' get_linear_schedule_with_warmup values") {
  Tensor w = ember::zeros({2}).requires_grad_(true);
  ember::optim::AdamW opt({w}, ember::optim::AdamWOptions(1.0));
  ember::optim::LinearWarmupDecayLR sched(opt, 3, 10);
  std::vector<double> want = {0.0, 1.0 / 3, 2.0 / 3, 1.0, 6.0 / 7, 5.0 / 7, 4.0 / 7, 3.0 / 7, 2.0 / 7, 1.0 / 7, 0.0, 0.0};
  for (size_t s = 0; s < want.size(); ++s) {
    CAPTURE(s);
    CHECK(opt.param_groups()[0].options().get_lr() == doctest::Approx(want[s]).epsilon(1e-12));
    sched.step();
  }
  // Resume from a state_dict.
  ember::optim::AdamW opt2({w}, ember::optim::AdamWOptions(1.0));
  ember::optim::LinearWarmupDecayLR sched2(opt2, 3, 10);
  ember::optim::AdamW opt3({w}, ember::optim::AdamWOptions(1.0));
  ember::optim::LinearWarmupDecayLR sched3(opt3, 3, 10);
  for (int i = 0; i < 5; ++i) sched2.step();
  sched3.load_state_dict(sched2.state_dict());
  sched3.step();
  CHECK(opt3.param_groups()[0].options().get_lr() == doctest::Approx(4.0 / 7));
  // No warm-up: starts at base_lr.
  ember::optim::AdamW opt4({w}, ember::optim::AdamWOptions(2e-5));
  ember::optim::LinearWarmupDecayLR sched4(opt4, 0, 4);
  CHECK(opt4.param_groups()[0].options().get_lr() == doctest::Approx(2e-5));
  CHECK(contains(error_of([&] { ember::optim::LinearWarmupDecayLR(opt4, -1, 4); }), "num_warmup_steps"));
}

TEST_CASE("weight_decay_groups: biases and LayerNorm without decay, tied weights once") {
  ember::manual_seed(9);
  models::BertForMaskedLM mlm(tiny_config());
  auto split = ember::optim::split_weight_decay(mlm);
  std::set<std::string> no, yes;
  for (auto& [n, p] : split.no_decay) no.insert(n);
  for (auto& [n, p] : split.decay) yes.insert(n);
  CHECK(no.count("cls.predictions.bias"));
  CHECK(no.count("bert.embeddings.LayerNorm.weight"));
  CHECK(no.count("bert.encoder.layer.0.attention.output.LayerNorm.bias"));
  CHECK(no.count("cls.predictions.transform.LayerNorm.weight"));
  CHECK(no.count("bert.encoder.layer.0.attention.self.query.bias"));
  CHECK(yes.count("bert.embeddings.word_embeddings.weight"));
  CHECK(!yes.count("cls.predictions.decoder.weight"));  // the tied table appears once
  CHECK(yes.count("bert.encoder.layer.0.intermediate.dense.weight"));
  for (const auto& n : yes) CHECK_MESSAGE((!contains(n, "bias") && !contains(n, "LayerNorm")), n);
  CHECK(split.decay.size() + split.no_decay.size() == mlm.parameters().size());
  CHECK(split.decay.size() == 3 + 6 + 1);  // 3 embeddings, 6 layer weights, the transform's dense

  auto groups = ember::optim::weight_decay_groups(mlm, ember::optim::AdamWOptions(1e-3).weight_decay(0.01));
  REQUIRE(groups.size() == 2);
  ember::optim::AdamW opt(groups, ember::optim::AdamWOptions(1e-3));
  auto& o0 = dynamic_cast<ember::optim::AdamWOptions&>(opt.param_groups()[0].options());
  auto& o1 = dynamic_cast<ember::optim::AdamWOptions&>(opt.param_groups()[1].options());
  CHECK(o0.weight_decay() == 0.01);
  CHECK(o1.weight_decay() == 0.0);
  CHECK(o1.lr() == 1e-3);
  // One step with zero gradients: decayed weights shrink by lr * wd, the others stay.
  Tensor before_w = mlm.bert->encoder->layers[0]->intermediate->dense->weight.clone();
  Tensor before_ln = mlm.bert->embeddings->LayerNorm->weight.clone();
  for (auto& p : mlm.parameters()) p.set_grad(ember::zeros_like(p.detach()));
  opt.step();
  CHECK(ember::sub(mlm.bert->encoder->layers[0]->intermediate->dense->weight, ember::mul(before_w, ember::Scalar(1 - 1e-5)))
            .abs().max().item<double>() < 1e-7);
  CHECK(same_values(mlm.bert->embeddings->LayerNorm->weight, before_ln));
}
