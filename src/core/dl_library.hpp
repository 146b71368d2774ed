// Loading a shared library at run time (dlopen) for a feature most commands never use, so that
// the start path does not map it: libcurl for pulls, libnftables for rule changes.
#pragma once

#include <dlfcn.h>

#include <string>

namespace forker {

// dlopen(SONAME); on failure ERROR says why and which Debian PACKAGE provides it.
inline void* dl_open(const char* soname, const char* package, std::string& error) {
  void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) error = std::string("dlopen: ") + dlerror() + " (install the " + package + " package)";
  return lib;
}

// OUT = the symbol NAME of LIB; false with ERROR set when it is missing.
template <typename F>
bool dl_symbol(void* lib, const char* name, F& out, std::string& error) {
  void* sym = dlsym(lib, name);
  if (!sym) {
    error = std::string("dlsym ") + name + ": " + dlerror();
    return false;
  }
  out = reinterpret_cast<F>(sym);
  return true;
}

}  // namespace forker
