// Image commands: import, save, images, rmi, tag, image inspect (and image ls/rm aliases).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/forker/cli.hpp"
#include "cli/forker/format.hpp"
#include "engine/go_template.hpp"
#include "image/builtin_busybox.hpp"
#include "image/import.hpp"
#include "image/save.hpp"

namespace forker::cli {
namespace {

using nlohmann::json;
using image::ImageRecord;

// ---- import ---------------------------------------------------------------------------------

struct ImportArgs {
  std::string file;
  std::string name;
};

int run_import(const Globals& g, const ImportArgs& a) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  std::optional<std::string> name;
  if (!a.name.empty()) name = a.name;
  auto imported = a.file == "-" ? image::import_stream(*store, STDIN_FILENO, name)
                                : image::import_path(*store, a.file, name);
  if (!imported) return fail(imported.error());
  for (const auto& img : *imported) std::printf("%s\n", img.config.str().c_str());
  return 0;
}

// ---- save -----------------------------------------------------------------------------------

struct SaveArgs {
  std::vector<std::string> names;
  std::string output;
};

int run_save(const Globals& g, const SaveArgs& a) {
  if (a.output.empty() && ::isatty(STDOUT_FILENO))
    return fail(make_error("save: refusing to write an archive to a terminal; use -o FILE or a pipe"));
  auto store = open_store(g);
  if (!store) return fail(store.error());
  std::vector<ImageRecord> images;
  for (const auto& n : a.names) {
    auto found = image::find_image_or_builtin(*store, n);
    if (!found) return fail(found.error());
    images.push_back(std::move(*found));
  }
  Status st = a.output.empty() ? image::write_oci_archive(*store, images, STDOUT_FILENO)
                               : image::save_oci_archive(*store, images, a.output);
  if (!st) return fail(st.error());
  return 0;
}

// ---- images ---------------------------------------------------------------------------------

struct ImagesArgs {
  bool quiet = false;
  bool digests = false;
  std::string format = "table";
  std::string filter;  // REPOSITORY[:TAG]
};

// Pads every column but the last to its widest cell plus three spaces, as docker's tabwriter.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.resize(i + 1);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string created_at(const std::string& created) {
  auto t = parse_rfc3339(created);
  if (!t) return "";
  std::time_t tt = static_cast<std::time_t>(*t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return buf;
}

bool matches_filter(const image::FamiliarName& f, const std::string& filter) {
  if (filter.empty()) return true;
  if (filter == f.repository) return true;
  return filter == f.repository + ":" + f.tag;
}

// ---- images --format TEMPLATE: docker's fields and column names ----------------------------

const std::vector<engine::TemplateField> kImageFields = {
    {"ID", "IMAGE ID"},       {"Repository", "REPOSITORY"},  {"Tag", "TAG"},
    {"Digest", "DIGEST"},     {"CreatedSince", "CREATED"},   {"CreatedAt", "CREATED AT"},
    {"Size", "SIZE"},         {"Containers", "CONTAINERS"},  {"SharedSize", "SHARED SIZE"},
    {"UniqueSize", "UNIQUE SIZE"}};

engine::TemplateRow image_row(const ImageRecord& r, int64_t now) {
  auto f = image::familiar_name(r.name);
  return {{"ID", r.config.digest.short_id()},
          {"Repository", f.repository},
          {"Tag", f.tag.empty() ? "<none>" : f.tag},
          {"Digest", r.manifest.digest.str()},
          {"CreatedSince", created_ago(r.created, now)},
          {"CreatedAt", created_at(r.created)},
          {"Size", human_size(static_cast<double>(r.size))},
          {"Containers", "N/A"},
          {"SharedSize", "N/A"},
          {"UniqueSize", "N/A"}};
}

int run_images(const Globals& g, const ImagesArgs& a) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto records = store->images();
  if (!records) return fail(records.error());
  std::vector<ImageRecord> list = std::move(*records);
  std::stable_sort(list.begin(), list.end(), [](const ImageRecord& x, const ImageRecord& y) {
    auto tx = parse_rfc3339(x.created).value_or(0), ty = parse_rfc3339(y.created).value_or(0);
    return tx != ty ? tx > ty : x.name < y.name;
  });
  std::erase_if(list, [&](const ImageRecord& r) {
    return !matches_filter(image::familiar_name(r.name), a.filter);
  });
  if (a.quiet) {
    std::set<std::string> printed;
    for (const auto& r : list)
      if (printed.insert(r.id()).second) std::printf("%s\n", r.config.digest.short_id().c_str());
    return 0;
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (a.format != "table" && a.format != "json") {
    auto t = engine::GoTemplate::parse(a.format, kImageFields);
    if (!t) return fail(t.error());
    std::vector<engine::TemplateRow> rows;
    for (const auto& r : list) rows.push_back(image_row(r, now));
    std::fputs(t->render(rows).c_str(), stdout);
    return 0;
  }
  if (a.format == "json") {
    // One object per line, docker's `--format json`.
    for (const auto& r : list) {
      auto f = image::familiar_name(r.name);
      json row{{"Containers", "N/A"},
               {"CreatedAt", created_at(r.created)},
               {"CreatedSince", created_ago(r.created, now)},
               {"Digest", r.manifest.digest.str()},
               {"ID", r.config.digest.short_id()},
               {"Repository", f.repository},
               {"SharedSize", "N/A"},
               {"Size", human_size(static_cast<double>(r.size))},
               {"Tag", f.tag.empty() ? "<none>" : f.tag},
               {"UniqueSize", "N/A"},
               {"VirtualSize", human_size(static_cast<double>(r.size), 4)}};
      std::printf("%s\n", row.dump().c_str());
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"REPOSITORY", "TAG"};
  if (a.digests) header.push_back("DIGEST");
  header.insert(header.end(), {"IMAGE ID", "CREATED", "SIZE"});
  rows.push_back(header);
  for (const auto& r : list) {
    auto f = image::familiar_name(r.name);
    std::vector<std::string> row{f.repository, f.tag.empty() ? "<none>" : f.tag};
    if (a.digests) row.push_back(r.manifest.digest.str());
    row.insert(row.end(), {r.config.digest.short_id(), created_ago(r.created, now),
                           human_size(static_cast<double>(r.size))});
    rows.push_back(std::move(row));
  }
  print_table(rows);
  return 0;
}

// ---- rmi ------------------------------------------------------------------------------------

struct RmiArgs {
  std::vector<std::string> images;
  bool force = false;
};

std::string familiar(const std::string& full) {
  auto f = image::familiar_name(full);
  return f.tag.empty() ? f.repository : f.repository + ":" + f.tag;
}

// Untags what ARG names: one name, or (by id) every name of that image.
Result<std::vector<std::string>> names_to_untag(image::Store& store, const std::string& arg,
                                                bool force, ImageRecord& found) {
  found = FORKER_TRY(store.find_image(arg));
  if (auto full = image::normalize_image_name(arg); full && *full == found.name)
    return std::vector<std::string>{found.name};
  auto all = FORKER_TRY(store.images());
  std::vector<std::string> names;
  std::set<std::string> repositories;
  for (const auto& r : all) {
    if (r.id() != found.id()) continue;
    names.push_back(r.name);
    repositories.insert(image::familiar_name(r.name).repository);
  }
  if (repositories.size() > 1 && !force)
    return make_error("rmi: image " + found.config.digest.short_id() +
                      " is referenced in multiple repositories; remove it by name or with -f");
  return names;
}

int run_rmi(const Globals& g, const RmiArgs& a) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  int status = 0;
  bool deleted_any = false;
  for (const auto& arg : a.images) {
    ImageRecord found;
    auto names = names_to_untag(*store, arg, a.force, found);
    if (!names) {
      status = fail(names.error());
      continue;
    }
    for (const auto& n : *names) {
      if (auto st = store->untag(n); !st) {
        status = fail(st.error());
        continue;
      }
      std::printf("Untagged: %s\n", familiar(n).c_str());
    }
    auto rest = store->images();
    if (!rest) return fail(rest.error());
    bool still_named = std::any_of(rest->begin(), rest->end(), [&](const ImageRecord& r) {
      return r.id() == found.id();
    });
    if (!still_named) {
      std::printf("Deleted: %s\n", found.config.digest.str().c_str());
      deleted_any = true;
    }
  }
  // Like docker, an image's layers go with its last name: unreferenced objects are removed now.
  if (deleted_any) {
    if (auto pruned = store->prune(); !pruned) return fail(pruned.error());
  }
  return status;
}

// ---- tag, image inspect -----------------------------------------------------------------------

int run_tag(const Globals& g, const std::string& source, const std::string& target) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto found = image::find_image_or_builtin(*store, source);
  if (!found) return fail(found.error());
  auto name = image::normalize_image_name(target);
  if (!name) return fail(name.error());
  if (auto st = store->tag(*name, found->manifest); !st) return fail(st.error());
  return 0;
}

Result<json> inspect_one(image::Store& store, const std::string& arg) {
  ImageRecord rec = FORKER_TRY(image::find_image_or_builtin(store, arg));
  std::string config_text = FORKER_TRY(store.read_blob(rec.config.digest));
  json config = json::parse(config_text, nullptr, false);
  if (config.is_discarded()) return make_error("image inspect: bad config blob", rec.config.digest.str());
  json tags = json::array(), digests = json::array();
  std::set<std::string> repos;
  for (const auto& r : FORKER_TRY(store.images())) {
    if (r.id() != rec.id()) continue;
    auto f = image::familiar_name(r.name);
    if (!f.tag.empty()) tags.push_back(f.repository + ":" + f.tag);
    if (repos.insert(f.repository).second)
      digests.push_back(f.repository + "@" + r.manifest.digest.str());
  }
  json layers = json::array();
  for (const auto& d : rec.diff_ids) layers.push_back(d.str());
  json out{{"Id", rec.config.digest.str()},
           {"RepoTags", tags},
           {"RepoDigests", digests},
           {"Parent", ""},
           {"Comment", ""},
           {"Created", rec.created},
           {"Author", config.value("author", "")},
           {"Config", config.value("config", json(nullptr))},
           {"Architecture", rec.architecture},
           {"Os", rec.os},
           {"Size", rec.size},
           {"RootFS", {{"Type", "layers"}, {"Layers", layers}}}};
  if (config.contains("variant")) out["Variant"] = config["variant"];
  return out;
}

int run_inspect(const Globals& g, const std::vector<std::string>& names) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  json all = json::array();
  int status = 0;
  for (const auto& n : names) {
    auto one = inspect_one(*store, n);
    if (!one) {
      status = fail(one.error());
      continue;
    }
    all.push_back(std::move(*one));
  }
  std::printf("%s\n", all.dump(4).c_str());
  return status;
}

void add_images(CLI::App* parent, const char* name, Globals& g, Actions& actions) {
  auto args = std::make_shared<ImagesArgs>();
  CLI::App* c = parent->add_subcommand(name, "List images");
  c->add_flag("-q,--quiet", args->quiet, "only image ids");
  c->add_flag("--digests", args->digests, "show manifest digests");
  c->add_option("--format", args->format, "table, json, or a template: '{{.Repository}}:{{.Tag}}'");
  c->add_option("repository", args->filter, "only this REPOSITORY[:TAG]");
  actions.add(c, [&g, args] { return run_images(g, *args); });
}

void add_rmi(CLI::App* parent, const char* name, Globals& g, Actions& actions) {
  auto args = std::make_shared<RmiArgs>();
  CLI::App* c = parent->add_subcommand(name, "Remove images (untag; the last name deletes)");
  c->add_flag("-f,--force", args->force, "remove by id even when several repositories use it");
  c->add_option("image", args->images, "image names or ids")->required();
  actions.add(c, [&g, args] { return run_rmi(g, *args); });
}

}  // namespace

void register_image_commands(CLI::App& app, Globals& g, Actions& actions) {
  auto import_args = std::make_shared<ImportArgs>();
  CLI::App* imp = app.add_subcommand("import", "Import a rootfs tarball, docker save archive or OCI layout");
  imp->add_option("file", import_args->file, "FILE, OCI layout directory, or - for stdin")->required();
  imp->add_option("name", import_args->name, "NAME[:TAG]");
  actions.add(imp, [&g, import_args] { return run_import(g, *import_args); });

  auto save_args = std::make_shared<SaveArgs>();
  CLI::App* save = app.add_subcommand("save", "Write images as an OCI image-layout tar");
  save->add_option("-o,--output", save_args->output, "file (default stdout, not a terminal)");
  save->add_option("image", save_args->names, "images")->required();
  actions.add(save, [&g, save_args] { return run_save(g, *save_args); });

  add_images(&app, "images", g, actions);
  add_rmi(&app, "rmi", g, actions);

  auto tag_args = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* tag = app.add_subcommand("tag", "Give an image another name");
  tag->add_option("source", tag_args->first, "SOURCE image")->required();
  tag->add_option("target", tag_args->second, "TARGET name[:tag]")->required();
  actions.add(tag, [&g, tag_args] { return run_tag(g, tag_args->first, tag_args->second); });

  CLI::App* image = app.add_subcommand("image", "Image commands");
  image->require_subcommand(1);
  auto inspect_names = std::make_shared<std::vector<std::string>>();
  CLI::App* inspect = image->add_subcommand("inspect", "Image details as JSON");
  inspect->add_option("image", *inspect_names, "images")->required();
  actions.add(inspect, [&g, inspect_names] { return run_inspect(g, *inspect_names); });
  add_images(image, "ls", g, actions);
  add_rmi(image, "rm", g, actions);
}

}  // namespace forker::cli
