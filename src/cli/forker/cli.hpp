// The pieces every `forker` command group shares: global flags, the table of actions (one per
// subcommand, run after parsing), the store, and the one-line error.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "engine/engine.hpp"
#include "image/store.hpp"

namespace forker::cli {

struct Globals {
  std::string storage_root;  // empty: Store::default_root()
};

// Each command registers its subcommand with the function that runs it.
class Actions {
 public:
  void add(CLI::App* command, std::function<int()> action) {
    actions_.emplace_back(command, std::move(action));
  }
  // Runs the action of the subcommand that was parsed; 1 when none was.
  int run() const;

 private:
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions_;
};

// Prints "forker: <message>" to stderr; returns the exit status 1.
int fail(const Error& e);
Result<image::Store> open_store(const Globals& g);
Result<engine::Engine> open_engine(const Globals& g);

// One group per file: image_commands.cpp, system_commands.cpp (pull/login join later).
void register_image_commands(CLI::App& app, Globals& g, Actions& actions);
void register_system_commands(CLI::App& app, Globals& g, Actions& actions);
void register_registry_commands(CLI::App& app, Globals& g, Actions& actions);
void register_container_commands(CLI::App& app, Globals& g, Actions& actions);
void register_stats_commands(CLI::App& app, Globals& g, Actions& actions);
// network create/ls/inspect/rm and port.
void register_network_commands(CLI::App& app, Globals& g, Actions& actions);
// Walks APP when it runs: register it after the others or before, the script has them all.
void register_completion_commands(CLI::App& app, Globals& g, Actions& actions);

}  // namespace forker::cli
