// process.rlimits: names resolved and checked in the parent; the child only calls setrlimit(2).
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

struct RlimitValue {
  int resource = 0;            // RLIMIT_*
  const char* name = nullptr;  // "RLIMIT_NOFILE": static storage, so the child need not copy it
  uint64_t soft = 0;           // RLIM_INFINITY is ~0
  uint64_t hard = 0;

  bool operator==(const RlimitValue& other) const {
    return resource == other.resource && soft == other.soft && hard == other.hard;
  }
};

// Unknown type, a type given twice, or soft above hard is an Error naming the entry:
// "process.rlimits[1] RLIMIT_FOO: unknown type".
Result<std::vector<RlimitValue>> plan_rlimits(const std::vector<oci::Rlimit>& rlimits);

// Child side: setrlimit for each, in order. Raising a hard limit needs CAP_SYS_RESOURCE; the
// error names the limit and the values asked for.
Status apply_rlimits(const std::vector<RlimitValue>& rlimits);

}  // namespace forker::linux
