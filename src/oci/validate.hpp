// Checks a parsed Spec as a whole before the first syscall: ids, paths, namespace combinations.
#pragma once

#include <string>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::oci {

// The namespace types the runtime-spec defines, with the CLONE_NEW* flag of each.
int namespace_clone_flag(const std::string& type);  // 0 when unknown

Status validate_container_id(const std::string& id);
// For create/run: the full config. need_process=false for specs used only by hooks/state.
Status validate_spec(const Spec& spec, bool need_process = true);
Status validate_process(const Process& process, const std::string& field = "process");
// Sysctl keys that a container may set because they are namespaced; others are refused.
Status validate_sysctl(const Spec& spec);

}  // namespace forker::oci
