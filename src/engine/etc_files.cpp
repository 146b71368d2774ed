// /etc/hostname, /etc/hosts and /etc/resolv.conf of a container, as docker (libnetwork) writes
// them for a container with no address of its own.
#include "core/strings.hpp"
#include "engine/container_config.hpp"

namespace forker::engine {
namespace {

bool loopback_nameserver(std::string_view line) {
  std::string_view rest = trim(line);
  if (!starts_with(rest, "nameserver")) return false;
  rest = trim(rest.substr(10));
  const std::string_view addr = rest.substr(0, rest.find_first_of(" \t#"));
  return starts_with(addr, "127.") || addr == "::1";
}

// libnetwork's FilterResolvDNS: loopback nameservers cannot be reached from a container's own
// network namespace; with none left, Google's public ones.
std::string container_resolv_conf(const std::string& host_text, bool host_network) {
  // --network host: the host's resolver, 127.0.0.53 and all, is reachable as is.
  if (host_network && !host_text.empty()) return host_text;
  std::string out;
  bool nameserver = false;
  for (const std::string& line : split(host_text, '\n')) {
    if (loopback_nameserver(line)) continue;
    if (starts_with(trim(line), "nameserver")) nameserver = true;
    if (!line.empty()) out += line + "\n";
  }
  if (!nameserver) out += "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
  return out;
}

}  // namespace

std::string localhost_hosts() {
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

ContainerFiles make_container_files(const std::string& hostname, bool host_network,
                                    const std::string& host_resolv_conf) {
  ContainerFiles f;
  f.hostname = hostname + "\n";
  // docker's /etc/hosts for a container without a network address: no line for the hostname.
  f.hosts = localhost_hosts();
  f.resolv_conf = container_resolv_conf(host_resolv_conf, host_network);
  return f;
}

}  // namespace forker::engine
