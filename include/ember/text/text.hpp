#pragma once
/// Umbrella for ember::text, the text pipeline of the Chinese review tutorial: UTF-8, OpenCC
/// (only with EMBER_HAVE_OPENCC), stopwords, vocabulary and padded index tensors, jieba-compatible
/// segmentation, the per-review preprocessing, and Word2Vec with its gensim-compatible vector files.
/// One header per concept; add new ones below.
#include "ember/text/utf8.hpp"
#include "ember/text/opencc.hpp"
#include "ember/text/stopwords.hpp"
#include "ember/text/vocab.hpp"
#include "ember/text/segmenter.hpp"
#include "ember/text/preprocess.hpp"
#include "ember/text/keyed_vectors.hpp"
#include "ember/text/word2vec.hpp"
#include "ember/text/bert_tokenizer.hpp"
#include "ember/text/mlm_collator.hpp"
