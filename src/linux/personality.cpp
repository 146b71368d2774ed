#include "linux/personality.hpp"

#include <sys/personality.h>

#include <string>

namespace forker::linux {

Result<unsigned long> plan_personality(const oci::Personality& personality) {
  unsigned long persona = 0;
  if (personality.domain == "LINUX")
    persona = PER_LINUX;
  else if (personality.domain == "LINUX32")
    persona = PER_LINUX32;
  else
    return make_error("linux.personality.domain " + personality.domain + ": unknown domain");
  if (!personality.flags.empty())
    return make_error("linux.personality.flags " + personality.flags.front() +
                      ": unknown flag (no flags are supported)");
  return persona;
}

Status apply_personality(unsigned long persona) {
  // personality(2) returns the previous persona; only -1 is an error.
  if (::personality(persona) == -1)
    return sys_error("personality", persona == PER_LINUX32 ? "LINUX32" : "LINUX");
  return ok();
}

}  // namespace forker::linux
