#include "runtime/sync.hpp"

#include <sys/socket.h>

#include <cstring>
#include <vector>

namespace forker::runtime {
namespace {

constexpr size_t kMaxMessage = 256 * 1024;

struct Header {
  uint32_t step;
  uint32_t length;
};

// The inverse of send_error.
Error decode_error(const std::string& payload) {
  Error e;
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= payload.size(); ++i) {
    if (i == payload.size() || payload[i] == '\0') {
      parts.emplace_back(payload.substr(start, i - start));
      start = i + 1;
    }
  }
  if (parts.size() < 3) {
    e.op = "container init failed";
    return e;
  }
  e.err = atoi(parts[0].c_str());
  e.op = parts[1];
  e.object = parts[2];
  for (size_t i = 3; i < parts.size(); ++i) e.context.push_back(parts[i]);
  return e;
}

}  // namespace

Result<std::pair<SyncChannel, SyncChannel>> SyncChannel::make_pair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return sys_error("socketpair", "sync");
  return std::make_pair(SyncChannel(UniqueFd(fds[0])), SyncChannel(UniqueFd(fds[1])));
}

Status SyncChannel::send(SyncStep step, std::string_view payload) const {
  if (payload.size() > kMaxMessage) return make_error("sync message too large");
  std::string buf(sizeof(Header) + payload.size(), '\0');
  Header h{static_cast<uint32_t>(step), static_cast<uint32_t>(payload.size())};
  memcpy(buf.data(), &h, sizeof h);
  // An empty string_view may hold a null data(): memcpy from null is undefined even for 0 bytes.
  if (!payload.empty()) memcpy(buf.data() + sizeof h, payload.data(), payload.size());
  for (;;) {
    ssize_t n = ::send(fd_.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n >= 0) return ok();
    if (errno != EINTR) return sys_error("send", "sync socket");
  }
}

// Error fields joined by NUL: errno, op, object, context layers (innermost first).
Status SyncChannel::send_error(const Error& e) const {
  std::string p = std::to_string(e.err);
  p += '\0';
  p += e.op;
  p += '\0';
  p += e.object;
  for (const auto& c : e.context) {
    p += '\0';
    p += c;
  }
  return send(SyncStep::kError, p);
}

Result<std::string> SyncChannel::expect(SyncStep step) const {
  std::vector<char> buf(sizeof(Header) + kMaxMessage);
  ssize_t n;
  do {
    n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sys_error("recv", "sync socket");
  if (n == 0) return make_error("container init exited before it was ready");
  if (static_cast<size_t>(n) < sizeof(Header)) return make_error("short sync message");
  Header h;
  memcpy(&h, buf.data(), sizeof h);
  std::string payload(buf.data() + sizeof h, static_cast<size_t>(n) - sizeof h);
  if (h.step == static_cast<uint32_t>(SyncStep::kError)) return decode_error(payload);
  if (h.step != static_cast<uint32_t>(step))
    return make_error("unexpected sync message " + std::to_string(h.step));
  return payload;
}

Status SyncChannel::send_fd(SyncStep step, int fd) const {
  Header h{static_cast<uint32_t>(step), 0};
  iovec iov{&h, sizeof h};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  for (;;) {
    if (sendmsg(fd_.get(), &msg, MSG_NOSIGNAL) >= 0) return ok();
    if (errno != EINTR) return sys_error("sendmsg", "sync socket");
  }
}

Result<UniqueFd> SyncChannel::expect_fd(SyncStep step) const {
  std::vector<char> buf(sizeof(Header) + kMaxMessage);
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sys_error("recvmsg", "sync socket");
  // Own whatever fd came along first, so no return below leaks it.
  UniqueFd received;
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    received.reset(fd);
  }
  if (n == 0) return make_error("container init exited before it was ready");
  if (static_cast<size_t>(n) < sizeof(Header)) return make_error("short sync message");
  Header h;
  memcpy(&h, buf.data(), sizeof h);
  if (h.step == static_cast<uint32_t>(SyncStep::kError))
    return decode_error(std::string(buf.data() + sizeof h, static_cast<size_t>(n) - sizeof h));
  if (h.step != static_cast<uint32_t>(step))
    return make_error("unexpected sync message " + std::to_string(h.step) + " (waiting for an fd)");
  if (!received) return make_error("sync message without an fd");
  return received;
}

}  // namespace forker::runtime
