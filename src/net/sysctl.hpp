// Kernel knobs under /proc/sys that networking turns (ip_forward, route_localnet, ...). They
// belong to the network namespace of the calling thread: /proc/sys/net looks at the thread's
// namespace when a file is opened.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace forker::net {

// KEY is a path below /proc/sys with slashes, "net/ipv4/ip_forward" or
// "net/ipv4/conf/forker0/route_localnet" (not the dotted form: link names may hold dots).
// Errors name the path: "write 1 to /proc/sys/net/ipv4/ip_forward: Permission denied".
Status write_sysctl(const std::string& key, std::string_view value);
// The value without its trailing newline.
Result<std::string> read_sysctl(const std::string& key);

}  // namespace forker::net
