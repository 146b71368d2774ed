// IPv4 and IPv6 addresses and subnets (CIDR), as networks, leases and nftables rules use them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace forker::net {

struct IpAddress {
  int family = 0;                 // AF_INET or AF_INET6; 0 when unset
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4

  static Result<IpAddress> parse(std::string_view text);
  std::string str() const;
  bool is_v4() const;
  size_t length() const { return is_v4() ? 4 : 16; }
  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
};

struct Subnet {
  IpAddress base;  // host bits zero
  int prefix = 0;

  // "10.88.0.0/16", "fd00:1::/64". Host bits set ("10.88.0.1/16") are an error, as docker's.
  static Result<Subnet> parse(std::string_view cidr);
  std::string str() const;
  bool contains(const IpAddress& a) const;
  bool overlaps(const Subnet& other) const;
  // The address N past the base (1: the usual gateway). N must be below size().
  IpAddress host(uint64_t n) const;
  // Addresses in the subnet, capped at 2^32 (IPv6 subnets are larger than any lease table).
  uint64_t size() const;
  bool operator==(const Subnet&) const = default;
};

}  // namespace forker::net
