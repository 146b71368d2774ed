// Errors as values: the operation, the object it touched, the errno, and context added on the way
// up. Printed as "create c1: rootfs: mount proc on /proc: Operation not permitted".
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace forker {

struct Error {
  std::string op;                    // "mount", "openat2", "parse config.json"
  std::string object;                // path, cgroup file, container id; may be empty
  int err = 0;                       // errno; 0 when the kernel was not involved
  std::vector<std::string> context;  // outermost first after reversal in message()

  // Adds an outer layer ("create c1"). Layers print outermost first.
  Error& add_context(std::string layer) {
    context.push_back(std::move(layer));
    return *this;
  }
  std::string message() const;
};

// Reads errno at the call site: sys_error("mount", "/proc").
Error sys_error(std::string_view op, std::string_view object = {});
Error sys_error_errno(int err, std::string_view op, std::string_view object = {});
// A failure the kernel was not part of: bad input, a missing field.
Error make_error(std::string_view op, std::string_view object = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Error& error() & { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  const Error& error() const& { return std::get<1>(v_); }

  Result&& context(std::string layer) && {
    if (!has_value()) error().add_context(std::move(layer));
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT
  bool has_value() const { return !failed_; }
  explicit operator bool() const { return has_value(); }
  void value() const {}
  Error& error() & { return error_; }
  Error&& error() && { return std::move(error_); }
  const Error& error() const& { return error_; }
  Result&& context(std::string layer) && {
    if (failed_) error_.add_context(std::move(layer));
    return std::move(*this);
  }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok() { return {}; }

}  // namespace forker

// Yields the value of a Result or returns its error from the enclosing function.
#define FORKER_TRY(expr)                                        \
  ({                                                            \
    auto forker_try_result_ = (expr);                           \
    if (!forker_try_result_.has_value())                        \
      return std::move(forker_try_result_).error();             \
    std::move(forker_try_result_).value();                      \
  })

// Same, adding a context layer to the error on the way up.
#define FORKER_TRY_CTX(expr, ctx)                               \
  ({                                                            \
    auto forker_try_result_ = (expr);                           \
    if (!forker_try_result_.has_value())                        \
      return std::move(forker_try_result_.error().add_context(ctx)); \
    std::move(forker_try_result_).value();                      \
  })
