// OCI lifecycle hooks (prestart, createRuntime, createContainer, startContainer, poststart,
// poststop): each is a program run in the runtime's namespaces with the container state on stdin.
// Follows runc's configs.Command.Run: stdout and stderr are captured, not inherited, and shown
// only when the hook fails.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::runtime {

// Runs one hook: fork + execve(path, args, env) with env exactly as given (empty when none) and
// args[0] as argv[0] (path when args is empty), state_json on stdin (a hook that does not read it
// is fine), in its own process group. hook.timeout > 0 is a limit in seconds: past it the group
// is killed with SIGKILL. Errors name the hook and say why:
//   "hook /usr/bin/foo: exit status 3: <last line of its stderr>"
//   "hook /usr/bin/foo timed out after 2 s"
//   "hook /nope: exec: No such file or directory"
Status run_hook(const oci::Hook& hook, const std::string& state_json);

// Runs hooks in order, stopping at the first failure, whose error names the phase:
// "createRuntime hook /bin/false: exit status 1".
Status run_hooks(std::string_view phase, const std::vector<oci::Hook>& hooks,
                 const std::string& state_json);

// poststart and poststop: a failing hook is reported, the remaining ones still run
// (runtime-spec). Returns every failure.
std::vector<Error> run_hooks_all(std::string_view phase, const std::vector<oci::Hook>& hooks,
                                 const std::string& state_json);

}  // namespace forker::runtime
