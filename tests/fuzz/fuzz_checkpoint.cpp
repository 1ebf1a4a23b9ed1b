// libFuzzer target: io::read_checkpoint and restore_checkpoint into a small model + optimizer
// (state-dict keys, shapes and dtypes from the file, optimizer state, RNG state, metadata).
#include "ember/nn/linear.hpp"
#include "ember/optim/adam.hpp"
#include "ember/io/checkpoint.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ember::fuzz::write_scratch("ckpt", data, size);
  try {
    ember::io::Checkpoint c = ember::io::read_checkpoint(path);
    (void)c;
  } catch (const ember::Error&) {
  }
  try {
    static auto model = std::make_shared<ember::nn::Linear>(3, 2);
    ember::optim::Adam opt(model->parameters(), ember::optim::AdamOptions(1e-3));
    ember::io::load_checkpoint(path, *model, opt);
  } catch (const ember::Error&) {
  }
  return 0;
}
