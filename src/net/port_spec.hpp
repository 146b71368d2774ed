// Published ports: docker's `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]` syntax, and the checks
// that a host port is free (or the choice of one) before the container starts.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::net {

struct PortMapping {
  std::string host_ip;         // "" = all IPv4 addresses; else an IPv4 literal ("127.0.0.1")
  uint16_t host_port = 0;      // 0 = pick a free one at run time
  uint16_t host_port_end = 0;  // nonzero: any free port in host_port..host_port_end
  uint16_t container_port = 0;
  std::string protocol = "tcp";  // "tcp" | "udp"

  nlohmann::json to_json() const;
  static Result<PortMapping> from_json(const nlohmann::json& j);
  // docker ps style: "0.0.0.0:8080->80/tcp", "127.0.0.1:8000-8010->80/udp".
  std::string str() const;
  // The -p argument that gives this one mapping ("127.0.0.1::80/udp"), for error messages.
  std::string spec() const;
  bool operator==(const PortMapping&) const = default;
};

// "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "8080:80/udp", "8000-8002:80-82" (one
// mapping per port), "80-82" (host ports picked at run time), "8000-8010:80" (one mapping with a
// host port range). IPv6 host addresses ("[::1]:8080:80") are refused. Errors name the spec:
// "-p 80:abc: invalid container port abc".
Result<std::vector<PortMapping>> parse_port_spec(std::string_view spec);

// Whether the host port is free right now: binds a socket of the protocol to host_ip:host_port
// (SO_REUSEADDR for tcp, as docker-proxy binds) and closes it. For a range, one free port in it
// suffices; host port 0 is always ok.
// "-p 8080:80: host port 8080/tcp on 0.0.0.0: Address already in use".
Status check_host_port_free(const PortMapping& m);

// Fills host_port when it is 0 (a port the kernel picks for port 0) or a range (the first port of
// it that binds), clearing host_port_end; a fixed port is returned unchanged. The socket is closed
// again, so another program may take the port before the caller binds it: callers check again.
Result<PortMapping> resolve_host_port(PortMapping m);

}  // namespace forker::net
