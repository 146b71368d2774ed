#include "runtime/sync.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/fd_passing.hpp"

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
  // The message's size first (a seqpacket socket keeps boundaries): a buffer of the largest
  // size, zeroed, would touch 16 pages for a message of a few bytes.
  ssize_t n;
  do {
    n = ::recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sys_error("recv", "sync socket");
  std::vector<char> buf(std::min(static_cast<size_t>(n), sizeof(Header) + kMaxMessage));
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
  auto sent = send_with_fd(fd_.get(), fd, std::string_view(reinterpret_cast<char*>(&h), sizeof h));
  if (!sent) return std::move(sent).error().add_context("sync socket");
  return ok();
}

Result<UniqueFd> SyncChannel::expect_fd(SyncStep step) const {
  auto msg = recv_with_fd(fd_.get(), sizeof(Header) + kMaxMessage);
  if (!msg) return std::move(msg).error().add_context("sync socket");
  if (msg->data.empty()) return make_error("container init exited before it was ready");
  if (msg->data.size() < sizeof(Header)) return make_error("short sync message");
  Header h;
  memcpy(&h, msg->data.data(), sizeof h);
  if (h.step == static_cast<uint32_t>(SyncStep::kError))
    return decode_error(msg->data.substr(sizeof h));
  if (h.step != static_cast<uint32_t>(step))
    return make_error("unexpected sync message " + std::to_string(h.step) + " (waiting for an fd)");
  if (!msg->fd) return make_error("sync message without an fd");
  return std::move(msg->fd);
}

}  // namespace forker::runtime
