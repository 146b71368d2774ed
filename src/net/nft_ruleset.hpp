// forker's nftables rules as text: NAT for bridge networks and published ports, forwarding for
// internal networks. Pure (state in, nft script out); src/net/nftables.cpp applies the script.
//
// All rules live in one table, `inet forker`, and no other table is touched. The script replaces
// that table whole in one transaction (`table inet forker {}` + `delete table inet forker`, then
// the full definition), so applying it twice is harmless and it works whether or not the table
// exists. Equal states render equal text (networks, publishes and backends are sorted), so the
// caller can keep the last applied text and skip libnftables when nothing changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "net/address.hpp"

namespace forker::net {

inline constexpr std::string_view kNftTable = "forker";

struct NftNetwork {
  std::string bridge;  // "forker0"
  Subnet subnet;       // IPv4, "10.88.0.0/16"
  std::optional<Subnet> subnet6;
  bool internal = false;  // no way in or out: no masquerade, forwarding to/from other links dropped
};

struct NftPublish {
  // "" or "0.0.0.0": every local IPv4 address (and every IPv6 one for IPv6 backends); "::" every
  // local IPv6 address; else one local address ("127.0.0.1", "192.0.2.5").
  std::string host_ip;
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string protocol;  // "tcp" | "udp"
  std::string bridge;    // the network the backends are on
  // One container, or the running replicas of a group; never empty. Only backends of host_ip's
  // family are used; new connections are spread over them round robin.
  std::vector<IpAddress> backends;
};

struct NftState {
  std::vector<NftNetwork> networks;
  std::vector<NftPublish> publishes;
};

// Checks what render_ruleset relies on: bridge names nftables can quote (1-15 of [A-Za-z0-9_.-]),
// IPv4 subnets (IPv6 subnet6), tcp/udp, nonzero ports, host_ip an address, at least one backend
// of host_ip's family. "nftables: publish 8080/tcp: protocol sctp: not tcp or udp".
Status validate_nft_state(const NftState& s);

// The script that makes table inet TABLE hold exactly the rules for S. Entries that
// validate_nft_state rejects are left out (never rendered half), so call it first.
// TABLE is a plain identifier; tests pass their own so they never touch forker's table.
std::string render_ruleset(const NftState& s, std::string_view table = kNftTable);

// Deletes table inet TABLE if it exists (absent is fine): one transaction.
std::string render_delete_table(std::string_view table = kNftTable);

// libnftables' error buffer ("f.nft:3:8-13: Error: Could not process rule: No such file or
// directory\n  jump nosuch\n       ^^^^^^\n") shortened to one line for an Error: the first two
// error messages, each with the script line it points at when the buffer names a location,
// "Error: Could not process rule: No such file or directory (in: jump nosuch)".
std::string summarize_nft_error(std::string_view error_buffer);

}  // namespace forker::net
