#include "net/address.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "core/strings.hpp"

namespace forker::net {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return Error{"parse IP address " + s + ": not an IPv4 or IPv6 address"};
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 0 || !inet_ntop(family, bytes.data(), buf, sizeof buf)) return "";
  return buf;
}

bool IpAddress::is_v4() const { return family == AF_INET; }

namespace {

// Whether the first PREFIX bits of A and B agree.
bool same_prefix(const IpAddress& a, const IpAddress& b, int prefix) {
  for (int i = 0; i < prefix; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((a.bytes[byte] >> bit) & 1) != ((b.bytes[byte] >> bit) & 1)) return false;
  }
  return true;
}

}  // namespace

Result<Subnet> Subnet::parse(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos)
    return Error{"parse subnet " + std::string(cidr) + ": not in CIDR form (ADDRESS/PREFIX)"};
  auto base = IpAddress::parse(cidr.substr(0, slash));
  if (!base) return Error{"parse subnet " + std::string(cidr) + ": bad address"};
  auto prefix = parse_uint(cidr.substr(slash + 1));
  int max = base->is_v4() ? 32 : 128;
  if (!prefix || *prefix > static_cast<uint64_t>(max))
    return Error{"parse subnet " + std::string(cidr) + ": prefix must be 0.." +
                 std::to_string(max)};
  Subnet s{*base, static_cast<int>(*prefix)};
  for (int i = s.prefix; i < max; ++i)
    if ((s.base.bytes[i / 8] >> (7 - i % 8)) & 1)
      return Error{"parse subnet " + std::string(cidr) + ": host bits set (did you mean " +
                   [&] {
                     Subnet m = s;
                     for (int j = s.prefix; j < max; ++j)
                       m.base.bytes[j / 8] &= static_cast<uint8_t>(~(1u << (7 - j % 8)));
                     return m.str();
                   }() +
                   "?)"};
  return s;
}

std::string Subnet::str() const { return base.str() + "/" + std::to_string(prefix); }

bool Subnet::contains(const IpAddress& a) const {
  return a.family == base.family && same_prefix(a, base, prefix);
}

bool Subnet::overlaps(const Subnet& o) const {
  if (o.base.family != base.family) return false;
  return same_prefix(base, o.base, std::min(prefix, o.prefix));
}

IpAddress Subnet::host(uint64_t n) const {
  IpAddress a = base;
  int i = static_cast<int>(a.length()) - 1;
  uint64_t carry = n;
  while (carry && i >= 0) {
    uint64_t sum = a.bytes[i] + (carry & 0xff);
    a.bytes[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
    --i;
  }
  return a;
}

uint64_t Subnet::size() const {
  int bits = (base.is_v4() ? 32 : 128) - prefix;
  return bits >= 32 ? (uint64_t{1} << 32) : (uint64_t{1} << bits);
}

}  // namespace forker::net
