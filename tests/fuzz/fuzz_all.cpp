// Every fuzz target in one binary, for the short runs of CI (scripts/fuzz.sh --ci): the targets
// instantiate the same library templates, so at -O0 one translation unit compiles in ~90 CPU-s,
// where one target alone takes ~28 (fuzz_safetensors). EMBER_FUZZ_TARGET=<name> picks the target; everything else (flags,
// corpus, artifacts) is plain libFuzzer. The per-target binaries stay what to run for hours.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define EMBER_FUZZ_ALL  // fuzz_common.hpp: LLVMFuzzerInitialize is defined below
// Each target's entry point gets its own name here; its file is compiled unchanged.
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz_idx.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_gz_one
#include "fuzz_idx_gz.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz_safetensors.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_one
#include "fuzz_image.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_transforms_one
#include "fuzz_image_transforms.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_checkpoint_one
#include "fuzz_checkpoint.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_segment_one
#include "fuzz_segment.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_bert_config_one
#include "fuzz_bert_config.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_bert_tokenizer_one
#include "fuzz_bert_tokenizer.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_word2vec_one
#include "fuzz_word2vec.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_files_one
#include "fuzz_text_files.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_folder_one
#include "fuzz_image_folder.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_review_corpus_one
#include "fuzz_review_corpus.cpp"
#undef LLVMFuzzerTestOneInput

namespace {

struct Target {
  const char* name;
  int (*one)(const uint8_t*, size_t);
};
constexpr Target kTargets[] = {
    {"fuzz_idx", fuzz_idx_one},
    {"fuzz_idx_gz", fuzz_idx_gz_one},
    {"fuzz_safetensors", fuzz_safetensors_one},
    {"fuzz_image", fuzz_image_one},
    {"fuzz_image_transforms", fuzz_image_transforms_one},
    {"fuzz_checkpoint", fuzz_checkpoint_one},
    {"fuzz_segment", fuzz_segment_one},
    {"fuzz_bert_config", fuzz_bert_config_one},
    {"fuzz_bert_tokenizer", fuzz_bert_tokenizer_one},
    {"fuzz_word2vec", fuzz_word2vec_one},
    {"fuzz_text_files", fuzz_text_files_one},
    {"fuzz_image_folder", fuzz_image_folder_one},
    {"fuzz_review_corpus", fuzz_review_corpus_one},
};
// Chosen once, before the first input.
int (*g_target)(const uint8_t*, size_t) = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::initialize();
  const char* want = std::getenv("EMBER_FUZZ_TARGET");
  for (const Target& t : kTargets)
    if (want != nullptr && std::strcmp(want, t.name) == 0) g_target = t.one;
  if (g_target == nullptr) {
    std::fprintf(stderr, "fuzz_all: EMBER_FUZZ_TARGET is %s%s%s; set it to one of:", want ? "'" : "",
                 want ? want : "not set", want ? "', which is not a target" : "");
    for (const Target& t : kTargets) std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return g_target(data, size); }
