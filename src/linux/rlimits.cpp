#include "linux/rlimits.hpp"

#include <sys/resource.h>

#include <string>
#include <string_view>

#include "core/trace.hpp"

namespace forker::linux {
namespace {

struct NamedLimit {
  const char* name;
  int resource;
};

// The runtime-spec allows every RLIMIT_* of the platform; these are Linux's.
constexpr NamedLimit kLimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

std::string value_text(uint64_t v) {
  return v == static_cast<uint64_t>(RLIM_INFINITY) ? "unlimited" : std::to_string(v);
}

}  // namespace

Result<std::vector<RlimitValue>> plan_rlimits(const std::vector<oci::Rlimit>& rlimits) {
  std::vector<RlimitValue> out;
  out.reserve(rlimits.size());
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const oci::Rlimit& r = rlimits[i];
    const std::string field = "process.rlimits[" + std::to_string(i) + "] " + r.type;
    const NamedLimit* found = nullptr;
    for (const NamedLimit& l : kLimits)
      if (r.type == l.name) found = &l;
    if (found == nullptr) return make_error(field + ": unknown type");
    for (const RlimitValue& prior : out)
      if (prior.resource == found->resource) return make_error(field + ": given twice");
    // setrlimit would say only EINVAL.
    if (r.soft > r.hard)
      return make_error(field + ": soft " + value_text(r.soft) + " is above hard " +
                        value_text(r.hard));
    out.push_back(RlimitValue{found->resource, found->name, r.soft, r.hard});
  }
  return out;
}

Status apply_rlimits(const std::vector<RlimitValue>& rlimits) {
  for (const RlimitValue& r : rlimits) {
    const rlimit value{static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    trace::Scope step([&] {
      return std::string("setrlimit ") + r.name + " soft " + value_text(r.soft) + " hard " +
             value_text(r.hard);
    });
    if (step.result(setrlimit(static_cast<__rlimit_resource_t>(r.resource), &value)) < 0) {
      Error e = sys_error("setrlimit", r.name);
      e.object += " soft=" + value_text(r.soft) + " hard=" + value_text(r.hard);
      // EPERM here almost always means a raised hard limit without CAP_SYS_RESOURCE.
      if (e.err == EPERM) {
        rlimit current{};
        if (getrlimit(static_cast<__rlimit_resource_t>(r.resource), &current) == 0)
          e.object += " (current hard " + value_text(current.rlim_max) + ")";
      }
      return e;
    }
  }
  return ok();
}

}  // namespace forker::linux
