// `forker`: the docker-like command line. Parses flags with CLI11, runs one command, prints an
// error as one line "forker: <message>" and exits 1 (2 for a usage error).
#include <cstdio>
#include <string_view>

#include "cli/forker/cli.hpp"

namespace forker::cli {

int Actions::run() const {
  for (const auto& [command, action] : actions_)
    if (command->parsed()) return action();
  std::fprintf(stderr, "forker: no command given (see forker --help)\n");
  return 1;
}

int fail(const Error& e) {
  std::fprintf(stderr, "forker: %s\n", e.message().c_str());
  return 1;
}

Result<image::Store> open_store(const Globals& g) {
  std::string root = g.storage_root.empty() ? image::Store::default_root() : g.storage_root;
  return image::Store::open(root);
}

}  // namespace forker::cli

int main(int argc, char** argv) {
  using namespace forker::cli;
  // Answered before CLI11 is built (its --version works by throwing), as forker-oci does.
  if (argc == 2 && (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-v")) {
    std::printf("forker version %s\n", FORKER_VERSION);
    return 0;
  }
  CLI::App app{"forker: containers and images", "forker"};
  app.set_version_flag("-v,--version", std::string("forker version ") + FORKER_VERSION);
  Globals globals;
  app.add_option("--storage-root", globals.storage_root,
                 "image store directory (default /var/lib/forker, rootless "
                 "$XDG_DATA_HOME/forker)")
      ->envname("FORKER_STORAGE_ROOT");
  app.require_subcommand(1);
  Actions actions;
  register_image_commands(app, globals, actions);
  register_system_commands(app, globals, actions);
  register_registry_commands(app, globals, actions);
  register_container_commands(app, globals, actions);
  register_stats_commands(app, globals, actions);
  register_network_commands(app, globals, actions);
  register_completion_commands(app, globals, actions);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "forker: %s\n", e.what());
    return 2;
  }
  return actions.run();
}
