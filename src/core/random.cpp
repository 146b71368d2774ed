#include "core/random.hpp"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <vector>

namespace forker {

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string random_hex(size_t n) {
  std::vector<unsigned char> bytes(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      static std::atomic<uint64_t> counter{0};
      timespec ts{};
      ::clock_gettime(CLOCK_REALTIME, &ts);
      uint64_t state = (static_cast<uint64_t>(::getpid()) << 40) ^
                       (static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL +
                        static_cast<uint64_t>(ts.tv_nsec)) ^
                       (counter.fetch_add(1) << 20);
      for (size_t i = 0; i < n; i += 8) {
        uint64_t v = splitmix64(state);
        for (size_t k = 0; k < 8 && i + k < n; ++k)
          bytes[i + k] = static_cast<unsigned char>(v >> (8 * k));
      }
      break;
    }
    got += static_cast<size_t>(r);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace forker
