// `forker network create|ls|inspect|rm` and `forker port`, with docker's flags and output.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/forker/cli.hpp"
#include "core/strings.hpp"
#include "engine/container_network.hpp"

namespace forker::cli {

namespace {

using json = nlohmann::json;

json network_json(const net::NetworkConfig& n, const std::vector<engine::Endpoint>& endpoints) {
  json config = json::array({{{"Subnet", n.subnet.str()}, {"Gateway", n.gateway.str()}}});
  if (n.subnet6)
    config.push_back({{"Subnet", n.subnet6->str()},
                      {"Gateway", n.gateway6 ? n.gateway6->str() : ""}});
  json containers = json::object();
  for (const auto& e : endpoints)
    for (const auto& a : e.attachments)
      if (a.network == n.name)
        containers[e.container_id] = {
            {"Name", e.name},
            {"MacAddress", a.mac},
            {"IPv4Address", a.address.str() + "/" + std::to_string(a.subnet.prefix)},
            {"IPv6Address", a.address6 ? a.address6->str() + "/" +
                                             std::to_string(a.subnet6 ? a.subnet6->prefix : 64)
                                       : ""}};
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", n.created},
          {"Driver", "bridge"},
          {"EnableIPv6", n.subnet6.has_value()},
          {"IPAM", {{"Driver", "default"}, {"Config", config}}},
          {"Internal", n.internal},
          {"Containers", containers},
          {"Options", {{"com.docker.network.bridge.name", n.bridge},
                       {"com.docker.network.driver.mtu", std::to_string(n.mtu)}}}};
}

}  // namespace

void register_network_commands(CLI::App& app, Globals& g, Actions& actions) {
  CLI::App* network = app.add_subcommand("network", "Manage networks");
  network->require_subcommand(1);

  auto co = std::make_shared<net::NetworkCreateOptions>();
  auto subnets = std::make_shared<std::vector<std::string>>();
  auto gateways = std::make_shared<std::vector<std::string>>();
  CLI::App* create = network->add_subcommand("create", "Create a bridge network");
  create->add_option("--subnet", *subnets,
                     "CIDR, IPv4 and/or IPv6 (default: a free 10.x.0.0/16)")
      ->allow_extra_args(false);
  create->add_option("--gateway", *gateways, "the bridge's address per subnet (default: the first)")
      ->allow_extra_args(false);
  create->add_flag("--internal", co->internal, "no traffic to or from the outside");
  create->add_flag("--ipv6", co->ipv6, "IPv6 addresses as well (a random ULA /64 unless given)");
  create->add_option("name", co->name, "network name")->required();
  actions.add(create, [&g, co, subnets, gateways] {
    // docker's --subnet and --gateway take either family; each gateway goes with the subnet
    // of its family.
    for (const auto& s : *subnets) {
      bool v6 = s.find(':') != std::string::npos;
      std::string& slot = v6 ? co->subnet6 : co->subnet;
      if (!slot.empty()) return fail(Error{"--subnet " + s + ": one subnet per address family"});
      slot = s;
      if (v6) co->ipv6 = true;
    }
    for (const auto& gw : *gateways)
      (gw.find(':') != std::string::npos ? co->gateway6 : co->gateway) = gw;
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto n = eng->networking().create_network(*co);
    if (!n) return fail(n.error());
    std::printf("%s\n", n->id.c_str());
    return 0;
  });

  auto quiet = std::make_shared<bool>(false);
  auto ls_format = std::make_shared<std::string>("table");
  CLI::App* ls = network->add_subcommand("ls", "List networks");
  ls->alias("list");
  ls->add_flag("-q,--quiet", *quiet, "only names");
  ls->add_option("--format", *ls_format, "table or json");
  actions.add(ls, [&g, quiet, ls_format] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto all = eng->networking().list_networks();
    if (!all) return fail(all.error());
    if (*quiet) {
      for (const auto& n : *all) std::printf("%s\n", n.name.c_str());
      return 0;
    }
    if (*ls_format == "json") {
      auto endpoints = eng->networking().endpoints();
      for (const auto& n : *all) std::printf("%s\n", network_json(n, endpoints).dump().c_str());
      return 0;
    }
    std::printf("%-12s  %-20s  %-18s  %-10s  %s\n", "NETWORK ID", "NAME", "SUBNET", "BRIDGE",
                "INTERNAL");
    for (const auto& n : *all)
      std::printf("%-12s  %-20s  %-18s  %-10s  %s\n", n.id.substr(0, 12).c_str(), n.name.c_str(),
                  n.subnet.str().c_str(), n.bridge.c_str(), n.internal ? "true" : "false");
    return 0;
  });

  auto inspect_names = std::make_shared<std::vector<std::string>>();
  CLI::App* inspect = network->add_subcommand("inspect", "Show networks as JSON");
  inspect->add_option("network", *inspect_names, "names or ids")->required();
  actions.add(inspect, [&g, inspect_names] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto endpoints = eng->networking().endpoints();
    json out = json::array();
    int status = 0;
    for (const auto& name : *inspect_names) {
      auto n = eng->networking().get_network(name);
      if (!n)
        status = fail(n.error());
      else
        out.push_back(network_json(*n, endpoints));
    }
    std::printf("%s\n", out.dump(4).c_str());
    return status;
  });

  auto rm_names = std::make_shared<std::vector<std::string>>();
  CLI::App* rm = network->add_subcommand("rm", "Remove networks (their bridge goes too)");
  rm->alias("remove");
  rm->add_option("network", *rm_names, "names or ids")->required();
  actions.add(rm, [&g, rm_names] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    int status = 0;
    for (const auto& name : *rm_names) {
      if (auto r = eng->networking().remove_network(name, eng->containers()); !r)
        status = fail(r.error());
      else
        std::printf("%s\n", name.c_str());
    }
    return status;
  });

  for (bool connect : {true, false}) {
    auto args = std::make_shared<std::vector<std::string>>();
    CLI::App* c = network->add_subcommand(connect ? "connect" : "disconnect",
                                          connect ? "Connect a container to a network"
                                                  : "Disconnect a container from a network");
    c->add_option("args", *args, "NETWORK CONTAINER")->required()->expected(2);
    actions.add(c, [&g, args, connect] {
      auto eng = open_engine(g);
      if (!eng) return fail(eng.error());
      auto r = connect ? eng->network_connect((*args)[0], (*args)[1])
                       : eng->network_disconnect((*args)[0], (*args)[1]);
      return r ? 0 : fail(r.error());
    });
  }

  // port CONTAINER [PRIVATE_PORT[/PROTO]]
  auto port_args = std::make_shared<std::vector<std::string>>();
  CLI::App* port = app.add_subcommand("port", "List a container's published ports");
  port->add_option("args", *port_args, "CONTAINER [PRIVATE_PORT[/PROTO]]")->required()->expected(1, 2);
  actions.add(port, [&g, port_args] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto v = eng->view(port_args->front());
    if (!v) return fail(v.error());
    auto req = engine::NetworkRequest::from_json(v->record.network);
    if (!req) return fail(req.error());
    std::string filter = port_args->size() > 1 ? (*port_args)[1] : "";
    if (!filter.empty() && filter.find('/') == std::string::npos) filter += "/tcp";
    bool any = false;
    for (const auto& p : req->ports) {
      std::string key = std::to_string(p.container_port) + "/" + p.protocol;
      if (!filter.empty() && key != filter) continue;
      std::string host = (p.host_ip.empty() ? "0.0.0.0" : p.host_ip) + ":" +
                         std::to_string(p.host_port);
      if (filter.empty())
        std::printf("%s -> %s\n", key.c_str(), host.c_str());
      else
        std::printf("%s\n", host.c_str());
      any = true;
    }
    if (!any && !filter.empty())
      return fail(Error{"no public port '" + filter + "' published for " + port_args->front()});
    return 0;
  });
}

}  // namespace forker::cli
