#pragma once
/// EMBER_ARG: the libtorch-style chainable option field used by every options struct in nn/ and
/// optim/. `EMBER_ARG(double, lr) = 1e-3;` declares a member `lr_` with a setter `lr(v)` that
/// returns *this (so setters chain: `SGDOptions(0.1).momentum(0.9).nesterov(true)`) and a getter
/// `lr()`.
#include <utility>

#define EMBER_ARG(T, name)                                          \
 public:                                                            \
  auto& name(const T& new_##name) {                                 \
    this->name##_ = new_##name;                                     \
    return *this;                                                   \
  }                                                                 \
  const T& name() const noexcept { return this->name##_; }          \
  T& name() noexcept { return this->name##_; }                      \
                                                                    \
 private:                                                           \
  T name##_

/// EMBER_ARG for a CRTP base shared by several options structs (AdamOptions, AdamWOptions): the
/// setter returns the derived type, so chaining keeps it.
#define EMBER_ARG_CRTP(Derived, T, name)                            \
 public:                                                            \
  Derived& name(const T& new_##name) {                              \
    this->name##_ = new_##name;                                     \
    return static_cast<Derived&>(*this);                            \
  }                                                                 \
  const T& name() const noexcept { return this->name##_; }          \
  T& name() noexcept { return this->name##_; }                      \
                                                                    \
 private:                                                           \
  T name##_
