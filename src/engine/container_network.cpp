#include "engine/container_network.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "core/file.hpp"
#include "engine/container_config.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "core/undo.hpp"
#include "core/unique_fd.hpp"
#include "image/store_files.hpp"
#include "net/netlink.hpp"
#include "net/nft_ruleset.hpp"
#include "net/nftables.hpp"
#include "net/slirp4netns.hpp"
#include "net/sysctl.hpp"
#include "oci/state.hpp"

namespace forker::engine {

using nlohmann::json;

namespace {

Error net_error(const std::string& what, const std::string& why) { return Error{what + ": " + why}; }

std::vector<std::string> json_files(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.ends_with(".json")) out.push_back(dir + "/" + n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::array<uint8_t, 6>> parse_mac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned v[6];
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) !=
      6)
    return Error{"bad MAC address '" + text + "'"};
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
  return mac;
}

json subnet_json(const std::optional<net::Subnet>& s) { return s ? json(s->str()) : json(); }

Result<std::optional<net::Subnet>> optional_subnet(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<net::Subnet>();
  return std::optional<net::Subnet>(FORKER_TRY(net::Subnet::parse(it->get<std::string>())));
}

Result<std::optional<net::IpAddress>> optional_address(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<net::IpAddress>();
  return std::optional<net::IpAddress>(FORKER_TRY(net::IpAddress::parse(it->get<std::string>())));
}

// Why slirp4netns cannot run here, or "" when it can: it opens /dev/net/tun inside the
// container's user namespace, with the caller's own permissions on the node.
std::string slirp_unavailable() {
  if (net::find_slirp4netns().empty()) return "slirp4netns is not installed (Debian: slirp4netns)";
  if (access("/dev/net/tun", R_OK | W_OK) != 0)
    return "/dev/net/tun: " + std::string(std::strerror(errno)) + " for uid " +
           std::to_string(getuid()) + " (udev makes it mode 0666)";
  return "";
}

// The slirp4netns processes this process started, by container id, with the write end of their
// exit fd: closing it ends one. Held until detach() here, or until this process (the
// container's waiter: the monitor or a foreground `forker run`) exits.
std::map<std::string, std::pair<pid_t, UniqueFd>>& own_slirps() {
  static std::map<std::string, std::pair<pid_t, UniqueFd>> slirps;
  return slirps;
}

// Two host addresses overlap when either is "every address" or they are equal.
bool same_host_port(const net::PortMapping& a, const net::PortMapping& b) {
  return a.protocol == b.protocol && a.host_port == b.host_port &&
         (a.host_ip.empty() || b.host_ip.empty() || a.host_ip == b.host_ip);
}

}  // namespace

// ---- records ----

Endpoint new_endpoint(const ContainerRecord& rec, const NetworkRequest& r,
                      const std::string& hostname, const std::string& container_dir) {
  Endpoint ep;
  ep.container_id = rec.id;
  ep.name = rec.name;
  ep.group = rec.group;
  ep.hostname = hostname;
  ep.hosts_file = container_dir + "/hosts";
  ep.ports = r.ports;
  return ep;
}

json NetworkRequest::to_json() const {
  json ports_json = json::array();
  for (const auto& p : ports) ports_json.push_back(p.to_json());
  return {{"mode", mode}, {"networks", networks}, {"target", target}, {"ports", ports_json}};
}

Result<NetworkRequest> NetworkRequest::from_json(const json& j) {
  NetworkRequest r;
  if (!j.is_object()) return r;  // containers from before networking: none
  try {
    r.mode = j.value("mode", "none");
    r.networks = j.value("networks", std::vector<std::string>{});
    r.target = j.value("target", "");
    if (auto it = j.find("ports"); it != j.end())
      for (const auto& p : *it) r.ports.push_back(FORKER_TRY(net::PortMapping::from_json(p)));
  } catch (const json::exception& e) {
    return Error{std::string("container.json network: ") + e.what()};
  }
  return r;
}

json Endpoint::to_json() const {
  json atts = json::array();
  for (const Attachment& a : attachments)
    atts.push_back({{"network", a.network},
                    {"bridge", a.bridge},
                    {"interface", a.interface},
                    {"subnet", a.subnet.str()},
                    {"subnet6", subnet_json(a.subnet6)},
                    {"internal", a.internal},
                    {"address", a.address.str()},
                    {"gateway", a.gateway.str()},
                    {"address6", a.address6 ? json(a.address6->str()) : json()},
                    {"mac", a.mac},
                    {"host_veth", a.host_veth}});
  json ports_json = json::array();
  for (const auto& p : ports) ports_json.push_back(p.to_json());
  json j = {{"container_id", container_id}, {"name", name},       {"group", group},
            {"hostname", hostname},         {"hosts_file", hosts_file}, {"attachments", atts},
            {"ports", ports_json}};
  if (slirp_pid > 0) j["slirp4netns"] = {{"pid", slirp_pid}, {"api_socket", api_socket}};
  return j;
}

Result<Endpoint> Endpoint::from_json(const json& j) {
  Endpoint e;
  try {
    e.container_id = j.at("container_id").get<std::string>();
    e.name = j.value("name", "");
    e.group = j.value("group", "");
    e.hostname = j.value("hostname", "");
    e.hosts_file = j.value("hosts_file", "");
    for (const auto& a : j.at("attachments")) {
      Attachment t;
      t.network = a.at("network").get<std::string>();
      t.bridge = a.at("bridge").get<std::string>();
      t.interface = a.value("interface", "");
      t.subnet = FORKER_TRY(net::Subnet::parse(a.at("subnet").get<std::string>()));
      t.subnet6 = FORKER_TRY(optional_subnet(a, "subnet6"));
      t.internal = a.value("internal", false);
      t.address = FORKER_TRY(net::IpAddress::parse(a.at("address").get<std::string>()));
      t.gateway = FORKER_TRY(net::IpAddress::parse(a.at("gateway").get<std::string>()));
      t.address6 = FORKER_TRY(optional_address(a, "address6"));
      t.mac = a.value("mac", "");
      t.host_veth = a.value("host_veth", "");
      e.attachments.push_back(std::move(t));
    }
    for (const auto& p : j.value("ports", json::array()))
      e.ports.push_back(FORKER_TRY(net::PortMapping::from_json(p)));
    if (auto s = j.find("slirp4netns"); s != j.end() && s->is_object()) {
      e.slirp_pid = s->value("pid", 0);
      e.api_socket = s->value("api_socket", "");
    }
  } catch (const json::exception& ex) {
    return Error{std::string("endpoint: ") + ex.what()};
  }
  return e;
}

std::string render_hosts(const Endpoint& self, const std::vector<Endpoint>& all) {
  std::string out = localhost_hosts();
  auto names = [](const Endpoint& e) {
    std::string n = e.hostname;
    if (e.name != e.hostname) n += (n.empty() ? "" : " ") + e.name;
    return n;
  };
  for (const Attachment& a : self.attachments) {
    out += a.address.str() + "\t" + names(self) + "\n";
    if (a.address6) out += a.address6->str() + "\t" + names(self) + "\n";
  }
  std::set<std::string> mine;
  for (const Attachment& a : self.attachments) mine.insert(a.network);
  for (const Endpoint& peer : all) {
    if (peer.container_id == self.container_id) continue;
    for (const Attachment& a : peer.attachments) {
      if (!mine.count(a.network)) continue;
      std::string line = a.address.str() + "\t" + names(peer);
      if (!peer.group.empty()) line += " " + peer.group;
      out += line + "\n";
      if (a.address6) out += a.address6->str() + "\t" + names(peer) + "\n";
    }
  }
  return out;
}

// ---- ContainerNetworking ----

ContainerNetworking::ContainerNetworking(std::string store_root, std::string state_root)
    : store_root_(std::move(store_root)), state_root_(std::move(state_root)) {}

std::string ContainerNetworking::default_state_root() {
  if (geteuid() == 0) return "/run/forker-network";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) return std::string(xdg) + "/forker-network";
  return "/tmp/forker-network-" + std::to_string(geteuid());
}

Result<net::NetworkStore> ContainerNetworking::store() const {
  return net::NetworkStore::open(store_root_ + "/networks");
}

Result<net::NetworkConfig> ContainerNetworking::network_for(net::NetworkStore& s,
                                                           const std::string& name) {
  auto n = s.get(name);
  if (n || name != net::kDefaultNetwork) return n;
  // The default network, made on first use (the route dump only then). A forker0 left by a
  // store that is gone would look like a host route in the way.
  {
    auto held = FORKER_TRY(lock());
    auto nl = FORKER_TRY(net::Netlink::open());
    FORKER_TRY(reclaim_stale_bridge(nl, net::kDefaultNetwork));
  }
  auto routes = FORKER_TRY(net::host_routes());
  return s.ensure_default(routes);
}

Result<NetworkRequest> ContainerNetworking::plan(const RunOptions& o,
                                                 const ContainerStore& containers) {
  NetworkRequest r;
  const std::string& n = o.network;
  if (n.empty() && geteuid() != 0) {
    // Rootless: no bridge without privileges; user-mode networking when it can run here.
    std::string why = slirp_unavailable();
    r.mode = why.empty() ? "slirp4netns" : "none";
    if (!why.empty() && !o.publish.empty())
      return net_error("-p", "port publishing without privileges needs slirp4netns: " + why);
    if (!why.empty()) log::debug("network none: " + why);
  } else if (n == "slirp4netns") {
    if (std::string why = slirp_unavailable(); !why.empty())
      return net_error("--network slirp4netns", why);
    r.mode = n;
  } else if (n.empty() || n == "bridge" || n == "default") {
    r.mode = "bridge";
    r.networks = {net::kDefaultNetwork};
  } else if (n == "none" || n == "host") {
    r.mode = n;
  } else if (n.starts_with("container:")) {
    r.mode = "container";
    auto target = containers.find(n.substr(10));
    if (!target) return net_error("--network " + n, target.error().message());
    r.target = target->id;
  } else if (n.starts_with("ns:")) {
    r.mode = "ns";
    r.target = n.substr(3);
    if (r.target.empty() || r.target[0] != '/')
      return net_error("--network " + n, "ns: needs an absolute path to a network namespace");
    if (access(r.target.c_str(), F_OK) != 0) return sys_error("--network " + n, r.target);
  } else {
    r.mode = "bridge";
    auto s = FORKER_TRY(store());
    auto net = s.get(n);
    if (!net) return net_error("--network " + n, net.error().message());
    r.networks = {net->name};
  }

  if (!o.publish.empty()) {
    if (r.mode == "host") {
      log::warn("published ports are discarded when using host network mode");
      return r;
    }
    if (r.mode != "bridge" && r.mode != "slirp4netns")
      return net_error("-p", "port publishing needs a bridge or slirp4netns network, not "
                             "--network " + o.network);
  }
  if (o.publish.empty()) return r;  // no live endpoint to read on a plain start
  std::vector<net::PortMapping> taken;
  for (const Endpoint& e : endpoints())
    if (o.replicas <= 1 || e.group.empty() || e.group != o.name)
      taken.insert(taken.end(), e.ports.begin(), e.ports.end());
  for (const std::string& spec : o.publish) {
    for (net::PortMapping m : FORKER_TRY(net::parse_port_spec(spec))) {
      m = FORKER_TRY(net::resolve_host_port(std::move(m)));
      for (const auto& t : taken)
        if (same_host_port(m, t))
          return net_error("-p " + spec, "host port " + std::to_string(m.host_port) + "/" +
                                             m.protocol + " is already published by a container");
      for (const auto& t : r.ports)
        if (same_host_port(m, t))
          return net_error("-p " + spec, "host port " + std::to_string(m.host_port) + "/" +
                                             m.protocol + " is published twice");
      FORKER_TRY(net::check_host_port_free(m));
      r.ports.push_back(std::move(m));
    }
  }
  return r;
}

Result<std::string> ContainerNetworking::netns_path(const NetworkRequest& r,
                                                    const std::string& runtime_root) const {
  if (r.mode == "ns") return r.target;
  if (r.mode != "container") return std::string();
  auto st = oci::read_state(runtime_root, r.target);
  if (!st || st->pid <= 0 || kill(st->pid, 0) != 0)
    return net_error("--network container:" + r.target.substr(0, 12), "container is not running");
  return "/proc/" + std::to_string(st->pid) + "/ns/net";
}

Result<image::FileLock> ContainerNetworking::lock() const {
  FORKER_TRY(mkdir_all(state_root_, 0700));
  return image::detail::acquire_lock(state_root_ + "/.lock", true);
}

std::string ContainerNetworking::networks_dir(const net::NetworkConfig& n) const {
  return store_root_ + "/networks/" + n.id;
}

Status ContainerNetworking::reclaim_stale_bridge(net::Netlink& nl, const std::string& bridge) {
  const std::string registry = state_root_ + "/networks/" + bridge + ".json";
  if (!FORKER_TRY(nl.link_index(bridge))) {
    (void)unlink(registry.c_str());
    return ok();
  }
  // A bridge is stale when the store that made it no longer has its network (a store removed
  // without `network rm`), or when nothing on this boot recorded it.
  if (auto text = read_file(registry)) {
    json j = json::parse(*text, nullptr, false);
    if (!j.is_discarded() && path_exists(j.value("network_dir", "") + "/network.json"))
      return ok();
  }
  log::debug("removing stale bridge " + bridge);
  FORKER_TRY(nl.delete_link(bridge));
  (void)unlink(registry.c_str());
  return rebuild();
}

Status ContainerNetworking::bring_up(const net::NetworkConfig& n) {
  const std::string registry = state_root_ + "/networks/" + n.bridge + ".json";
  auto nl = FORKER_TRY(net::Netlink::open());
  FORKER_TRY(reclaim_stale_bridge(nl, n.bridge));
  if (auto text = read_file(registry); text && FORKER_TRY(nl.link_index(n.bridge))) {
    json j = json::parse(*text, nullptr, false);
    if (!j.is_discarded() && j.value("network_dir", "") != networks_dir(n))
      return net_error("network " + n.name, "bridge " + n.bridge +
                                                " is up for the network of another store, on " +
                                                j.value("subnet", "?"));
    return ok();
  }
  trace::Scope step("bridge " + n.bridge + " for network " + n.name + " (" + n.subnet.str() + ")");
  bool created = false;
  if (!FORKER_TRY(nl.link_index(n.bridge))) {
    FORKER_TRY(nl.create_bridge(n.bridge, n.mtu));
    created = true;
  }
  UndoStack undo;
  if (created) undo.push("delete bridge", [&] { (void)nl.delete_link(n.bridge); });
  auto add = [&](const net::IpAddress& a, int prefix) -> Status {
    auto r = nl.add_address(n.bridge, a, prefix);
    if (!r && r.error().message().find("File exists") == std::string::npos) return r;
    return ok();
  };
  FORKER_TRY(add(n.gateway, n.subnet.prefix));
  if (n.subnet6 && n.gateway6) FORKER_TRY(add(*n.gateway6, n.subnet6->prefix));
  FORKER_TRY(nl.set_up(n.bridge));
  // Ports published on 127.0.0.1 are DNATed to the bridge: the kernel drops such packets as
  // martians unless loopback sources may be routed out of it.
  FORKER_TRY(net::write_sysctl("net/ipv4/conf/" + n.bridge + "/route_localnet", "1"));
  if (!n.internal) {
    // Containers reach the outside through the host, as with docker and podman.
    FORKER_TRY(net::write_sysctl("net/ipv4/ip_forward", "1"));
    if (n.subnet6) FORKER_TRY(net::write_sysctl("net/ipv6/conf/all/forwarding", "1"));
  }
  json j = {{"name", n.name}, {"id", n.id}, {"network_dir", networks_dir(n)},
            {"bridge", n.bridge}, {"subnet", n.subnet.str()},
            {"subnet6", subnet_json(n.subnet6)}, {"internal", n.internal}};
  FORKER_TRY(mkdir_all(state_root_ + "/networks", 0700));
  FORKER_TRY(write_file_replace(registry, j.dump(), 0600, false));
  undo.commit();
  return ok();
}

// The container's namespace and netlink sockets on both sides of its veths.
struct ContainerNetworking::Link {
  UniqueFd netns;
  net::Netlink host, inner;

  static Result<Link> open(pid_t pid, int netns_fd = -1) {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    UniqueFd fd(netns_fd >= 0 ? fcntl(netns_fd, F_DUPFD_CLOEXEC, 3)
                              : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("open", path);
    auto host = FORKER_TRY(net::Netlink::open());
    auto inner = FORKER_TRY(net::Netlink::open_in(fd.get()));
    return Link{std::move(fd), std::move(host), std::move(inner)};
  }
};

Result<Attachment> ContainerNetworking::attach_one(net::NetworkStore& s, Link& link,
                                                   const std::string& id,
                                                   const std::string& network, int slot,
                                                   bool default_route, UndoStack& undo) {
  auto n = FORKER_TRY(network_for(s, network));
  {
    auto held = FORKER_TRY(lock());
    FORKER_TRY(bring_up(n));
  }
  auto lease = FORKER_TRY(s.lease(n, id, [&](const std::string& holder) {
    return path_exists(store_root_ + "/containers/" + holder + "/container.json");
  }));
  Attachment a;
  a.network = n.name;
  a.bridge = n.bridge;
  a.interface = "eth" + std::to_string(slot);
  a.subnet = n.subnet;
  a.subnet6 = n.subnet6;
  a.internal = n.internal;
  a.address = lease.address;
  a.address6 = lease.address6;
  a.gateway = n.gateway;
  a.mac = lease.mac;
  // fk<id><slot>: the host end, named after the container (IFNAMSIZ leaves 15 characters).
  a.host_veth = "fk" + id.substr(0, 11) + std::to_string(slot);
  trace::Scope veth_step("veth " + a.host_veth + " on " + n.bridge + " <-> " + a.interface + " " +
                         a.address.str() + "/" + std::to_string(n.subnet.prefix));
  // The peer is made inside the container's namespace, under its final name.
  FORKER_TRY(link.host.create_veth(a.host_veth, a.interface, link.netns.get(), n.mtu));
  undo.push("delete veth", [&link, v = a.host_veth] { (void)link.host.delete_link(v); });
  FORKER_TRY(link.host.set_master(a.host_veth, n.bridge));
  FORKER_TRY(link.host.set_hairpin(a.host_veth, true));
  FORKER_TRY(link.host.set_up(a.host_veth));
  if (!a.mac.empty()) FORKER_TRY(link.inner.set_mac(a.interface, FORKER_TRY(parse_mac(a.mac))));
  FORKER_TRY(link.inner.add_address(a.interface, a.address, n.subnet.prefix));
  if (a.address6 && n.subnet6)
    FORKER_TRY(link.inner.add_address(a.interface, *a.address6, n.subnet6->prefix));
  FORKER_TRY(link.inner.set_up(a.interface));
  if (default_route) {
    FORKER_TRY(link.inner.add_default_route(n.gateway));
    if (a.address6 && n.gateway6) FORKER_TRY(link.inner.add_default_route(*n.gateway6));
  }
  return a;
}

Status ContainerNetworking::save_endpoint(const Endpoint& ep, UndoStack& undo) {
  auto held = FORKER_TRY(lock());
  FORKER_TRY(mkdir_all(state_root_ + "/endpoints", 0700));
  const std::string file = state_root_ + "/endpoints/" + ep.container_id + ".json";
  std::optional<std::string> before;
  if (auto text = read_file(file)) before = std::move(*text);
  FORKER_TRY(write_file_replace(file, ep.to_json().dump(), 0600, false));
  undo.push("restore endpoint", [file, before] {
    if (before)
      (void)write_file_replace(file, *before, 0600, false);
    else
      (void)unlink(file.c_str());
  });
  return rebuild();
}

Status ContainerNetworking::attach(const ContainerRecord& rec, const NetworkRequest& r,
                                   const std::string& hostname, const std::string& container_dir,
                                   pid_t pid, int netns_fd, int userns_fd) {
  if (r.mode == "slirp4netns")
    return attach_slirp(rec, r, hostname, container_dir, pid, netns_fd, userns_fd);
  if (r.mode != "bridge") return ok();
  trace::Scope step("network: " + join(r.networks, ", "));
  auto s = FORKER_TRY(store());
  auto link = FORKER_TRY(Link::open(pid, netns_fd));
  Endpoint ep = new_endpoint(rec, r, hostname, container_dir);
  UndoStack undo;
  for (size_t i = 0; i < r.networks.size(); ++i)
    ep.attachments.push_back(FORKER_TRY(
        attach_one(s, link, rec.id, r.networks[i], static_cast<int>(i), i == 0, undo)));
  FORKER_TRY(save_endpoint(ep, undo));
  undo.commit();
  return ok();
}

Status ContainerNetworking::connect(const ContainerRecord& rec, const std::string& network,
                                    pid_t pid) {
  auto ep = endpoint(rec.id);
  if (!ep) return net_error("network connect " + network, rec.name + " has no bridge endpoint");
  for (const Attachment& a : ep->attachments)
    if (a.network == network)
      return net_error("network connect " + network, rec.name + " is connected already");
  // The lowest interface number free (a disconnect leaves a gap), below 10: fk<id><digit>.
  int slot = 0;
  auto taken = [&](int n) {
    return std::any_of(ep->attachments.begin(), ep->attachments.end(),
                       [&](const Attachment& a) { return a.interface == "eth" + std::to_string(n); });
  };
  while (taken(slot)) ++slot;
  if (slot > 9) return net_error("network connect " + network, "at most 10 networks per container");
  auto s = FORKER_TRY(store());
  auto link = FORKER_TRY(Link::open(pid));
  UndoStack undo;
  ep->attachments.push_back(FORKER_TRY(
      attach_one(s, link, rec.id, network, slot, ep->attachments.empty(), undo)));
  FORKER_TRY(save_endpoint(*ep, undo));
  undo.commit();
  return ok();
}

Status ContainerNetworking::disconnect(const ContainerRecord& rec, const std::string& network) {
  auto s = FORKER_TRY(store());
  auto n = FORKER_TRY(s.get(network));
  if (auto ep = endpoint(rec.id)) {
    auto it = std::find_if(ep->attachments.begin(), ep->attachments.end(),
                           [&](const Attachment& a) { return a.network == n.name; });
    if (it != ep->attachments.end()) {
      // Deleting the host end takes the container's end with it.
      auto nl = FORKER_TRY(net::Netlink::open());
      FORKER_TRY(nl.delete_link(it->host_veth));
      ep->attachments.erase(it);
      UndoStack none;
      FORKER_TRY(save_endpoint(*ep, none));
      none.commit();
    }
  }
  return s.release(n, rec.id);
}

Status ContainerNetworking::attach_slirp(const ContainerRecord& rec, const NetworkRequest& r,
                                         const std::string& hostname,
                                         const std::string& container_dir, pid_t pid,
                                         int netns_fd, int userns_fd) {
  trace::Scope step(std::string("network: slirp4netns, ") + net::kSlirpInterface + " " +
                    net::kSlirpGuestAddress + "/24");
  const std::string program = net::find_slirp4netns();
  if (program.empty()) return net_error("--network slirp4netns", slirp_unavailable());
  const std::string dir = state_root_ + "/slirp";
  FORKER_TRY(mkdir_all(dir, 0700));
  // 12 characters of the id: a socket path has room for 107 bytes, XDG_RUNTIME_DIR included.
  const std::string sock = dir + "/" + rec.id.substr(0, 12) + ".sock";
  const std::string log_path = dir + "/" + rec.id.substr(0, 12) + ".log";
  (void)unlink(sock.c_str());  // left by a slirp4netns killed with its waiter
  (void)unlink(log_path.c_str());
  UndoStack undo;
  undo.push("remove slirp4netns files", [sock, log_path] {
    (void)unlink(sock.c_str());
    (void)unlink(log_path.c_str());
  });
  net::SlirpOptions so;
  so.pid = pid;
  so.netns_fd = netns_fd;
  so.userns_fd = userns_fd;
  // Its sandbox makes the parent process join the container's user namespace and take gid 0
  // there, which fails when it is given the namespaces by path (slirp4netns 1.2: "setegid(0)").
  if (userns_fd >= 0) so.sandbox = false;
  so.api_socket = sock;
  auto slirp = FORKER_TRY(net::Slirp4netns::start(program, so, log_path));
  for (const net::PortMapping& m : r.ports) {
    trace::Scope port_step("slirp4netns add_hostfwd " + m.str());
    FORKER_TRY(net::slirp_add_hostfwd(sock, m));
  }

  Endpoint ep = new_endpoint(rec, r, hostname, container_dir);
  ep.slirp_pid = slirp.pid();
  ep.api_socket = sock;
  // No rebuild(): the container has no address peers could reach, and no nftables rule.
  auto held = FORKER_TRY(lock());
  FORKER_TRY(mkdir_all(state_root_ + "/endpoints", 0700));
  const std::string file = state_root_ + "/endpoints/" + rec.id + ".json";
  FORKER_TRY(write_file_replace(file, ep.to_json().dump(), 0600, false));
  auto& own = own_slirps()[rec.id];
  own.first = slirp.release(own.second);
  undo.commit();
  return ok();
}

void ContainerNetworking::detach(const std::string& container_id) {
  // Ours: closing its exit fd ends it, and it is reaped here.
  bool ours = false;
  if (auto it = own_slirps().find(container_id); it != own_slirps().end()) {
    net::stop_slirp4netns(it->second.first, std::move(it->second.second));
    own_slirps().erase(it);
    ours = true;
  }
  auto ep = endpoint(container_id);
  if (!ep) return;
  if (ep->slirp_pid > 0) {
    if (!ours) net::stop_slirp4netns(ep->slirp_pid);  // another process's: by pid, checked
    (void)unlink(ep->api_socket.c_str());
    if (ep->api_socket.ends_with(".sock"))
      (void)unlink((ep->api_socket.substr(0, ep->api_socket.size() - 5) + ".log").c_str());
  }
  if (auto nl = net::Netlink::open())
    for (const Attachment& a : ep->attachments)
      if (auto d = nl->delete_link(a.host_veth); !d) log::warn(d.error().message());
  auto held = lock();
  (void)unlink((state_root_ + "/endpoints/" + container_id + ".json").c_str());
  if (auto r = rebuild(); !r) log::warn(r.error().message());
}

void ContainerNetworking::release(const ContainerRecord& rec) {
  auto req = NetworkRequest::from_json(rec.network);
  if (!req || req->mode != "bridge") return;
  auto s = store();
  if (!s) return;
  for (const std::string& name : req->networks)
    if (auto n = s->get(name))
      if (auto r = s->release(*n, rec.id); !r) log::warn(r.error().message());
}

std::vector<Endpoint> ContainerNetworking::endpoints() const {
  std::vector<Endpoint> out;
  for (const std::string& path : json_files(state_root_ + "/endpoints")) {
    auto text = read_file(path);
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) continue;
    if (auto e = Endpoint::from_json(j)) out.push_back(std::move(*e));
  }
  return out;
}

std::optional<Endpoint> ContainerNetworking::endpoint(const std::string& container_id) const {
  auto text = read_file(state_root_ + "/endpoints/" + container_id + ".json");
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  auto e = Endpoint::from_json(j);
  if (!e) return std::nullopt;
  return std::move(*e);
}

Status ContainerNetworking::rebuild() {
  trace::Scope step("hosts files and nftables rules from " + state_root_);
  std::vector<Endpoint> all = endpoints();
  for (const Endpoint& e : all) {
    // In place: the file is bound into the container, and a rename would leave it the old one.
    UniqueFd fd(open(e.hosts_file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) continue;  // its container is being removed
    std::string text = render_hosts(e, all);
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      log::warn("write " + e.hosts_file + ": short write");
  }

  net::NftState state;
  for (const std::string& path : json_files(state_root_ + "/networks")) {
    auto text = read_file(path);
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) continue;
    auto subnet = net::Subnet::parse(j.value("subnet", ""));
    if (!subnet) continue;
    net::NftNetwork n;
    n.bridge = j.value("bridge", "");
    n.subnet = *subnet;
    if (auto s6 = optional_subnet(j, "subnet6")) n.subnet6 = *s6;
    n.internal = j.value("internal", false);
    state.networks.push_back(std::move(n));
  }
  // One rule per published host port; replicas publishing the same port share it.
  std::map<std::string, size_t> by_port;
  for (const Endpoint& e : all) {
    if (e.attachments.empty()) continue;
    const Attachment& a = e.attachments.front();
    for (const auto& p : e.ports) {
      std::string key = p.host_ip + "|" + std::to_string(p.host_port) + "|" + p.protocol;
      auto it = by_port.find(key);
      if (it == by_port.end()) {
        net::NftPublish pub;
        pub.host_ip = p.host_ip;
        pub.host_port = p.host_port;
        pub.container_port = p.container_port;
        pub.protocol = p.protocol;
        pub.bridge = a.bridge;
        by_port[key] = state.publishes.size();
        state.publishes.push_back(std::move(pub));
        it = by_port.find(key);
      }
      state.publishes[it->second].backends.push_back(a.address);
    }
  }
  const std::string cache = state_root_ + "/ruleset.nft";
  if (state.networks.empty() && state.publishes.empty()) {
    if (!path_exists(cache)) return ok();
    FORKER_TRY(net::delete_forker_table());
    (void)unlink(cache.c_str());
    return ok();
  }
  FORKER_TRY(net::validate_nft_state(state));
  std::string script = net::render_ruleset(state);
  if (auto old = read_file(cache); old && *old == script) return ok();
  trace::Scope apply_step("nftables: table inet forker (" + std::to_string(state.networks.size()) +
                          " networks, " + std::to_string(state.publishes.size()) +
                          " published ports)");
  FORKER_TRY(net::apply_nft_script(script));
  FORKER_TRY(write_file_replace(cache, script, 0600, false));
  return ok();
}

// ---- networks ----

Result<net::NetworkConfig> ContainerNetworking::create_network(const net::NetworkCreateOptions& o) {
  auto s = FORKER_TRY(store());
  auto routes = FORKER_TRY(net::host_routes());
  return s.create(o, routes);
}

Result<std::vector<net::NetworkConfig>> ContainerNetworking::list_networks() {
  auto s = FORKER_TRY(store());
  return s.list();
}

Result<net::NetworkConfig> ContainerNetworking::get_network(const std::string& name) {
  auto s = FORKER_TRY(store());
  return s.get(name);
}

Status ContainerNetworking::remove_network(const std::string& name,
                                          const ContainerStore& containers) {
  auto s = FORKER_TRY(store());
  auto n = FORKER_TRY(s.get(name));
  auto held = FORKER_TRY(lock());
  // The bridge is this network's only when the live state says so: another store may have a
  // network of the same name (forker0) whose bridge is up.
  const std::string registry = state_root_ + "/networks/" + n.bridge + ".json";
  bool ours = false;
  if (auto text = read_file(registry)) {
    json j = json::parse(*text, nullptr, false);
    ours = !j.is_discarded() && j.value("network_dir", "") == networks_dir(n);
  }
  if (ours)
    for (const Endpoint& e : endpoints())
      for (const Attachment& a : e.attachments)
        if (a.bridge == n.bridge)
          return net_error("network rm " + name, "in use by running container " + e.name);
  FORKER_TRY(s.remove(n.name, [&](const std::string& id) { return !!containers.find(id); }));
  if (!ours) return ok();
  auto nl = FORKER_TRY(net::Netlink::open());
  FORKER_TRY(nl.delete_link(n.bridge));
  (void)unlink(registry.c_str());
  return rebuild();
}

}  // namespace forker::engine
