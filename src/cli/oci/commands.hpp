#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "runtime/container.hpp"

namespace forker::cli {

struct Globals {
  runtime::GlobalOptions options;
  std::string log_file;
  std::string log_format = "text";
  std::string criu;
  std::string rootless;
};

struct Commands;  // every command's flags
std::shared_ptr<Commands> register_commands(CLI::App& app, Globals& g);
int run_selected(CLI::App& app, Globals& g, const std::shared_ptr<Commands>& c);

}  // namespace forker::cli
