// The MNIST CNN of tutorial 1 trained on the GPU: one epoch at batch 32 and 128 and the 10k-image
// evaluation, with the whole data set resident on the device (as bench/peers/torch_mnist.py does),
// so the figure measures the framework, not the loader. Usage: ember_bench_cuda_mnist MNIST_DIR
#include <chrono>
#include <cstdio>

#include "ember/data/data.hpp"
#include "ember/ember.hpp"
#include "compile_only.hpp"

#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

using namespace ember;

namespace {

/// The original tutorial's network (see examples/mnist_cnn/main.cpp).
std::shared_ptr<nn::Sequential> make_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back("conv1", std::make_shared<nn::Conv2d>(1, 32, 3));
  net->push_back("relu1", std::make_shared<nn::ReLU>());
  net->push_back("pool1", std::make_shared<nn::MaxPool2d>(2));
  net->push_back("conv2", std::make_shared<nn::Conv2d>(32, 64, 3));
  net->push_back("relu2", std::make_shared<nn::ReLU>());
  net->push_back("pool2", std::make_shared<nn::MaxPool2d>(2));
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  net->push_back("fc1", std::make_shared<nn::Linear>(1600, 50));
  net->push_back("fc2", std::make_shared<nn::Linear>(50, 10));
  return net;
}

/// The whole split as one normalised [N, 1, 28, 28] tensor and its labels.
std::pair<Tensor, Tensor> load_all(const std::string& dir, bool train) {
  auto ds = std::make_shared<data::MNIST>(dir, train);
  data::DataLoader loader(ds, data::DataLoaderOptions(static_cast<int64_t>(ds->size())));
  for (auto& b : loader) return {(b.data - 0.1307) / 0.3081, b.target};
  EMBER_FAIL("bench_cuda_mnist: empty data set in ", dir);
}

void device_sync() {
#ifdef EMBER_WITH_CUDA
  cuda::synchronize();
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::compile_only_build("bench_cuda_mnist")) return 2;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MNIST_DIR [cpu|cuda]\n", argv[0]);
    return 2;
  }
  Device dev = argc > 2 ? Device::parse(argv[2]) : kCUDA;
  try {
    auto [xtr, ytr] = load_all(argv[1], true);
    auto [xte, yte] = load_all(argv[1], false);
    xtr = xtr.to(dev), ytr = ytr.to(dev), xte = xte.to(dev), yte = yte.to(dev);
    for (int64_t bs : {32, 128}) {
      manual_seed(0);
      auto net = make_net();
      net->to(dev);
      optim::SGD opt(net->parameters(), optim::SGDOptions(0.01).momentum(0.9));
      Tensor perm = randperm(xtr.size(0)).to(dev);
      device_sync();
      auto t0 = std::chrono::steady_clock::now();
      net->train();
      for (int64_t i = 0; i < xtr.size(0); i += bs) {
        Tensor idx = perm.slice(0, i, std::min(i + bs, xtr.size(0)));
        Tensor loss = nn::functional::cross_entropy(net->forward(xtr.index_select(0, idx)), ytr.index_select(0, idx));
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
      device_sync();
      double t_train = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      t0 = std::chrono::steady_clock::now();
      net->eval();
      int64_t correct = 0;
      {
        NoGradGuard ng;
        for (int64_t i = 0; i < xte.size(0); i += 1000) {
          Tensor logits = net->forward(xte.slice(0, i, i + 1000));
          correct += eq(logits.argmax(1), yte.slice(0, i, i + 1000)).sum().item<int64_t>();
        }
      }
      device_sync();
      double t_eval = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("ember %s batch %lld epoch 1: train %.2f s, eval %.3f s, test acc %.4f\n", dev.str().c_str(),
                  static_cast<long long>(bs), t_train, t_eval, static_cast<double>(correct) / xte.size(0));
    }
#ifdef EMBER_WITH_CUDA
    if (dev.is_cuda())
      std::printf("ember cuda: %llu cudaMalloc calls, peak %.1f MB\n",
                  static_cast<unsigned long long>(cuda::num_device_mallocs()), cuda::max_memory_allocated() / 1e6);
#endif
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
