#pragma once
/// Umbrella header for Ember's BERT family (Hugging Face layout): BertConfig, BertModel,
/// BertForSequenceClassification, BertForMaskedLM, from_pretrained / save_pretrained.
/// Needs nlohmann-json (config.json, safetensors headers), like ember/io/io.hpp.
#include "ember/models/bert_config.hpp"
#include "ember/models/bert_for_masked_lm.hpp"
#include "ember/models/bert_for_sequence_classification.hpp"
#include "ember/models/bert_model.hpp"
#include "ember/models/pretrained.hpp"
