#include "net/nft_ruleset.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "core/strings.hpp"

namespace forker::net {

namespace {

// Names go into the script between double quotes; nft strings cannot escape a quote, so only
// characters that need no escaping are allowed (docker's and forker's bridge names fit).
bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() > 15) return false;  // IFNAMSIZ - 1
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

// How a publish picks its packets for one address family.
struct HostMatch {
  int family;         // AF_INET or AF_INET6
  std::string match;  // "meta nfproto ipv4 fib daddr type local", "ip daddr 127.0.0.1"
};

// The matches for HOST_IP; nullopt when it is not an address.
std::optional<std::vector<HostMatch>> host_matches(const std::string& host_ip) {
  const std::string any4 = "meta nfproto ipv4 fib daddr type local";
  const std::string any6 = "meta nfproto ipv6 fib daddr type local";
  if (host_ip.empty()) return std::vector<HostMatch>{{AF_INET, any4}, {AF_INET6, any6}};
  auto addr = IpAddress::parse(host_ip);
  if (!addr) return std::nullopt;
  IpAddress unspecified{addr->family, {}};
  if (*addr == unspecified)
    return std::vector<HostMatch>{{addr->family, addr->is_v4() ? any4 : any6}};
  // str() is the canonical form: nothing from the caller reaches the script unparsed.
  return std::vector<HostMatch>{
      {addr->family, std::string(addr->is_v4() ? "ip daddr " : "ip6 daddr ") + addr->str()}};
}

// P's backends of FAMILY, sorted and without repeats, so equal states render equal text.
std::vector<IpAddress> backends_of(const NftPublish& p, int family) {
  std::set<IpAddress> unique;
  for (const auto& b : p.backends)
    if (b.family == family) unique.insert(b);
  return {unique.begin(), unique.end()};
}

Status check_network(const NftNetwork& n) {
  std::string what = "nftables: network " + n.bridge + ":";
  if (!valid_ifname(n.bridge))
    return make_error(what, "bridge name \"" + n.bridge + "\": want 1-15 of A-Z a-z 0-9 _ . -");
  if (!n.subnet.base.is_v4()) return make_error(what, "subnet " + n.subnet.str() + ": not IPv4");
  if (n.subnet6 && n.subnet6->base.family != AF_INET6)
    return make_error(what, "subnet6 " + n.subnet6->str() + ": not IPv6");
  return ok();
}

Status check_publish(const NftPublish& p) {
  std::string what = "nftables: publish " + (p.host_ip.empty() ? std::string() : p.host_ip + ":") +
                     std::to_string(p.host_port) + "/" + p.protocol + ":";
  if (p.protocol != "tcp" && p.protocol != "udp")
    return make_error(what, "protocol " + p.protocol + ": not tcp or udp");
  if (p.host_port == 0 || p.container_port == 0) return make_error(what, "port 0");
  if (!valid_ifname(p.bridge))
    return make_error(what, "bridge name \"" + p.bridge + "\": want 1-15 of A-Z a-z 0-9 _ . -");
  auto matches = host_matches(p.host_ip);
  if (!matches) return make_error(what, "host address " + p.host_ip + ": not an IP address");
  for (const auto& m : *matches)
    if (!backends_of(p, m.family).empty()) return ok();
  return make_error(what, "no backend address of the host address's family");
}

// The DNAT target: "10.88.0.2:80", "[fd00::2]:80", or round robin over several backends.
std::string dnat_target(const std::vector<IpAddress>& backends, uint16_t port) {
  std::string port_text = std::to_string(port);
  if (backends.size() == 1) {
    const auto& b = backends.front();
    return (b.is_v4() ? b.str() : "[" + b.str() + "]") + ":" + port_text;
  }
  // NAT rules see only a connection's first packet, so numgen spreads connections, not packets.
  std::string out = "numgen inc mod " + std::to_string(backends.size()) + " map { ";
  for (size_t i = 0; i < backends.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(i) + " : " + backends[i].str();
  }
  return out + " } : " + port_text;
}

// The DNAT rules of one publish, one per address family it has backends for.
std::vector<std::string> dnat_rules(const NftPublish& p) {
  std::vector<std::string> rules;
  auto matches = host_matches(p.host_ip);
  if (!matches) return rules;
  for (const auto& m : *matches) {
    auto backends = backends_of(p, m.family);
    if (backends.empty()) continue;
    rules.push_back(m.match + " " + p.protocol + " dport " + std::to_string(p.host_port) +
                    " dnat " + (m.family == AF_INET ? "ip" : "ip6") + " to " +
                    dnat_target(backends, p.container_port));
  }
  return rules;
}

struct NetworkRules {
  std::vector<std::string> postrouting;
  std::vector<std::string> forward_drop;  // first in the chain
  std::vector<std::string> forward_accept;
};

void add_network_rules(const NftNetwork& n, NetworkRules& out) {
  std::string br = quoted(n.bridge);
  if (n.internal) {
    // Drops come first: an accept for another bridge must not let this one's traffic out.
    out.forward_drop.push_back("iifname " + br + " oifname != " + br + " drop");
    out.forward_drop.push_back("oifname " + br + " iifname != " + br + " drop");
    return;
  }
  out.postrouting.push_back("ip saddr " + n.subnet.str() + " oifname != " + br + " masquerade");
  if (n.subnet6)
    out.postrouting.push_back("ip6 saddr " + n.subnet6->str() + " oifname != " + br +
                              " masquerade");
  // Hairpin: a container reaching a published port through a host address, DNATed back onto
  // its own bridge; without the masquerade the backend would answer it directly. Matched by
  // source, not iifname: with br_netfilter the bridged packet reaches postrouting with no
  // input device.
  out.postrouting.push_back("ip saddr " + n.subnet.str() + " oifname " + br +
                            " ct status dnat masquerade");
  out.forward_accept.push_back("iifname " + br + " accept");
  out.forward_accept.push_back("oifname " + br + " ct state established,related accept");
  out.forward_accept.push_back("oifname " + br + " ct status dnat accept");
}

void add_chain(std::string& out, std::string_view name, std::string_view hook,
               const std::vector<std::string>& rules) {
  out += "  chain ";
  out += name;
  out += " {\n    ";
  out += hook;
  out += "\n";
  for (const auto& r : rules) out += "    " + r + "\n";
  out += "  }\n";
}

}  // namespace

Status validate_nft_state(const NftState& s) {
  std::set<std::string> bridges;
  for (const auto& n : s.networks) {
    FORKER_TRY(check_network(n));
    if (!bridges.insert(n.bridge).second)
      return make_error("nftables: network " + n.bridge + ":", "bridge listed twice");
  }
  for (const auto& p : s.publishes) FORKER_TRY(check_publish(p));
  return ok();
}

std::string render_ruleset(const NftState& s, std::string_view table) {
  std::vector<const NftNetwork*> networks;
  for (const auto& n : s.networks)
    if (check_network(n)) networks.push_back(&n);
  std::sort(networks.begin(), networks.end(), [](const NftNetwork* a, const NftNetwork* b) {
    return std::tuple(a->bridge, a->subnet.str()) < std::tuple(b->bridge, b->subnet.str());
  });

  std::vector<NftPublish> publishes;
  for (const auto& p : s.publishes)
    if (check_publish(p)) publishes.push_back(p);
  for (auto& p : publishes) {  // sorted backends, so the sort below sees equal publishes equal
    auto v4 = backends_of(p, AF_INET), v6 = backends_of(p, AF_INET6);
    v4.insert(v4.end(), v6.begin(), v6.end());
    p.backends = std::move(v4);
  }
  auto key = [](const NftPublish& p) {
    return std::tie(p.protocol, p.host_port, p.host_ip, p.container_port, p.bridge, p.backends);
  };
  std::sort(publishes.begin(), publishes.end(),
            [&](const NftPublish& a, const NftPublish& b) { return key(a) < key(b); });

  std::vector<std::string> dnat;
  std::set<std::string> published_bridges;
  for (const auto& p : publishes) {
    for (auto& r : dnat_rules(p)) dnat.push_back(std::move(r));
    published_bridges.insert(p.bridge);
  }

  NetworkRules rules;
  for (const NftNetwork* n : networks) add_network_rules(*n, rules);
  // Ports published on 127.0.0.1 keep their loopback source after DNAT in output; the backend
  // could not answer it (and the caller's route_localnet=1 only lets it leave), so rewrite it.
  for (const auto& br : published_bridges)
    rules.postrouting.push_back("ip saddr 127.0.0.0/8 oifname " + quoted(br) + " masquerade");

  std::vector<std::string> forward = rules.forward_drop;
  forward.insert(forward.end(), rules.forward_accept.begin(), rules.forward_accept.end());

  std::string out = render_delete_table(table) + "table inet " + std::string(table) + " {\n";
  add_chain(out, "prerouting", "type nat hook prerouting priority dstnat; policy accept;", dnat);
  // Locally generated connections (to 127.0.0.1 or a host address) skip prerouting.
  add_chain(out, "output", "type nat hook output priority -100; policy accept;", dnat);
  add_chain(out, "postrouting", "type nat hook postrouting priority srcnat; policy accept;",
            rules.postrouting);
  add_chain(out, "forward", "type filter hook forward priority filter; policy accept;", forward);
  out += "}\n";
  return out;
}

std::string render_delete_table(std::string_view table) {
  std::string t(table);
  return "table inet " + t + " {}\ndelete table inet " + t + "\n";
}

std::string summarize_nft_error(std::string_view error_buffer) {
  std::vector<std::string> lines = split(error_buffer, '\n');
  std::vector<std::string> errors;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto pos = lines[i].find("Error: ");
    if (pos == std::string::npos) continue;
    std::string e = lines[i].substr(pos);
    // The next line echoes the script line the error points at, but only input with a name
    // ("file:3:8-13: Error: ...") gets the right one: for a buffer, libnftables 1.0.6 always
    // echoes the buffer's first line (erec_print, INDESC_BUFFER), which would mislead.
    if (pos > 0 && i + 1 < lines.size() && lines[i + 1].find("Error: ") == std::string::npos) {
      std::string_view src = trim(lines[i + 1]);
      if (!src.empty() && src.find_first_not_of("^~ ") != std::string_view::npos)
        e += " (in: " + std::string(src) + ")";
    }
    errors.push_back(std::move(e));
  }
  if (errors.empty()) {
    for (const auto& l : lines)
      if (!trim(l).empty()) return std::string(trim(l));
    return "failed without a message";
  }
  if (errors.size() > 2) {
    size_t more = errors.size() - 2;
    errors.resize(2);
    errors.push_back("and " + std::to_string(more) + " more");
  }
  return join(errors, "; ");
}

}  // namespace forker::net
