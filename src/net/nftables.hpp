// Applying nft scripts (src/net/nft_ruleset.hpp renders them) through libnftables, loaded with
// dlopen on first use: it maps libjansson, libgmp, libxtables and more, which a plain `run`
// that changes no rules should not pay for.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "net/nft_ruleset.hpp"

namespace forker::net {

// Runs SCRIPT as one libnftables transaction: all of it or none of it takes effect.
// "nftables: apply ruleset: Error: Could not process rule: No such file or directory (in: ...)";
// when libnftables.so.1 is missing, an error naming it and its Debian package (libnftables1).
Status apply_nft_script(const std::string& script);

// Removes table inet TABLE if it exists; absent is fine.
Status delete_forker_table(std::string_view table = kNftTable);

}  // namespace forker::net
