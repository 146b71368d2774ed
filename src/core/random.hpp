// Random names: container ids, the store's session tokens.
#pragma once

#include <cstddef>
#include <string>

namespace forker {

// 2*BYTES lowercase hex digits from getrandom(2). Without getrandom (Linux < 3.17) pid, time and
// a counter are mixed instead, so that names still differ between processes and calls.
std::string random_hex(size_t bytes);

}  // namespace forker
