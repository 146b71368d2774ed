// linux.personality: the execution domain (LINUX, or LINUX32 for 32-bit uname and mmap layout).
#pragma once

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// "LINUX" -> PER_LINUX, "LINUX32" -> PER_LINUX32. Any flag is an Error for now: the
// runtime-spec defines none, and runc accepts none.
Result<unsigned long> plan_personality(const oci::Personality& personality);

// Child side: personality(2).
Status apply_personality(unsigned long persona);

}  // namespace forker::linux
