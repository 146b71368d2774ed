#include "linux/loopback.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "core/unique_fd.hpp"

namespace forker::linux {

Status bring_up_loopback() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_error("socket", "loopback");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &req) < 0) return sys_error("SIOCGIFFLAGS", "lo");
  if (req.ifr_flags & IFF_UP) return ok();
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &req) < 0) return sys_error("SIOCSIFFLAGS", "lo up");
  return ok();
}

}  // namespace forker::linux
