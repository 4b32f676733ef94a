#pragma once
#include <stdexcept>
#include <string>
namespace mamba {
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Work stopped because its cancel flag was raised (loading, prefill); what it changed is undone.
class Cancelled : public Error {
 public:
  using Error::Error;
};
}  // namespace mamba
