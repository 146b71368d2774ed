// forker-oci pause, resume, update and events: flags and output; the work is in runtime/.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/oci/commands.hpp"

namespace forker::cli {

struct CgroupCommands;
std::shared_ptr<CgroupCommands> register_cgroup_commands(CLI::App& app);
// The exit status of the selected command, or -1 when none of these was selected.
int run_cgroup_command(const CgroupCommands& c, const Globals& g);

}  // namespace forker::cli
