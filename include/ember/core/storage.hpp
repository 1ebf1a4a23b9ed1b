#pragma once
/// Storage: a reference-counted buffer on one device, shared by a tensor and all of its views.
/// It also carries the version counter that autograd uses to detect in-place modification of a
/// tensor saved for backward (views share it, as in PyTorch).
#include <cstddef>
#include <functional>
#include <memory>

#include "ember/core/allocator.hpp"
#include "ember/core/device.hpp"

namespace ember {

class Storage {
 public:
  /// Allocates `nbytes` on `device`.
  Storage(size_t nbytes, Device device) : data_(allocate_bytes(nbytes, device)), nbytes_(nbytes), device_(device) {}
  /// Wraps memory owned elsewhere; `deleter` (may be empty) runs when the last tensor lets go.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter)
      : data_(data), nbytes_(nbytes), device_(device), external_(true), deleter_(std::move(deleter)) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (external_) {
      if (deleter_) deleter_(data_);
    } else {
      free_bytes(data_, nbytes_, device_);
    }
  }

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  bool external_ = false;
  std::function<void(void*)> deleter_;
  uint32_t version_ = 0;
};

}  // namespace ember
