#include "net/port_spec.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>

#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/address.hpp"

namespace forker::net {
namespace {

using json = nlohmann::json;

constexpr const char* kSyntax = "expected [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]";

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  size_t size() const { return static_cast<size_t>(last - first) + 1; }
};

std::optional<uint16_t> parse_port(std::string_view s, bool allow_zero) {
  auto v = parse_uint(s);
  if (!v || *v > 65535 || (*v == 0 && !allow_zero)) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

// "80" or "80-82". Zero only as a lone host port ("0:80", docker's spelling of "pick one").
std::optional<PortRange> parse_range(std::string_view s, bool allow_zero) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    auto p = parse_port(s, allow_zero);
    if (!p) return std::nullopt;
    return PortRange{*p, *p};
  }
  auto first = parse_port(s.substr(0, dash), false);
  auto last = parse_port(s.substr(dash + 1), false);
  if (!first || !last || *first > *last) return std::nullopt;
  return PortRange{*first, *last};
}

std::string shown_ip(const std::string& host_ip) { return host_ip.empty() ? "0.0.0.0" : host_ip; }

std::string host_ports(const PortMapping& m) {
  std::string s = std::to_string(m.host_port);
  if (m.host_port_end != 0) s += "-" + std::to_string(m.host_port_end);
  return s;
}

// The host address part of a spec: "" (all addresses) or an IPv4 literal, "0.0.0.0" folded to "".
Result<std::string> parse_host_ip(std::string_view text, bool bracketed) {
  if (text.empty()) {
    if (bracketed) return make_error("empty host address in brackets");
    return std::string();
  }
  auto ip = IpAddress::parse(text);
  if (!ip) return make_error("invalid host address " + std::string(text));
  if (!ip->is_v4())
    return make_error("IPv6 host address " + std::string(text) +
                      " is not supported (ports are published on IPv4 addresses)");
  if (bracketed) return make_error("brackets are for IPv6 addresses: " + std::string(text));
  std::string s = ip->str();
  return s == "0.0.0.0" ? std::string() : s;
}

// Splits "[IP]:HOST:CONTAINER" / "IP:HOST:CONTAINER" / "HOST:CONTAINER" / "CONTAINER" (the
// protocol already removed) into ip, host ports and container ports.
struct SpecParts {
  std::string host_ip;
  std::string host;  // may be empty
  std::string container;
};

Result<SpecParts> split_spec(std::string_view rest) {
  SpecParts parts;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return make_error("missing ']' after the host address");
    parts.host_ip = FORKER_TRY(parse_host_ip(rest.substr(1, close - 1), true));
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return make_error(kSyntax);
    auto fields = split(rest.substr(1), ':');
    if (fields.size() != 2) return make_error(kSyntax);
    parts.host = fields[0];
    parts.container = fields[1];
    return parts;
  }
  auto fields = split(rest, ':');
  switch (fields.size()) {
    case 1:
      parts.container = fields[0];
      break;
    case 2:
      parts.host = fields[0];
      parts.container = fields[1];
      break;
    case 3:
      parts.host_ip = FORKER_TRY(parse_host_ip(fields[0], false));
      parts.host = fields[1];
      parts.container = fields[2];
      break;
    default:
      return make_error(std::string(kSyntax) + " (IPv6 host addresses are not supported)");
  }
  return parts;
}

Result<std::vector<PortMapping>> parse_spec(std::string_view spec) {
  PortMapping base;
  std::string_view rest = spec;
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    base.protocol = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (base.protocol != "tcp" && base.protocol != "udp")
      return make_error("protocol " + (base.protocol.empty() ? "\"\"" : base.protocol) +
                        " is not supported (tcp or udp)");
  }
  SpecParts parts = FORKER_TRY(split_spec(rest));
  base.host_ip = parts.host_ip;
  if (parts.container.empty()) return make_error("missing container port");
  auto container = parse_range(parts.container, false);
  if (!container) return make_error("invalid container port " + parts.container);

  std::vector<PortMapping> out;
  auto add = [&](uint16_t host, uint16_t host_end, uint16_t cport) {
    PortMapping m = base;
    m.host_port = host;
    m.host_port_end = host_end;
    m.container_port = cport;
    out.push_back(std::move(m));
  };
  if (parts.host.empty()) {
    for (uint32_t p = container->first; p <= container->last; ++p)
      add(0, 0, static_cast<uint16_t>(p));
    return out;
  }
  auto host = parse_range(parts.host, true);
  if (!host) return make_error("invalid host port " + parts.host);
  if (container->size() == 1) {
    // A host range for one container port: any free port of the range, chosen at run time.
    add(host->first, host->size() > 1 ? host->last : 0, container->first);
    return out;
  }
  if (host->size() != container->size())
    return make_error("host port range " + parts.host + " and container port range " +
                      parts.container + " differ in length");
  for (size_t i = 0; i < container->size(); ++i)
    add(static_cast<uint16_t>(host->first + i), 0, static_cast<uint16_t>(container->first + i));
  return out;
}

// Binds a socket of M's protocol to M's host address and PORT and returns the port it got (the
// kernel's choice for 0). The socket is closed on return.
Result<uint16_t> bind_port(const PortMapping& m, uint16_t port, bool reuse) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (!m.host_ip.empty() && inet_pton(AF_INET, m.host_ip.c_str(), &sa.sin_addr) != 1)
    return make_error("invalid host address " + m.host_ip);
  bool tcp = m.protocol != "udp";
  UniqueFd fd(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  int one = 1;
  if (reuse && tcp && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return sys_error("setsockopt SO_REUSEADDR");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return sys_error("bind");
  socklen_t len = sizeof sa;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    return sys_error("getsockname");
  return static_cast<uint16_t>(ntohs(sa.sin_port));
}

// Tries each port of M's host range; the first that binds, or the last error.
Result<uint16_t> first_free_in_range(const PortMapping& m) {
  int last_err = 0;
  for (uint32_t p = m.host_port; p <= m.host_port_end; ++p) {
    auto got = bind_port(m, static_cast<uint16_t>(p), true);
    if (got) return *got;
    last_err = got.error().err;
  }
  return sys_error_errno(last_err, "-p " + m.spec() + ": no free host port in " + host_ports(m) +
                                       "/" + m.protocol + " on " + shown_ip(m.host_ip));
}

}  // namespace

json PortMapping::to_json() const {
  json j{{"host_ip", host_ip},
         {"host_port", host_port},
         {"container_port", container_port},
         {"protocol", protocol}};
  if (host_port_end != 0) j["host_port_end"] = host_port_end;
  return j;
}

Result<PortMapping> PortMapping::from_json(const json& j) {
  auto bad = [](const std::string& what) { return make_error("port mapping: " + what); };
  if (!j.is_object()) return bad("expected a JSON object");
  PortMapping m;
  auto port = [&](const char* key, uint16_t& out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
      return required ? bad(std::string(key) + ": missing") : ok();
    // Integers read back signed or unsigned; huge unsigned ones turn negative here.
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 65535)
      return bad(std::string(key) + ": expected a port number");
    out = static_cast<uint16_t>(it->get<int64_t>());
    return ok();
  };
  FORKER_TRY(port("host_port", m.host_port, false));
  FORKER_TRY(port("host_port_end", m.host_port_end, false));
  FORKER_TRY(port("container_port", m.container_port, true));
  for (auto [key, out] : {std::pair{"host_ip", &m.host_ip}, std::pair{"protocol", &m.protocol}}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return bad(std::string(key) + ": expected a string");
    *out = it->get<std::string>();
  }
  if (m.container_port == 0) return bad("container_port: must be 1-65535");
  if (m.protocol != "tcp" && m.protocol != "udp") return bad("protocol must be tcp or udp");
  if (m.host_port_end != 0 && m.host_port_end < m.host_port)
    return bad("host_port_end is below host_port");
  if (!m.host_ip.empty()) {
    auto ip = IpAddress::parse(m.host_ip);
    if (!ip || !ip->is_v4()) return bad("host_ip: not an IPv4 address: " + m.host_ip);
  }
  return m;
}

std::string PortMapping::str() const {
  return shown_ip(host_ip) + ":" + host_ports(*this) + "->" + std::to_string(container_port) + "/" +
         protocol;
}

std::string PortMapping::spec() const {
  std::string s;
  if (!host_ip.empty()) s = host_ip + ":";
  if (host_port != 0)
    s += host_ports(*this) + ":";
  else if (!host_ip.empty())
    s += ":";
  s += std::to_string(container_port);
  if (protocol != "tcp") s += "/" + protocol;
  return s;
}

Result<std::vector<PortMapping>> parse_port_spec(std::string_view spec) {
  auto out = parse_spec(spec);
  if (!out) {
    Error e = std::move(out).error();
    e.op = "-p " + std::string(spec) + ": " + e.op;
    return e;
  }
  return out;
}

Status check_host_port_free(const PortMapping& m) {
  if (m.host_port == 0 && m.host_port_end == 0) return ok();
  if (m.host_port_end != 0) {
    FORKER_TRY(first_free_in_range(m));
    return ok();
  }
  auto got = bind_port(m, m.host_port, true);
  if (!got) {
    if (got.error().err == 0) return std::move(got).error();
    return sys_error_errno(got.error().err, "-p " + m.spec() + ": host port " +
                                                std::to_string(m.host_port) + "/" + m.protocol +
                                                " on " + shown_ip(m.host_ip));
  }
  return ok();
}

Result<PortMapping> resolve_host_port(PortMapping m) {
  if (m.host_port_end != 0) {
    m.host_port = FORKER_TRY(first_free_in_range(m));
    m.host_port_end = 0;
  } else if (m.host_port == 0) {
    // Without SO_REUSEADDR the kernel's choice is free of every other socket, TIME_WAIT too.
    auto got = bind_port(m, 0, false);
    if (!got)
      return sys_error_errno(got.error().err, "-p " + m.spec() + ": pick a free host port for " +
                                                  std::to_string(m.container_port) + "/" +
                                                  m.protocol + " on " + shown_ip(m.host_ip));
    m.host_port = *got;
  }
  return m;
}

}  // namespace forker::net
