#pragma once
#include <stdexcept>
#include <string>
namespace mamba {
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
}  // namespace mamba
