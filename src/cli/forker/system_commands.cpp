// System commands: df (what the store holds) and prune (what nothing references).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/forker/cli.hpp"
#include "cli/forker/format.hpp"

namespace forker::cli {
namespace {

int run_df(const Globals& g) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto du = store->disk_usage();
  if (!du) return fail(du.error());
  auto size = [](int64_t b) { return human_size(static_cast<double>(b), 4); };
  struct Row {
    const char* type;
    std::string total, bytes;
  } rows[] = {
      {"Images", std::to_string(du->images), size(du->blobs_bytes)},
      {"Layers (unpacked)", std::to_string(du->layers), size(du->layers_bytes)},
      {"Containers", std::to_string(du->containers), size(du->containers_bytes)},
      {"Build debris", "-", size(du->debris_bytes)},
  };
  std::printf("%-20s%-10s%s\n", "TYPE", "TOTAL", "SIZE");
  for (const auto& r : rows) std::printf("%-20s%-10s%s\n", r.type, r.total.c_str(), r.bytes.c_str());
  return 0;
}

bool confirmed() {
  std::printf(
      "WARNING! This will remove:\n"
      "  - blobs and unpacked layers no image refers to\n"
      "  - debris of interrupted pulls and imports\n"
      "Are you sure you want to continue? [y/N] ");
  std::fflush(stdout);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

int run_prune(const Globals& g, bool force) {
  if (!force && !confirmed()) return 0;
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto report = store->prune();
  if (!report) return fail(report.error());
  for (const auto& d : report->layers_removed) std::printf("Deleted layer: %s\n", d.str().c_str());
  for (const auto& d : report->blobs_removed) std::printf("Deleted blob: %s\n", d.str().c_str());
  if (report->debris_removed > 0)
    std::printf("Deleted debris: %d entries\n", report->debris_removed);
  std::printf("Total reclaimed space: %s\n",
              human_size(static_cast<double>(report->bytes_freed), 4).c_str());
  return 0;
}

}  // namespace

void register_system_commands(CLI::App& app, Globals& g, Actions& actions) {
  CLI::App* system = app.add_subcommand("system", "Store maintenance");
  system->require_subcommand(1);
  CLI::App* df = system->add_subcommand("df", "Disk used by images, layers, containers, debris");
  actions.add(df, [&g] { return run_df(g); });
  auto force = std::make_shared<bool>(false);
  CLI::App* prune = system->add_subcommand("prune", "Remove unreferenced blobs, layers, debris");
  prune->add_flag("-f,--force", *force, "do not ask");
  actions.add(prune, [&g, force] { return run_prune(g, *force); });
}

}  // namespace forker::cli
