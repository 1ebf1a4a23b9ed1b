// bert_tasks.hpp: the BERT half of review_sentiment (tutorial 3, part 2), included by main.cpp
// after its data pipeline and command-line plumbing (it uses read_corpus, data_file, setup,
// CommonOptions, TrainOptions, fixed, shorten, Stop, kClasses, kValFraction and report_eval).
//
//   review_sentiment pretrain                        # masked-LM pre-training of a small BERT
//   review_sentiment train --model bert --pretrained runs/review_sentiment/pretrain
//   review_sentiment train --model bert              # the same small BERT, randomly initialised
//   review_sentiment eval / predict                  # a BERT checkpoint is recognised by itself
//
// BERT reads the raw review (no digit removal, t2s, jieba or stopwords: its WordPiece tokenizer
// splits every CJK character on its own). Texts are tokenized once, then batched by length: each
// batch is padded only to its longest text, and batches are drawn from length-sorted buckets, so
// little compute is spent on padding.
//
// Files (all in Hugging Face layout where a model is concerned):
//   pretrain --out DIR: config.json + model.safetensors (BertForMaskedLM) + vocab.txt +
//     tokenizer_config.json, i.e. a folder `train --model bert --pretrained DIR` (and transformers)
//     loads; last.safetensors (the training state for --resume: weights, AdamW, schedule, RNG,
//     collator stream, position), metrics.csv, steps.csv, curves.png.
//   train --model bert --out DIR: best/ (BertForSequenceClassification folder of the best epoch,
//     plus review_sentiment.json with the settings), last.safetensors, best.json, metrics.csv,
//     steps.csv, curves.png.
#pragma once

#include "ember/models/bert.hpp"
#include "ember/nn/utils.hpp"
#include "ember/optim/linear_warmup_decay.hpp"
#include "ember/optim/weight_decay_groups.hpp"
#include "ember/text/bert_tokenizer.hpp"
#include "ember/text/mlm_collator.hpp"

namespace bert_tasks {

constexpr int64_t kBertMaxLength = 128;      // the original: max_length=128
constexpr double kFineTuneLr = 2e-5;         // the original: AdamW(lr=2e-5)
constexpr int64_t kFineTuneEpochs = 5;       // the original: 5 epochs
constexpr double kPretrainLr = 5e-4;         // small BERTs pre-train well at 1e-4 .. 1e-3
constexpr int64_t kPretrainEpochs = 3;
constexpr double kWeightDecay = 0.01;
constexpr double kClipNorm = 1.0;
constexpr double kWarmupFraction = 0.1;      // default warm-up: 10% of the schedule
constexpr int64_t kBucketBatches = 50;       // batches per length-sorted bucket
constexpr int64_t kEvalBatch = 64;
const char* const kInfoFile = "review_sentiment.json";

// ---- tokenizer and model folders ----------------------------------------------------------------

/// The tokenizer of a vocab.txt: with its folder's tokenizer_config.json (bert-base-chinese says
/// do_lower_case false) when the file is a Hugging Face folder's vocab.txt.
inline text::BertTokenizer tokenizer_from_vocab(const fs::path& vocab) {
  EMBER_CHECK(fs::is_regular_file(vocab), "--vocab: no file '", vocab.string(), "'");
  if (vocab.filename() == "vocab.txt" && fs::exists(vocab.parent_path() / "tokenizer_config.json"))
    return text::BertTokenizer::from_pretrained(vocab.parent_path().string());
  return text::BertTokenizer::from_vocab_file(vocab.string());
}

/// --vocab FILE, else bert-base-chinese/vocab.txt by the data lookup.
inline fs::path vocab_path(const std::string& vocab) {
  if (!vocab.empty()) return vocab;
  fs::path dir;
  try {
    dir = data::find_data_dir("", "bert-base-chinese");
  } catch (const Error&) {
    EMBER_FAIL("no bert-base-chinese folder in $EMBER_DATA, ../shared/data or ./data: pass --vocab FILE "
               "(a BERT vocab.txt, one token per line)");
  }
  return dir / "vocab.txt";
}

/// Writes vocab.txt and tokenizer_config.json beside a model, so the folder is complete.
inline void save_tokenizer(const fs::path& dir, const text::BertTokenizer& tok) {
  fs::create_directories(dir);
  tok.vocab().save((dir / "vocab.txt").string());
  const auto& o = tok.options();
  nlohmann::ordered_json j{{"do_lower_case", o.do_lower_case()},
                           {"strip_accents", o.strip_accents() ? nlohmann::ordered_json(*o.strip_accents()) : nullptr},
                           {"tokenize_chinese_chars", o.tokenize_chinese_chars()},
                           {"model_max_length", o.model_max_length()},
                           {"tokenizer_class", "BertTokenizer"},
                           {"unk_token", o.unk_token()}, {"sep_token", o.sep_token()}, {"pad_token", o.pad_token()},
                           {"cls_token", o.cls_token()}, {"mask_token", o.mask_token()}};
  const std::string s = j.dump(2) + "\n";
  io::write_file_atomic((dir / "tokenizer_config.json").string(), "tokenizer_config.json", [&](io::FileWriter& w) { w.write(s); });
}

/// The ids a tokenizer produces must exist in the model's embedding table, and the inputs must fit
/// its position table.
inline void check_compatible(const text::BertTokenizer& tok, const models::BertConfig& cfg, int64_t max_length,
                             const std::string& what) {
  EMBER_CHECK(tok.vocab_size() <= cfg.vocab_size, what, ": the vocabulary has ", tok.vocab_size(),
              " tokens but the model's vocab_size is ", cfg.vocab_size, " (a different vocab.txt?)");
  EMBER_CHECK(max_length >= 3 && max_length <= cfg.max_position_embeddings, "--max-length ", max_length,
              " must be in [3, max_position_embeddings = ", cfg.max_position_embeddings, "] of ", what);
}

/// Architecture options of the small BERT (pretrain, and train --model bert without --pretrained).
inline models::BertConfig small_config(const TrainOptions& t, const text::BertTokenizer& tok) {
  models::BertConfig c = models::BertConfig::small(tok.vocab_size(), std::max<int64_t>(512, t.max_length));
  c.num_hidden_layers = t.layers, c.hidden_size = t.hidden, c.num_attention_heads = t.heads;
  c.intermediate_size = t.intermediate;
  c.pad_token_id = tok.pad_token_id();
  c.validate("the small BERT (--layers/--hidden/--heads/--intermediate)");
  return c;
}

// ---- data: tokenized once, batched by length ---------------------------------------------------

/// Texts as [CLS] ids [SEP] (cut to max_length), with their labels.
struct Encoded {
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> labels;
  int64_t truncated = 0;
  int64_t tokens = 0;  // all ids, specials included
};

inline Encoded encode_texts(const text::BertTokenizer& tok, const std::vector<std::string>& texts,
                            const std::vector<int64_t>& labels, const std::vector<int64_t>& rows, int64_t max_length) {
  Encoded e;
  const size_t n = rows.empty() ? texts.size() : rows.size();
  e.ids.resize(n);
  e.labels.resize(n);
  std::vector<int64_t> cut(n, 0);
  const auto room = static_cast<size_t>(max_length - 2);
#pragma omp parallel for schedule(dynamic, 256)
  for (size_t i = 0; i < n; ++i) {
    const size_t r = rows.empty() ? i : static_cast<size_t>(rows[i]);
    std::vector<int64_t> ids = tok.token_ids(texts[r]);
    if (ids.size() > room) cut[i] = 1, ids.resize(room);
    ids.insert(ids.begin(), tok.cls_token_id());
    ids.push_back(tok.sep_token_id());
    e.ids[i] = std::move(ids);
    e.labels[i] = labels.empty() ? 0 : labels[r];
  }
  for (size_t i = 0; i < n; ++i) e.truncated += cut[i], e.tokens += static_cast<int64_t>(e.ids[i].size());
  return e;
}

inline void notice_truncation(const Encoded& e, int64_t max_length, const std::string& what) {
  if (e.truncated)
    std::cerr << what << ": " << e.truncated << " of " << e.ids.size() << " texts are longer than " << max_length
              << " tokens and were truncated (--max-length)\n";
}

/// The batches of one epoch (row indices). Training: shuffled by (seed, epoch) — so a resumed run
/// draws the same order — then sorted by length within buckets of kBucketBatches batches, and the
/// batches shuffled. Evaluation (shuffle false): all rows sorted by length.
inline std::vector<std::vector<int64_t>> make_batches(const Encoded& e, int64_t batch_size, bool shuffle, uint64_t seed,
                                                      int64_t epoch) {
  const auto n = static_cast<int64_t>(e.ids.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  auto by_length = [&](int64_t a, int64_t b) { return e.ids[static_cast<size_t>(a)].size() < e.ids[static_cast<size_t>(b)].size(); };
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
  if (shuffle) {
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t bucket = batch_size * kBucketBatches;
    for (int64_t b = 0; b < n; b += bucket)
      std::stable_sort(order.begin() + b, order.begin() + std::min(n, b + bucket), by_length);
  } else {
    std::stable_sort(order.begin(), order.end(), by_length);
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < n; b += batch_size)
    batches.emplace_back(order.begin() + b, order.begin() + std::min(n, b + batch_size));
  if (shuffle) std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

inline int64_t num_batches(const Encoded& e, int64_t batch_size) {
  return (static_cast<int64_t>(e.ids.size()) + batch_size - 1) / batch_size;
}

/// One batch padded to its longest row: input_ids, attention_mask, token_type_ids [B, L], labels [B].
struct Batch {
  Tensor input_ids, attention_mask, token_type_ids, labels;
  int64_t tokens = 0;  // non-padding tokens
};

inline Batch make_batch(const Encoded& e, const std::vector<int64_t>& rows, int64_t pad_id, Device device) {
  size_t L = 1;
  for (int64_t r : rows) L = std::max(L, e.ids[static_cast<size_t>(r)].size());
  const auto B = static_cast<int64_t>(rows.size());
  std::vector<int64_t> ids(rows.size() * L, pad_id), mask(rows.size() * L, 0), labels;
  Batch b;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = e.ids[static_cast<size_t>(rows[i])];
    std::copy(row.begin(), row.end(), ids.begin() + static_cast<std::ptrdiff_t>(i * L));
    std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(i * L), row.size(), 1);
    labels.push_back(e.labels[static_cast<size_t>(rows[i])]);
    b.tokens += static_cast<int64_t>(row.size());
  }
  const auto Ls = static_cast<int64_t>(L);
  b.input_ids = tensor(ids, {B, Ls}).to(device);
  b.attention_mask = tensor(mask, {B, Ls}).to(device);
  b.token_type_ids = zeros({B, Ls}, TensorOptions(kInt64)).to(device);
  b.labels = tensor(labels, {B}).to(device);
  return b;
}

/// A seeded fraction of rows for validation (at most `cap`), the rest for training; both sorted.
inline std::pair<std::vector<int64_t>, std::vector<int64_t>> split_rows(size_t n, double fraction, size_t cap, uint64_t seed) {
  std::vector<int64_t> rows(n), val;
  std::iota(rows.begin(), rows.end(), 0);
  if (n < 20) return {rows, val};
  std::mt19937_64 rng(seed);
  std::shuffle(rows.begin(), rows.end(), rng);
  const size_t nval = std::min(cap, std::max<size_t>(1, static_cast<size_t>(fraction * static_cast<double>(n))));
  val.assign(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(nval));
  rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(nval));
  std::sort(rows.begin(), rows.end());
  std::sort(val.begin(), val.end());
  return {rows, val};
}

/// Loss and accuracy curves (train vs validation, or vs test) in one PNG.
inline void plot_curves(const fs::path& path, const utils::MetricsLog& log, const std::string& other,
                        const std::string& loss_col, const std::string& acc_col, const std::string& title) {
  utils::LinePlot loss(title + " loss", "Epoch", "Loss"), acc(title + " accuracy", "Epoch", "Accuracy");
  loss.add("Train", log.column("train_" + loss_col));
  acc.add("Train", log.column("train_" + acc_col));
  loss.add(other, log.column(other == "Validation" ? "val_" + loss_col : "test_" + loss_col));
  acc.add(other, log.column(other == "Validation" ? "val_" + acc_col : "test_" + acc_col));
  utils::save_plots(path, {loss, acc}, 2, 600, 450);
}

/// The checkpoint's metadata, or an error naming what the file is not.
inline nlohmann::json read_meta(const fs::path& path, const std::string& kind) {
  EMBER_CHECK(fs::exists(path), "--resume: no checkpoint at '", path.string(), "'");
  auto meta = nlohmann::json::parse(io::read_checkpoint(path.string()).info.metadata, nullptr, false);
  EMBER_CHECK(meta.is_object() && meta.value("model", std::string()) == kind, "--resume: '", path.string(),
              "' was not written by review_sentiment ", kind == "bert-mlm" ? "pretrain" : "train --model bert");
  return meta;
}

/// Restores the options a run was started with (a resumed run continues the same schedule).
inline void restore_options(const nlohmann::json& m, TrainOptions& t) {
  t.batch_size = m.at("batch_size"), t.seed = m.at("seed"), t.lr = m.at("lr"), t.epochs = m.at("epochs");
  t.warmup = m.at("warmup"), t.max_length = m.at("max_length");
  t.layers = m.at("layers"), t.hidden = m.at("hidden"), t.heads = m.at("heads"), t.intermediate = m.at("intermediate");
  t.vocab = m.value("vocab", std::string()), t.pretrained = m.value("pretrained", std::string());
}

inline nlohmann::json options_json(const TrainOptions& t) {
  return {{"batch_size", t.batch_size}, {"seed", t.seed}, {"lr", t.lr}, {"epochs", t.epochs}, {"warmup", t.warmup},
          {"max_length", t.max_length}, {"layers", t.layers}, {"hidden", t.hidden}, {"heads", t.heads},
          {"intermediate", t.intermediate}, {"vocab", t.vocab}, {"pretrained", t.pretrained}};
}

// ---- pretrain ----------------------------------------------------------------------------------

/// Which training files pre-training reads: every --data folder, else every --dataset (default:
/// douban_reviews and chnsenticorp, those present), their train split only.
struct PretrainData {
  std::vector<std::string> data, datasets;
};

inline std::vector<fs::path> pretrain_files(const CommonOptions& common, const PretrainData& d) {
  std::vector<fs::path> files;
  auto train_of = [&](const std::string& dir_opt, const std::string& name) {
    CommonOptions o = common;
    o.data = dir_opt, o.dataset = name;
    return data_file(o, "train");
  };
  for (const auto& dir : d.data) files.push_back(train_of(dir, ""));
  if (!d.data.empty()) return files;
  if (!d.datasets.empty()) {
    for (const auto& name : d.datasets) files.push_back(train_of("", name));
    return files;
  }
  for (const char* name : {"douban_reviews", "chnsenticorp"}) {
    try {
      files.push_back(train_of("", name));
    } catch (const Error& e) {
      std::cerr << "pretrain: leaving out " << name << " (" << e.what() << ")\n";
    }
  }
  EMBER_CHECK(!files.empty(), "pretrain: found neither douban_reviews nor chnsenticorp; pass --data DIR (a folder with "
                              "train.jsonl) or --dataset NAME");
  return files;
}

/// Masked-LM loss (mean over predicted tokens) and masked-token accuracy of a set, masked by a
/// collator seeded the same way each time (the figure is comparable from epoch to epoch).
inline utils::EpochStats evaluate_mlm(models::BertForMaskedLM& mlm, const text::DataCollatorForLanguageModeling& proto,
                                      const Encoded& e, int64_t batch_size, int64_t pad_id, Device device) {
  if (e.ids.empty()) return {};
  mlm.eval();
  NoGradGuard no_grad;
  text::DataCollatorForLanguageModeling collate(proto);
  collate.set_state({proto.options().seed() + 1000003, 0});
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  for (const auto& rows : make_batches(e, batch_size, false, 0, 0)) {
    Batch b = make_batch(e, rows, pad_id, device);
    text::MlmBatch m = collate(b.input_ids, b.attention_mask);
    models::MaskedLMOutput o = mlm.masked_lm(m.input_ids, b.attention_mask, b.token_type_ids, m.labels);
    const int64_t n = o.targets.size(0);
    if (n == 0) continue;
    loss_sum += o.loss.item<double>() * static_cast<double>(n);
    correct += utils::count_correct(o.logits, o.targets);
    count += n;
  }
  mlm.train();
  if (count == 0) return {};
  return {loss_sum / static_cast<double>(count), static_cast<double>(correct) / static_cast<double>(count)};
}

inline int run_pretrain(CommonOptions& common, TrainOptions t, const PretrainData& pd) {
  const Device device = setup(common);
  const fs::path out = common.out;
  const fs::path last_path = out / "last.safetensors";
  fs::create_directories(out);
  nlohmann::json meta = nlohmann::json::object();
  if (t.resume) {
    meta = read_meta(common.checkpoint.empty() ? last_path : fs::path(common.checkpoint), "bert-mlm");
    restore_options(meta, t);
  }
  if (t.epochs == 0) t.epochs = kPretrainEpochs;
  if (t.lr == 0) t.lr = kPretrainLr;
  if (t.max_length == 0) t.max_length = kBertMaxLength;
  manual_seed(t.seed);

  // The tokenizer: on resume the copy saved beside the model, else --vocab (bert-base-chinese's).
  const fs::path vocab = t.resume ? out / "vocab.txt" : vocab_path(t.vocab);
  text::BertTokenizer tok = t.resume ? text::BertTokenizer::from_pretrained(out.string()) : tokenizer_from_vocab(vocab);
  if (!t.resume) t.vocab = vocab.string();

  // Texts: the training files only; a seeded 2% (at most 1,000) held out to measure the MLM.
  std::vector<std::string> texts;
  std::vector<std::string> sources;
  std::vector<fs::path> files;
  if (t.resume)
    for (const auto& f : meta.at("files")) files.push_back(f.get<std::string>());
  else
    files = pretrain_files(common, pd);
  for (const auto& f : files) {
    Corpus c = read_corpus(f, common.prep.skip_bad_lines);
    std::cerr << "pretrain: " << c.texts.size() << " texts from " << f.string() << "\n";
    for (auto& s : c.texts) texts.push_back(std::move(s));
    sources.push_back(f.string());
  }
  EMBER_CHECK(!texts.empty(), "pretrain: the training files hold no texts");
  auto [train_rows, val_rows] = split_rows(texts.size(), 0.02, 1000, t.seed);
  const auto t0 = std::chrono::steady_clock::now();
  Encoded train = encode_texts(tok, texts, {}, train_rows, t.max_length);
  Encoded val = encode_texts(tok, texts, {}, val_rows, t.max_length);
  texts.clear();
  std::cerr << "pretrain: tokenized " << train.ids.size() << " training and " << val.ids.size() << " held-out texts ("
            << train.tokens << " tokens) in " << fixed(seconds_since(t0), 1) << " s\n";
  notice_truncation(train, t.max_length, "pretrain");

  models::BertConfig cfg = small_config(t, tok);
  check_compatible(tok, cfg, t.max_length, "the small BERT");
  auto mlm = std::make_shared<models::BertForMaskedLM>(cfg);
  mlm->to(device);
  optim::AdamW opt(optim::weight_decay_groups(*mlm, optim::AdamWOptions(t.lr).weight_decay(kWeightDecay)),
                   optim::AdamWOptions(t.lr));
  const int64_t per_epoch = num_batches(train, t.batch_size), total = t.epochs * per_epoch;
  if (t.warmup < 0) t.warmup = static_cast<int64_t>(kWarmupFraction * static_cast<double>(total));
  optim::LinearWarmupDecayLR sched(opt, t.warmup, total);
  text::DataCollatorForLanguageModeling collate(tok, text::MlmCollatorOptions().seed(t.seed));

  utils::TrainPosition pos;
  io::remove_stale_temporaries(last_path.string());
  utils::MetricsLog log(out / "metrics");
  if (t.resume) {
    const fs::path from = common.checkpoint.empty() ? last_path : fs::path(common.checkpoint);
    io::CheckpointInfo info = io::load_checkpoint(from.string(), *mlm, opt, sched);
    pos.epoch = info.epoch, pos.step = info.step;
    utils::read_position(meta, pos);
    collate.set_state({meta.at("collator_seed").get<uint64_t>(), meta.at("collator_offset").get<uint64_t>()});
    log = utils::MetricsLog::resume(out / "metrics", pos.epoch);
    std::cerr << "Resuming " << from.string() << " at epoch " << pos.epoch + 1 << ", batch " << pos.batch << "\n";
  }
  utils::StepLog step_log(out / "steps.csv", t.resume ? pos.step : 0);
  std::cerr << "BertForMaskedLM: " << cfg.num_hidden_layers << " layers, hidden " << cfg.hidden_size << ", "
            << cfg.num_attention_heads << " heads, intermediate " << cfg.intermediate_size << ", vocabulary "
            << cfg.vocab_size << "; " << mlm->num_parameters() << " parameters\n"
            << "AdamW lr " << t.lr << " (weight decay " << kWeightDecay << ", none on biases and LayerNorm), warm-up "
            << t.warmup << " then linear decay over " << total << " steps, clip " << kClipNorm << "; max length "
            << t.max_length << "; " << t.epochs << " epochs of " << per_epoch << " batches of " << t.batch_size << "\n";

  auto save = [&] {
    if (!utils::all_finite(*mlm)) throw utils::Diverged{"the weights hold NaN or Inf after step " + std::to_string(pos.step)};
    const Generator::State cs = collate.get_state();
    nlohmann::json m = options_json(t);
    m.update({{"model", "bert-mlm"}, {"files", sources}, {"collator_seed", cs.seed}, {"collator_offset", cs.offset},
              {"position", utils::position_json(pos)}});
    utils::save_or_fail(last_path, [&] {
      mlm->save_pretrained(out.string());
      save_tokenizer(out, tok);
      io::save_checkpoint(last_path.string(), *mlm, opt, sched, {pos.epoch, pos.step, m.dump()});
    });
  };

  utils::InterruptHandler interrupts;
  int64_t steps_this_run = 0, tokens_this_run = 0;
  const auto run_start = std::chrono::steady_clock::now();
  auto finish = [&](const std::string& why, int code) {
    const double s = seconds_since(run_start);
    std::cerr << why << " after step " << pos.step << "; saved " << out.string() << " (Hugging Face folder) and "
              << last_path.string() << ". " << steps_this_run << " steps in " << fixed(s, 1) << " s: "
              << fixed(steps_this_run / std::max(s, 1e-9), 3) << " steps/s, " << fixed(tokens_this_run / std::max(s, 1e-9), 0)
              << " tokens/s.";
    if (code != 0 || why.find("--max-steps") != std::string::npos)
      std::cerr << " Resume with:\n  " << utils::resume_command(t.command);
    std::cerr << "\n";
    return code;
  };
  try {
    mlm->train();
    while (pos.epoch < t.epochs) {
      const auto batches = make_batches(train, t.batch_size, true, t.seed, pos.epoch);
      utils::ProgressOptions po;
      po.unit = "batch";
      utils::ProgressBar bar(static_cast<int64_t>(batches.size()), "Epoch " + std::to_string(pos.epoch + 1) + "/" +
                                                                       std::to_string(t.epochs), po);
      if (pos.batch > 0) bar.update(pos.batch);
      const auto e0 = std::chrono::steady_clock::now();
      int64_t epoch_tokens = 0, epoch_steps = 0;
      while (pos.batch < static_cast<int64_t>(batches.size())) {
        Batch b = make_batch(train, batches[static_cast<size_t>(pos.batch)], tok.pad_token_id(), device);
        text::MlmBatch m = collate(b.input_ids, b.attention_mask);
        opt.zero_grad();
        models::MaskedLMOutput o = mlm->masked_lm(m.input_ids, b.attention_mask, b.token_type_ids, m.labels);
        const float loss = o.loss.item<float>();
        if (!std::isfinite(loss))
          throw utils::Diverged{"the loss is " + std::to_string(loss) + " at step " + std::to_string(pos.step + 1)};
        o.loss.backward();
        nn::utils::clip_grad_norm_(mlm->parameters(), kClipNorm);
        opt.step();
        sched.step();
        const int64_t n = o.targets.size(0);
        if (n > 0) pos.running.update(loss, static_cast<double>(utils::count_correct(o.logits, o.targets)) / n, n);
        ++pos.batch, ++pos.step, ++steps_this_run, ++epoch_steps;
        tokens_this_run += b.tokens, epoch_tokens += b.tokens;
        step_log.append(pos, loss, opt.param_groups()[0].options().get_lr());
        const utils::EpochStats so_far = pos.running.stats();
        const double s = seconds_since(e0);
        bar.update(1, {{"mlm_loss", so_far.loss}, {"mlm_acc", so_far.acc}, {"tok/s", s > 0 ? epoch_tokens / s : 0.0}});
        const bool max_steps = t.max_steps > 0 && pos.step >= t.max_steps;
        if (utils::interrupt_requested() || max_steps || (t.save_every > 0 && pos.step % t.save_every == 0)) save();
        if (utils::interrupt_requested()) {
          bar.close();
          return finish("Interrupted", utils::interrupt_exit_code());
        }
        if (max_steps) {
          bar.close();
          return finish("Stopped (--max-steps)", 0);
        }
      }
      bar.close();
      const double train_seconds = seconds_since(e0);
      const utils::EpochStats tr = pos.running.stats();
      const utils::EpochStats va = evaluate_mlm(*mlm, collate, val, std::max<int64_t>(t.batch_size, kEvalBatch),
                                                tok.pad_token_id(), device);
      std::cout << "Epoch: " << pos.epoch + 1 << ", MLM_loss:" << fixed(tr.loss) << ", MLM_acc:" << fixed(tr.acc)
                << ", Val_MLM_loss:" << fixed(va.loss) << ", Val_MLM_acc:" << fixed(va.acc) << std::endl;
      std::cerr << "  time: " << fixed(train_seconds, 1) << " s training, " << fixed(epoch_steps / std::max(train_seconds, 1e-9), 3)
                << " steps/s, " << fixed(epoch_tokens / std::max(train_seconds, 1e-9), 0) << " tokens/s\n";
      log.append({{"epoch", static_cast<double>(pos.epoch + 1)}, {"train_mlm_loss", tr.loss}, {"train_mlm_acc", tr.acc},
                  {"val_mlm_loss", va.loss}, {"val_mlm_acc", va.acc}, {"lr", opt.param_groups()[0].options().get_lr()},
                  {"epoch_seconds", train_seconds}});
      plot_curves(out / "curves.png", log, "Validation", "mlm_loss", "mlm_acc", "Masked LM");
      pos = {pos.epoch + 1, 0, pos.step, {}};
      save();
      if (utils::interrupt_requested() && pos.epoch < t.epochs) return finish("Interrupted", utils::interrupt_exit_code());
    }
  } catch (const utils::Diverged& d) {
    std::cerr << "error: pre-training diverged: " << d.what << "; stopped without saving. Try a lower --lr (this run: "
              << t.lr << ").\n";
    return kExitDiverged;
  }
  return finish("Done", 0);
}

// ---- train --model bert ------------------------------------------------------------------------

/// Loss and accuracy of the classifier on a set; P(positive) per row (in the set's order) when asked.
inline utils::EpochStats evaluate(models::BertForSequenceClassification& model, const Encoded& e, int64_t pad_id,
                                  Device device, utils::ConfusionMatrix* cm = nullptr, std::vector<float>* probs = nullptr) {
  model.eval();
  NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  if (probs) probs->assign(e.ids.size(), 0.f);
  for (const auto& rows : make_batches(e, kEvalBatch, false, 0, 0)) {
    Batch b = make_batch(e, rows, pad_id, device);
    Tensor logits = model.forward(b.input_ids, b.attention_mask, b.token_type_ids).logits;
    loss_sum += F::cross_entropy(logits, b.labels, nn::CrossEntropyLossOptions().reduction(nn::kSum)).item<double>();
    correct += utils::count_correct(logits, b.labels);
    if (cm) cm->update(logits, b.labels);
    if (probs) {
      auto p = softmax(logits, 1).select(1, 1).to(kCPU).contiguous().to_vector<float>();
      for (size_t i = 0; i < rows.size(); ++i) (*probs)[static_cast<size_t>(rows[i])] = p[i];
    }
    count += static_cast<int64_t>(rows.size());
  }
  model.train();
  if (count == 0) return {};
  return {loss_sum / static_cast<double>(count), static_cast<double>(correct) / static_cast<double>(count)};
}

/// The classifier and its tokenizer: --pretrained DIR (any Hugging Face BERT folder), else the
/// small BERT randomly initialised with --vocab's tokenizer.
struct Classifier {
  std::shared_ptr<models::BertForSequenceClassification> model;
  std::optional<text::BertTokenizer> tok;
};

inline text::BertTokenizer folder_tokenizer(const fs::path& dir, const std::string& vocab, const std::string& what) {
  if (fs::exists(dir / "vocab.txt")) return text::BertTokenizer::from_pretrained(dir.string());
  EMBER_CHECK(!vocab.empty(), what, " '", dir.string(), "' has no vocab.txt: pass --vocab FILE (the vocabulary it was trained with)");
  return tokenizer_from_vocab(vocab);
}

inline Classifier make_classifier(const TrainOptions& t) {
  Classifier c;
  if (!t.pretrained.empty()) {
    const fs::path dir = t.pretrained;
    EMBER_CHECK(fs::is_directory(dir), "--pretrained: '", dir.string(), "' is not a folder (expected a Hugging Face BERT "
                                       "folder with config.json and model.safetensors, e.g. the --out of pretrain)");
    EMBER_CHECK(fs::exists(dir / "config.json"), "--pretrained: '", dir.string(), "' has no config.json");
    c.tok = folder_tokenizer(dir, t.vocab, "--pretrained");
    models::LoadReport rep;
    try {
      c.model = models::BertForSequenceClassification::from_pretrained(dir.string(),
                                                                       models::PretrainedOptions().num_labels(2).report(&rep));
    } catch (const Error& e) {
      EMBER_FAIL("--pretrained '", dir.string(), "': ", e.what());
    }
    std::cerr << "Loaded " << rep.loaded << " tensors from " << dir.string() << "\n";
  } else {
    c.tok = tokenizer_from_vocab(vocab_path(t.vocab));
    models::BertConfig cfg = small_config(t, *c.tok);
    cfg.set_num_labels(2);
    c.model = std::make_shared<models::BertForSequenceClassification>(cfg);
    std::cerr << "No --pretrained: a randomly initialised small BERT\n";
  }
  c.model->config.id2label = kClasses;
  check_compatible(*c.tok, c.model->config, t.max_length, "the model");
  return c;
}

inline int run_train_bert(CommonOptions& common, TrainOptions t) {
  const Device device = setup(common);
  const fs::path out = common.out;
  const fs::path last_path = out / "last.safetensors", best_dir = out / "best";
  const fs::path resume_path = common.checkpoint.empty() ? last_path : fs::path(common.checkpoint);
  fs::create_directories(out);
  nlohmann::json meta = nlohmann::json::object();
  if (t.resume) {
    meta = read_meta(resume_path, "bert");
    restore_options(meta, t);
    if (common.dataset.empty()) common.dataset = meta.at("dataset");
  }
  if (t.epochs == 0) t.epochs = kFineTuneEpochs;
  if (t.lr == 0) t.lr = kFineTuneLr;
  if (t.max_length == 0) t.max_length = kBertMaxLength;
  if (common.dataset.empty()) common.dataset = kDefaultDataset;
  if (!t.vocab.empty()) t.vocab = fs::absolute(t.vocab).string();
  manual_seed(t.seed);
  Classifier c = make_classifier(t);
  auto& model = *c.model;
  const text::BertTokenizer& tok = *c.tok;
  model.to(device);

  const fs::path train_file = data_file(common, "train"), test_file = data_file(common, "test");
  Corpus train_corpus = read_corpus(train_file, common.prep.skip_bad_lines);
  Corpus test_corpus = read_corpus(test_file, common.prep.skip_bad_lines);
  EMBER_CHECK(!train_corpus.texts.empty(), train_file.string(), ": no texts to train on");
  EMBER_CHECK(!test_corpus.texts.empty(), test_file.string(), ": no texts to test on");
  // A seeded 5% of train for validation (the best epoch is chosen on it; test is only reported).
  auto [train_rows, val_rows] = split_rows(train_corpus.texts.size(), kValFraction, SIZE_MAX, t.seed);
  Encoded train = encode_texts(tok, train_corpus.texts, train_corpus.labels, train_rows, t.max_length);
  Encoded val = encode_texts(tok, train_corpus.texts, train_corpus.labels, val_rows, t.max_length);
  Encoded test = encode_texts(tok, test_corpus.texts, test_corpus.labels, {}, t.max_length);
  notice_truncation(train, t.max_length, train_file.string() + " (training part)");
  notice_truncation(test, t.max_length, test_file.string());

  optim::AdamW opt(optim::weight_decay_groups(model, optim::AdamWOptions(t.lr).weight_decay(kWeightDecay)),
                   optim::AdamWOptions(t.lr));
  const int64_t per_epoch = num_batches(train, t.batch_size), total = t.epochs * per_epoch;
  if (t.warmup < 0) t.warmup = static_cast<int64_t>(kWarmupFraction * static_cast<double>(total));
  optim::LinearWarmupDecayLR sched(opt, t.warmup, total);

  utils::TrainPosition pos;
  double best_val = meta.value("best_val_acc", -1.0), best_test = meta.value("best_test_acc", 0.0);
  int64_t best_epoch = meta.value("best_epoch", 0);
  io::remove_stale_temporaries(last_path.string());
  utils::MetricsLog log(out / "metrics");
  if (t.resume) {
    io::CheckpointInfo info = io::load_checkpoint(resume_path.string(), model, opt, sched);
    pos.epoch = info.epoch, pos.step = info.step;
    utils::read_position(meta, pos);
    log = utils::MetricsLog::resume(out / "metrics", pos.epoch);
    std::cerr << "Resuming " << resume_path.string() << " at epoch " << pos.epoch + 1 << ", batch " << pos.batch << "\n";
  }
  utils::StepLog step_log(out / "steps.csv", t.resume ? pos.step : 0);
  const auto& cfg = model.config;
  std::cerr << "BertForSequenceClassification: " << cfg.num_hidden_layers << " layers, hidden " << cfg.hidden_size << ", "
            << cfg.num_attention_heads << " heads, vocabulary " << cfg.vocab_size << "; " << model.num_parameters()
            << " parameters\nAdamW lr " << t.lr << " (weight decay " << kWeightDecay << "), warm-up " << t.warmup
            << " then linear decay over " << total << " steps, clip " << kClipNorm << "; max length " << t.max_length
            << "; " << train.ids.size() << " training, " << val.ids.size() << " validation and " << test.ids.size()
            << " test texts; " << t.epochs << " epochs of " << per_epoch << " batches of " << t.batch_size << "\n";

  auto save_state = [&](double test_acc) {
    if (!utils::all_finite(model)) throw utils::Diverged{"the weights hold NaN or Inf after step " + std::to_string(pos.step)};
    nlohmann::json m = options_json(t);
    m.update({{"model", "bert"}, {"dataset", common.dataset}, {"best_val_acc", best_val}, {"best_test_acc", best_test},
              {"best_epoch", best_epoch}, {"test_acc", test_acc}, {"position", utils::position_json(pos)}});
    utils::save_or_fail(last_path, [&] { io::save_checkpoint(last_path.string(), model, opt, sched, {pos.epoch, pos.step, m.dump()}); });
  };
  auto save_best = [&](double test_acc) {
    model.save_pretrained(best_dir.string());
    save_tokenizer(best_dir, tok);
    const std::string info = nlohmann::json{{"model", "bert"}, {"dataset", common.dataset}, {"max_length", t.max_length},
                                            {"epoch", best_epoch}, {"val_acc", best_val}, {"test_acc", test_acc},
                                            {"pretrained", t.pretrained}, {"seed", t.seed}}.dump(1);
    io::write_file_atomic((best_dir / kInfoFile).string(), kInfoFile, [&](io::FileWriter& w) { w.write(info); });
    const std::string best = nlohmann::json{{"model", "bert"}, {"dataset", common.dataset}, {"best_epoch", best_epoch},
                                            {"best_test_acc", best_test}, {"best_val_acc", best_val},
                                            {"max_length", t.max_length}, {"seed", t.seed}, {"checkpoint", "best"}}.dump(1);
    io::write_file_atomic((out / "best.json").string(), "best.json", [&](io::FileWriter& w) { w.write(best); });
  };
  auto stopped = [&](Stop why) {
    std::cerr << (why == Stop::kMaxSteps ? "Stopped after step " + std::to_string(pos.step) + " (--max-steps)"
                                         : "Interrupted after step " + std::to_string(pos.step))
              << "; saved " << last_path.string() << ". Resume with:\n  " << utils::resume_command(t.command) << "\n";
    return why == Stop::kMaxSteps ? 0 : utils::interrupt_exit_code();
  };

  utils::InterruptHandler interrupts;
  double last_test_acc = meta.value("test_acc", 0.0);
  try {
    model.train();
    while (pos.epoch < t.epochs) {
      const auto batches = make_batches(train, t.batch_size, true, t.seed, pos.epoch);
      utils::ProgressOptions po;
      po.unit = "batch";
      utils::ProgressBar bar(static_cast<int64_t>(batches.size()),
                             "Epoch " + std::to_string(pos.epoch + 1) + "/" + std::to_string(t.epochs), po);
      if (pos.batch > 0) bar.update(pos.batch);
      const auto e0 = std::chrono::steady_clock::now();
      int64_t texts = 0;
      while (pos.batch < static_cast<int64_t>(batches.size())) {
        Batch b = make_batch(train, batches[static_cast<size_t>(pos.batch)], tok.pad_token_id(), device);
        opt.zero_grad();
        models::SequenceClassifierOutput o = model.forward(b.input_ids, b.attention_mask, b.token_type_ids, b.labels);
        const float loss = o.loss.item<float>();
        if (!std::isfinite(loss))
          throw utils::Diverged{"the loss is " + std::to_string(loss) + " at step " + std::to_string(pos.step + 1)};
        o.loss.backward();
        nn::utils::clip_grad_norm_(model.parameters(), kClipNorm);
        opt.step();
        sched.step();
        const int64_t n = b.labels.size(0);
        texts += n;
        pos.running.update(loss, static_cast<double>(utils::count_correct(o.logits, b.labels)) / n, n);
        ++pos.batch, ++pos.step;
        step_log.append(pos, loss, opt.param_groups()[0].options().get_lr());
        const utils::EpochStats so_far = pos.running.stats();
        const double s = seconds_since(e0);
        bar.update(1, {{"loss", so_far.loss}, {"acc", so_far.acc}, {"text/s", s > 0 ? texts / s : 0.0}});
        const bool max_steps = t.max_steps > 0 && pos.step >= t.max_steps;
        if (utils::interrupt_requested() || max_steps || (t.save_every > 0 && pos.step % t.save_every == 0))
          save_state(last_test_acc);
        if (utils::interrupt_requested() || max_steps) {
          bar.close();
          return stopped(max_steps ? Stop::kMaxSteps : Stop::kInterrupted);
        }
      }
      bar.close();
      const double train_seconds = seconds_since(e0);
      const utils::EpochStats tr = pos.running.stats();
      const utils::EpochStats te = evaluate(model, test, tok.pad_token_id(), device);
      const bool has_val = !val.ids.empty();
      const utils::EpochStats va = has_val ? evaluate(model, val, tok.pad_token_id(), device) : utils::EpochStats{};
      std::cout << "Epoch: " << pos.epoch + 1 << ", Train_acc:" << fixed(tr.acc) << ", Train_loss:" << fixed(tr.loss)
                << ", Test_acc:" << fixed(te.acc) << ", Test_loss:" << fixed(te.loss)
                << (has_val ? ", Val_acc:" + fixed(va.acc) + ", Val_loss:" + fixed(va.loss) : std::string()) << std::endl;
      std::cerr << "  time: " << fixed(train_seconds, 1) << " s training (" << fixed(texts / std::max(train_seconds, 1e-9), 1)
                << " texts/s)\n";
      utils::MetricsLog::Row row{{"epoch", static_cast<double>(pos.epoch + 1)}, {"train_acc", tr.acc}, {"train_loss", tr.loss},
                                 {"test_acc", te.acc}, {"test_loss", te.loss}};
      if (has_val) row.insert(row.end(), {{"val_acc", va.acc}, {"val_loss", va.loss}});
      row.insert(row.end(), {{"lr", opt.param_groups()[0].options().get_lr()}, {"epoch_seconds", train_seconds}});
      log.append(row);
      utils::plot_training_curves(out / "curves.png", log.column("train_loss"), log.column("test_loss"),
                                  log.column("train_acc"), log.column("test_acc"));
      const bool is_best = (has_val ? va.acc : te.acc) > best_val;
      pos = {pos.epoch + 1, 0, pos.step, {}};
      last_test_acc = te.acc;
      if (is_best) {
        best_val = has_val ? va.acc : te.acc, best_test = te.acc, best_epoch = pos.epoch;
        save_best(te.acc);
      }
      save_state(te.acc);
      if (utils::interrupt_requested() && pos.epoch < t.epochs) return stopped(Stop::kInterrupted);
    }
  } catch (const utils::Diverged& d) {
    std::cerr << "error: training diverged: " << d.what << "; stopped without saving. Try a lower --lr (this run: " << t.lr
              << ").\n";
    return kExitDiverged;
  }
  std::cerr << "Best validation accuracy " << fixed(best_val) << " at epoch " << best_epoch << ", its test accuracy "
            << fixed(best_test) << "; wrote " << best_dir.string() << "/ (Hugging Face folder), " << last_path.string()
            << ", best.json, metrics.csv, steps.csv, curves.png\n";
  return 0;
}

// ---- eval and predict --------------------------------------------------------------------------

/// The BERT folder eval/predict should use, or nothing for a BiLSTM checkpoint: --checkpoint DIR;
/// else <out>/best.json naming a BERT folder; else <out>/best/ when there is no best.safetensors.
inline std::optional<fs::path> bert_checkpoint(const CommonOptions& o) {
  if (!o.checkpoint.empty()) {
    const fs::path p = o.checkpoint;
    if (fs::is_directory(p)) return p;
    if (fs::is_regular_file(p) && p.extension() == ".safetensors") {
      auto meta = nlohmann::json::parse(io::read_checkpoint(p.string()).info.metadata, nullptr, false);
      const std::string kind = meta.is_object() ? meta.value("model", std::string()) : std::string();
      EMBER_CHECK(kind != "bert" && kind != "bert-mlm", "--checkpoint '", p.string(),
                  "' is a BERT training state; pass the model's folder instead (",
                  kind == "bert" ? "<out>/best" : "fine-tune it first: train --model bert --pretrained DIR", ")");
    }
    return std::nullopt;
  }
  const fs::path out = o.out;
  if (fs::exists(out / "best.json")) {
    auto j = nlohmann::json::parse(read_file(out / "best.json"), nullptr, false);
    if (j.is_object() && j.value("model", std::string()) == "bert") return out / j.value("checkpoint", std::string("best"));
  }
  if (!fs::exists(out / "best.safetensors") && fs::exists(out / "best" / "config.json")) return out / "best";
  return std::nullopt;
}

/// A fine-tuned classifier folder with its tokenizer and settings.
struct LoadedBert {
  std::shared_ptr<models::BertForSequenceClassification> model;
  std::optional<text::BertTokenizer> tok;
  nlohmann::json info = nlohmann::json::object();
  int64_t max_length = kBertMaxLength;
};

inline LoadedBert load_bert(const fs::path& dir, const std::string& vocab, Device device) {
  EMBER_CHECK(fs::exists(dir / "config.json"), "no BERT model at '", dir.string(), "' (no config.json): train first "
                                               "(review_sentiment train --model bert) or pass --checkpoint DIR");
  LoadedBert m;
  m.tok = folder_tokenizer(dir, vocab, "the checkpoint");
  models::LoadReport rep;
  try {
    m.model = models::BertForSequenceClassification::from_pretrained(dir.string(),
                                                                     models::PretrainedOptions().verbose(false).report(&rep));
  } catch (const Error& e) {
    EMBER_FAIL("checkpoint '", dir.string(), "': ", e.what());
  }
  EMBER_CHECK(rep.missing_keys.empty(), "checkpoint '", dir.string(), "' is not a fine-tuned classifier (it lacks ",
              rep.missing_keys.front(), (rep.missing_keys.size() > 1 ? " and more" : ""),
              "); fine-tune it first: review_sentiment train --model bert --pretrained ", dir.string());
  EMBER_CHECK(m.model->num_labels() == 2, "checkpoint '", dir.string(), "' has ", m.model->num_labels(),
              " labels, expected 2 (negative, positive)");
  if (fs::exists(dir / kInfoFile)) {
    auto j = nlohmann::json::parse(read_file(dir / kInfoFile), nullptr, false);
    if (j.is_object()) m.info = j;
  }
  m.max_length = std::min<int64_t>(m.info.value("max_length", kBertMaxLength), m.model->config.max_position_embeddings);
  m.model->to(device);
  m.model->eval();
  return m;
}

inline int run_eval_bert(CommonOptions& common, const fs::path& dir, const std::string& vocab) {
  const Device device = setup(common);
  LoadedBert m = load_bert(dir, vocab, device);
  if (common.dataset.empty()) common.dataset = m.info.value("dataset", std::string(kDefaultDataset));
  const fs::path test_file = data_file(common, "test");
  Corpus corpus = read_corpus(test_file, common.prep.skip_bad_lines);
  EMBER_CHECK(!corpus.texts.empty(), test_file.string(), ": no texts to test on");
  const auto t0 = std::chrono::steady_clock::now();
  Encoded test = encode_texts(*m.tok, corpus.texts, corpus.labels, {}, m.max_length);
  notice_truncation(test, m.max_length, test_file.string());
  utils::ConfusionMatrix cm(2);
  std::vector<float> probs;
  const utils::EpochStats te = evaluate(*m.model, test, m.tok->pad_token_id(), device, &cm, &probs);
  const double secs = seconds_since(t0);
  std::cerr << "inference: " << fixed(static_cast<double>(test.ids.size()) / std::max(secs, 1e-9), 1)
            << " reviews/s (tokenizing included)\n";
  report_eval(common, dir, "bert", corpus, test_file, te, cm, probs, secs);
  return 0;
}

inline int run_predict_bert(CommonOptions& common, const fs::path& dir, const std::string& vocab,
                            std::vector<std::string> texts, bool explain) {
  const Device device = setup(common);
  LoadedBert m = load_bert(dir, vocab, device);
  if (texts.empty())
    for (std::string l; std::getline(std::cin, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      texts.push_back(l);
    }
  for (auto& s : texts) s = text::utf8::sanitize(s);
  if (texts.empty()) return 0;
  Encoded e = encode_texts(*m.tok, texts, {}, {}, m.max_length);
  notice_truncation(e, m.max_length, "predict");
  std::vector<float> probs;
  evaluate(*m.model, e, m.tok->pad_token_id(), device, nullptr, &probs);
  for (size_t i = 0; i < texts.size(); ++i) {
    const float p = probs[i];
    const int64_t k = p >= 0.5f ? 1 : 0;
    std::cout << kClasses[static_cast<size_t>(k)] << " " << fixed(k ? p : 1 - p, 2) << "\n";
    if (explain) {
      std::cout << "  tokens:";
      for (const auto& w : m.tok->convert_ids_to_tokens(e.ids[i])) std::cout << " " << w;
      std::cout << "\n  (BERT classifies from the [CLS] token; it has no per-word attention pooling to show)\n";
    }
  }
  return 0;
}

}  // namespace bert_tasks
