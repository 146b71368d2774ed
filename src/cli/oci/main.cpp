// forker-oci: runc's command line over the forker library. Parses flags, calls one library
// function, prints the error as one line (and to --log), and maps it to an exit status.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string_view>

#include "core/log.hpp"
#include "linux/rootless.hpp"
#include "cli/oci/commands.hpp"

using namespace forker;

int main(int argc, char** argv) {
  // Answered before CLI11 is built: its --version flag works by throwing, and the first throw
  // in a static binary sorts every unwind table (95% of the command's instructions).
  if (argc == 2 && (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-v")) {
    std::printf("forker-oci version %s\nspec: 1.1.0\n", FORKER_VERSION);
    return 0;
  }
  CLI::App app{"forker-oci: an OCI container runtime", "forker-oci"};
  app.set_version_flag("-v,--version", std::string("forker-oci version ") + FORKER_VERSION +
                                           "\nspec: 1.1.0");
  cli::Globals globals;
  // Rootless: $XDG_RUNTIME_DIR/forker-oci (or /tmp/forker-oci-UID), as runc does.
  globals.options.root = linux::default_state_root();
  app.add_option("--root", globals.options.root, "state directory")->capture_default_str();
  app.add_option("--log", globals.log_file, "log file (default stderr)");
  app.add_option("--log-format", globals.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", globals.options.debug, "debug logging with per-step timings");
  app.add_flag("--systemd-cgroup", globals.options.systemd_cgroup, "use the systemd cgroup driver");
  app.add_option("--criu", globals.criu, "ignored (checkpoint/restore is not supported)");
  app.add_option("--rootless", globals.rootless, "true, false or auto");
  app.require_subcommand(1);
  auto commands = cli::register_commands(app, globals);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "forker-oci: %s\n", e.what());
    return 2;
  }
  return cli::run_selected(app, globals, commands);
}
