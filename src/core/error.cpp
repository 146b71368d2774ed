#include "core/error.hpp"

#include <cstring>

namespace forker {

std::string Error::message() const {
  std::string out;
  for (auto it = context.rbegin(); it != context.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += op;
  if (!object.empty()) {
    out += ' ';
    out += object;
  }
  if (err != 0) {
    out += ": ";
    out += std::strerror(err);
  }
  return out;
}

Error sys_error(std::string_view op, std::string_view object) {
  return sys_error_errno(errno, op, object);
}

Error sys_error_errno(int err, std::string_view op, std::string_view object) {
  return Error{std::string(op), std::string(object), err, {}};
}

Error make_error(std::string_view op, std::string_view object) {
  return Error{std::string(op), std::string(object), 0, {}};
}

}  // namespace forker
