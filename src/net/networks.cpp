// The network store (networks.hpp): network.json files, the store lock, and IPAM by lease files.
#include "net/networks.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/file.hpp"
#include "core/random.hpp"
#include "core/unique_fd.hpp"
#include "oci/state.hpp"

namespace forker::net {

struct NetworkStore::Lock::State {
  UniqueFd fd;
  int depth = 0;
};

namespace {

using json = nlohmann::json;

constexpr size_t kMaxNameLength = 128;
// User networks get the first free 10.N.0.0/16 from here, as podman's start at 10.89.0.0/24.
constexpr int kFirstAutoOctet = 89;

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// Entries of DIR that are not hidden (temp dirs, locks); ENOENT comes back as an error with err
// set.
Result<std::vector<std::string>> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return sys_error("opendir", dir);
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<UniqueFd> flock_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return sys_error("open", path);
  while (::flock(fd.get(), LOCK_EX) < 0)
    if (errno != EINTR) return sys_error("flock", path);
  return fd;
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

Error no_such_network(const std::string& name) {
  return make_error("network " + name + ": no such network");
}

// Reads a string field of J into OUT; REQUIRED fields must be there.
Status get_string(const json& j, const char* key, std::string& out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return make_error("network.json: field '" + std::string(key) + "': missing");
    return ok();
  }
  if (!it->is_string())
    return make_error("network.json: field '" + std::string(key) + "': expected a string");
  out = it->get<std::string>();
  return ok();
}

template <typename T>
Result<T> parse_field(const std::string& text, const char* key) {
  auto v = T::parse(text);
  if (!v) return make_error("network.json: field '" + std::string(key) + "': " + v.error().op);
  return *v;
}

std::string mac_of(const IpAddress& a) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "02:42:%02x:%02x:%02x:%02x", a.bytes[0], a.bytes[1], a.bytes[2],
                a.bytes[3]);
  return buf;
}

json lease_json(const Lease& l) {
  json j{{"container_id", l.container_id}, {"address", l.address.str()}, {"mac", l.mac}};
  if (l.address6) j["address6"] = l.address6->str();
  return j;
}

std::optional<Lease> parse_lease(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto id = str("container_id"), addr = str("address"), mac = str("mac");
  if (!id || id->empty() || !addr || !mac) return std::nullopt;
  auto a = IpAddress::parse(*addr);
  if (!a) return std::nullopt;
  Lease l{*id, *a, std::nullopt, *mac};
  if (auto a6 = str("address6")) {
    auto v = IpAddress::parse(*a6);
    if (!v) return std::nullopt;
    l.address6 = *v;
  }
  return l;
}

// One file of leases/: its name (the address) and its lease, none when unreadable.
struct LeaseFile {
  std::string name;
  std::optional<Lease> lease;
};

// The lease files of a network's directory; a file removed while we read is skipped.
Result<std::vector<LeaseFile>> scan_leases(const std::string& net_dir) {
  std::string dir = net_dir + "/leases";
  auto names = FORKER_TRY(list_dir(dir));
  std::vector<LeaseFile> out;
  for (auto& name : names) {
    auto text = read_file(dir + "/" + name);
    if (!text) {
      if (text.error().err == ENOENT) continue;
      return std::move(text).error();
    }
    out.push_back({name, parse_lease(*text)});
  }
  return out;
}

// Writes L to a temp file and links it to leases/<address>: false when that name exists.
Result<bool> create_lease_file(const std::string& net_dir, const Lease& l) {
  std::string dir = net_dir + "/leases";
  std::string tmp = dir + "/.tmp-" + random_hex(8);
  std::string path = dir + "/" + l.address.str();
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return sys_error("open", tmp);
    std::string data = lease_json(l).dump() + "\n";
    if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      Error e = sys_error("write", tmp);
      ::unlink(tmp.c_str());
      return e;
    }
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return true;
  if (err == EEXIST) return false;
  return sys_error_errno(err, "link", path);
}

Result<std::vector<NetworkConfig>> read_networks(const std::string& root) {
  auto entries = FORKER_TRY(list_dir(root));
  std::vector<NetworkConfig> out;
  for (auto& e : entries) {
    std::string path = root + "/" + e + "/network.json";
    auto text = read_file(path);
    if (!text) {
      // Not a network directory, or one removed (renamed away) since the listing.
      if (text.error().err == ENOENT || text.error().err == ENOTDIR) continue;
      return std::move(text).error();
    }
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(path + ": not valid JSON");
    out.push_back(FORKER_TRY(NetworkConfig::from_json(j).context(path)));
  }
  std::sort(out.begin(), out.end(),
            [](const NetworkConfig& a, const NetworkConfig& b) { return a.name < b.name; });
  return out;
}

Result<NetworkConfig> find_network(const std::vector<NetworkConfig>& nets,
                                   const std::string& name_or_id) {
  for (auto& n : nets)
    if (n.name == name_or_id) return n;
  if (is_hex(name_or_id)) {
    const NetworkConfig* found = nullptr;
    int matches = 0;
    for (auto& n : nets)
      if (n.id.starts_with(name_or_id)) {
        found = &n;
        ++matches;
      }
    if (matches > 1)
      return make_error("network " + name_or_id + ": id prefix matches " + std::to_string(matches) +
                        " networks");
    if (found) return *found;
  }
  return no_such_network(name_or_id);
}

// Why S (IPv4 or IPv6) may not be used: another network's subnet, or a host route, overlaps it.
std::optional<std::string> conflict(const Subnet& s, const std::vector<NetworkConfig>& nets,
                                    const std::vector<Subnet>& host_routes) {
  for (auto& n : nets) {
    const Subnet* other = s.base.is_v4() ? &n.subnet : (n.subnet6 ? &*n.subnet6 : nullptr);
    if (other && s.overlaps(*other))
      return "subnet " + s.str() + " overlaps network " + n.name + " (" + other->str() + ")";
  }
  for (auto& r : host_routes) {
    // The default route covers every address and says nothing about what is in use.
    if (r.prefix == 0) continue;
    if (s.overlaps(r)) return "subnet " + s.str() + " overlaps the host route " + r.str();
  }
  return std::nullopt;
}

// Parses CIDR as a subnet of FAMILY_NAME ("IPv4" or "IPv6") with room for leases.
Result<Subnet> parse_subnet(const std::string& cidr, bool v4) {
  Subnet s = FORKER_TRY(Subnet::parse(cidr));
  if (s.base.is_v4() != v4)
    return make_error("subnet " + cidr + " is not an " + (v4 ? "IPv4" : "IPv6") + " subnet" +
                      (v4 ? " (give IPv6 subnets with --subnet6)" : ""));
  int max_prefix = v4 ? 30 : 126;
  if (s.prefix > max_prefix)
    return make_error("subnet " + cidr + " is too small (prefix at most /" +
                      std::to_string(max_prefix) + ")");
  return s;
}

// The gateway: TEXT or, when empty, S.host(1). Inside S, neither its base nor (IPv4) broadcast.
Result<IpAddress> parse_gateway(const std::string& text, const Subnet& s) {
  if (text.empty()) return s.host(1);
  IpAddress g = FORKER_TRY(IpAddress::parse(text));
  if (!s.contains(g)) return make_error("gateway " + text + " is not in subnet " + s.str());
  if (g == s.base || (s.base.is_v4() && g == s.host(s.size() - 1)))
    return make_error("gateway " + text + " is the network or broadcast address of " + s.str());
  return g;
}

// A random unique local /64 (RFC 4193): fd, a 40-bit global id, subnet id 0.
Subnet random_ula() {
  std::string hex = random_hex(5);
  Subnet s;
  s.base.family = AF_INET6;
  s.base.bytes[0] = 0xfd;
  for (size_t i = 0; i < 5; ++i)
    s.base.bytes[i + 1] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  s.prefix = 64;
  return s;
}

struct Subnets {
  Subnet subnet;
  IpAddress gateway;
  std::optional<Subnet> subnet6;
  std::optional<IpAddress> gateway6;
};

// The subnets and gateways for O, checked against the networks there are and the host routes.
Result<Subnets> plan_subnets(const NetworkCreateOptions& o, const std::vector<NetworkConfig>& nets,
                             const std::vector<Subnet>& host_routes) {
  Subnets p;
  if (!o.subnet.empty()) {
    p.subnet = FORKER_TRY(parse_subnet(o.subnet, true));
    if (auto why = conflict(p.subnet, nets, host_routes)) return make_error(*why);
  } else {
    if (!o.gateway.empty()) return make_error("--gateway needs --subnet");
    int octet = kFirstAutoOctet;
    for (; octet <= 255; ++octet) {
      p.subnet = *Subnet::parse("10." + std::to_string(octet) + ".0.0/16");
      if (!conflict(p.subnet, nets, host_routes)) break;
    }
    if (octet > 255)
      return make_error("no free subnet among 10.89.0.0/16 .. 10.255.0.0/16 (give --subnet)");
  }
  p.gateway = FORKER_TRY(parse_gateway(o.gateway, p.subnet));

  if (!o.subnet6.empty()) {
    p.subnet6 = FORKER_TRY(parse_subnet(o.subnet6, false));
    if (auto why = conflict(*p.subnet6, nets, host_routes)) return make_error(*why);
  } else if (!o.gateway6.empty()) {
    return make_error("--gateway6 needs --subnet6");
  } else if (o.ipv6) {
    // 40 random bits: a collision with another network is all but impossible; retry anyway.
    for (int i = 0; i < 8 && !p.subnet6; ++i)
      if (Subnet s = random_ula(); !conflict(s, nets, host_routes)) p.subnet6 = s;
    if (!p.subnet6) return make_error("no free IPv6 subnet found (give --subnet6)");
  }
  if (p.subnet6) p.gateway6 = FORKER_TRY(parse_gateway(o.gateway6, *p.subnet6));
  return p;
}

// Removes debris of a create or rm that died midway; only called under the store lock, which
// both hold while their temp names exist.
void remove_debris(const std::string& root) {
  DIR* d = ::opendir(root.c_str());
  if (!d) return;
  std::vector<std::string> debris;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.starts_with(".tmp-") || name.starts_with(".trash-")) debris.emplace_back(name);
  }
  ::closedir(d);
  for (auto& name : debris) remove_tree(root + "/" + name);
}

// Writes N into a temp dir under ROOT and renames it to ROOT/<id>: all or nothing.
Status write_network(const std::string& root, const NetworkConfig& n) {
  std::string tmp = root + "/.tmp-" + random_hex(8);
  auto st = [&]() -> Status {
    if (::mkdir(tmp.c_str(), 0755) < 0) return sys_error("mkdir", tmp);
    if (::mkdir((tmp + "/leases").c_str(), 0755) < 0) return sys_error("mkdir", tmp + "/leases");
    // Made now so that a lease lock is always a file inside the network's directory.
    UniqueFd lock_file(::open((tmp + "/leases.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock_file) return sys_error("open", tmp + "/leases.lock");
    FORKER_TRY(write_file_atomic(tmp + "/network.json", n.to_json().dump(2) + "\n"));
    std::string dst = root + "/" + n.id;
    if (::rename(tmp.c_str(), dst.c_str()) < 0) return sys_error("rename " + tmp + " to", dst);
    return ok();
  }();
  if (!st) remove_tree(tmp);
  return st;
}

}  // namespace

Status validate_network_name(const std::string& name) {
  auto ok_char = [](char c, bool first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return !first && (c == '_' || c == '.' || c == '-');
  };
  bool valid = !name.empty() && name.size() <= kMaxNameLength;
  for (size_t i = 0; valid && i < name.size(); ++i) valid = ok_char(name[i], i == 0);
  if (!valid)
    return make_error("invalid network name \"" + name +
                      "\": only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed, at most 128 characters");
  if (name == "host" || name == "none" || name == "bridge")
    return make_error("network name " + name + " is reserved for --network " + name);
  return ok();
}

json NetworkConfig::to_json() const {
  json j{{"name", name},
         {"id", id},
         {"bridge", bridge},
         {"subnet", subnet.str()},
         {"gateway", gateway.str()},
         {"internal", internal},
         {"created", created},
         {"mtu", mtu}};
  if (subnet6) j["subnet6"] = subnet6->str();
  if (gateway6) j["gateway6"] = gateway6->str();
  return j;
}

Result<NetworkConfig> NetworkConfig::from_json(const json& j) {
  if (!j.is_object()) return make_error("network.json: expected a JSON object");
  NetworkConfig n;
  std::string subnet, gateway, subnet6, gateway6;
  FORKER_TRY(get_string(j, "name", n.name, true));
  FORKER_TRY(get_string(j, "id", n.id, true));
  FORKER_TRY(get_string(j, "bridge", n.bridge, true));
  FORKER_TRY(get_string(j, "subnet", subnet, true));
  FORKER_TRY(get_string(j, "gateway", gateway, true));
  FORKER_TRY(get_string(j, "subnet6", subnet6, false));
  FORKER_TRY(get_string(j, "gateway6", gateway6, false));
  FORKER_TRY(get_string(j, "created", n.created, false));
  if (n.id.size() != 64 || !is_hex(n.id))
    return make_error("network.json: field 'id': expected 64 hex digits");
  if (n.bridge.empty() || n.bridge.size() > 15)
    return make_error("network.json: field 'bridge': expected 1 to 15 characters");
  n.subnet = FORKER_TRY(parse_field<Subnet>(subnet, "subnet"));
  n.gateway = FORKER_TRY(parse_field<IpAddress>(gateway, "gateway"));
  if (!subnet6.empty()) n.subnet6 = FORKER_TRY(parse_field<Subnet>(subnet6, "subnet6"));
  if (!gateway6.empty()) n.gateway6 = FORKER_TRY(parse_field<IpAddress>(gateway6, "gateway6"));
  if (!n.subnet.base.is_v4() || !n.subnet.contains(n.gateway))
    return make_error("network.json: field 'gateway': not in IPv4 subnet " + n.subnet.str());
  if (n.subnet6.has_value() != n.gateway6.has_value() ||
      (n.subnet6 && (n.subnet6->base.is_v4() || !n.subnet6->contains(*n.gateway6))))
    return make_error("network.json: fields 'subnet6' and 'gateway6' do not fit together");
  if (auto it = j.find("internal"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return make_error("network.json: field 'internal': expected a boolean");
    n.internal = it->get<bool>();
  }
  if (auto it = j.find("mtu"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 68 || it->get<int64_t>() > 65535)
      return make_error("network.json: field 'mtu': expected an integer in 68..65535");
    n.mtu = it->get<int>();
  }
  return n;
}

NetworkStore::NetworkStore(std::string root)
    : root_(std::move(root)), lock_state_(std::make_shared<Lock::State>()) {}

NetworkStore::Lock::Lock(Lock&& other) noexcept : state_(std::move(other.state_)) {}

NetworkStore::Lock& NetworkStore::Lock::operator=(Lock&& other) noexcept {
  if (this != &other) {
    Lock old(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

NetworkStore::Lock::~Lock() {
  if (state_ && --state_->depth == 0) state_->fd.reset();  // closing drops the flock
}

Result<NetworkStore> NetworkStore::open(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  FORKER_TRY(mkdir_all(root, 0755));
  return NetworkStore(std::move(root));
}

Result<NetworkStore::Lock> NetworkStore::lock() {
  if (lock_state_->depth == 0) lock_state_->fd = FORKER_TRY(flock_file(root_ + "/.lock"));
  ++lock_state_->depth;
  return Lock(lock_state_);
}

Result<NetworkConfig> NetworkStore::create(const NetworkCreateOptions& o,
                                           const std::vector<Subnet>& host_routes) {
  std::string ctx = "network create " + o.name;
  FORKER_TRY_CTX(validate_network_name(o.name), ctx);
  auto held = FORKER_TRY(lock());
  remove_debris(root_);
  auto nets = FORKER_TRY(read_networks(root_));
  for (auto& n : nets)
    if (n.name == o.name)
      return make_error("network with name " + o.name + " already exists").add_context(ctx);
  Subnets p = FORKER_TRY_CTX(plan_subnets(o, nets, host_routes), ctx);

  NetworkConfig n;
  n.name = o.name;
  n.id = random_hex(32);
  n.bridge = o.name == kDefaultNetwork ? std::string(kDefaultNetwork) : "fk-" + n.id.substr(0, 12);
  n.subnet = p.subnet;
  n.gateway = p.gateway;
  n.subnet6 = p.subnet6;
  n.gateway6 = p.gateway6;
  n.internal = o.internal;
  n.created = oci::rfc3339_now();
  FORKER_TRY_CTX(write_network(root_, n), ctx);
  return n;
}

Result<NetworkConfig> NetworkStore::ensure_default(const std::vector<Subnet>& host_routes) {
  auto held = FORKER_TRY(lock());
  auto nets = FORKER_TRY(read_networks(root_));
  for (auto& n : nets)
    if (n.name == kDefaultNetwork) return n;
  NetworkCreateOptions o;
  o.name = kDefaultNetwork;
  const char* env = std::getenv(kDefaultSubnetEnv);
  bool from_env = env && *env;
  o.subnet = from_env ? env : kDefaultSubnet;
  auto n = create(o, host_routes);
  if (!n && n.error().err == 0) {
    Error e = std::move(n).error();
    e.op += from_env ? " (from " + std::string(kDefaultSubnetEnv) + ")"
                     : " (set " + std::string(kDefaultSubnetEnv) + " to choose another subnet)";
    return e;
  }
  return n;
}

Result<NetworkConfig> NetworkStore::get(const std::string& name_or_id) {
  if (name_or_id.empty()) return no_such_network("\"\"");
  auto nets = FORKER_TRY(read_networks(root_));
  return find_network(nets, name_or_id);
}

Result<std::vector<NetworkConfig>> NetworkStore::list() { return read_networks(root_); }

Status NetworkStore::remove(const std::string& name_or_id,
                            const std::function<bool(const std::string&)>& container_exists) {
  auto held = FORKER_TRY(lock());
  NetworkConfig n = FORKER_TRY(get(name_or_id));
  std::string ctx = "network rm " + n.name;
  std::string dir = root_ + "/" + n.id;
  // Under the network's lease lock no lease can be taken between the check and the rename.
  UniqueFd leases_lock = FORKER_TRY_CTX(flock_file(dir + "/leases.lock"), ctx);
  auto files = FORKER_TRY_CTX(scan_leases(dir), ctx);
  for (auto& f : files)
    if (f.lease && container_exists(f.lease->container_id))
      return make_error("in use by container " + f.lease->container_id.substr(0, 12))
          .add_context(ctx);
  // Renamed away first, so that readers never see a half-removed network.
  std::string trash = root_ + "/.trash-" + n.id;
  if (::rename(dir.c_str(), trash.c_str()) < 0)
    return sys_error("rename " + dir + " to", trash).add_context(ctx);
  remove_tree(trash);
  return ok();
}

Result<Lease> NetworkStore::lease(const NetworkConfig& n, const std::string& container_id,
                                  const std::function<bool(const std::string&)>& container_exists) {
  std::string dir = root_ + "/" + n.id;
  auto lock_fd = flock_file(dir + "/leases.lock");  // held until we return
  if (!lock_fd) {
    if (lock_fd.error().err == ENOENT) return no_such_network(n.name);
    return std::move(lock_fd).error();
  }
  // rm renames the directory while holding this lock: we may have waited on the old one.
  if (!path_exists(dir + "/network.json")) return no_such_network(n.name);

  auto files = FORKER_TRY(scan_leases(dir));
  std::map<std::string, const LeaseFile*> taken;
  for (auto& f : files) {
    if (f.lease && f.lease->container_id == container_id) return *f.lease;
    taken[f.name] = &f;
  }
  uint64_t size = n.subnet.size();
  for (uint64_t i = 2; i + 1 < size; ++i) {  // the last address is the broadcast address
    Lease l{container_id, n.subnet.host(i), std::nullopt, ""};
    if (l.address == n.gateway) continue;
    if (n.subnet6) {
      if (i >= n.subnet6->size()) break;
      l.address6 = n.subnet6->host(i);
      if (n.gateway6 && *l.address6 == *n.gateway6) continue;
    }
    l.mac = mac_of(l.address);
    std::string name = l.address.str();
    if (auto it = taken.find(name); it != taken.end()) {
      // An unreadable lease file is never reclaimed: its holder is unknown.
      const auto& held = it->second->lease;
      if (!held || container_exists(held->container_id)) continue;
      std::string path = dir + "/leases/" + name;
      if (::unlink(path.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", path);
    }
    if (FORKER_TRY(create_lease_file(dir, l))) return l;
  }
  return make_error("network " + n.name + ": no free address in " + n.subnet.str());
}

Status NetworkStore::release(const NetworkConfig& n, const std::string& container_id) {
  std::string dir = root_ + "/" + n.id;
  auto lock_fd = flock_file(dir + "/leases.lock");  // held until we return
  if (!lock_fd) {
    if (lock_fd.error().err == ENOENT) return ok();
    return std::move(lock_fd).error();
  }
  auto files = scan_leases(dir);
  if (!files && files.error().err == ENOENT) return ok();
  for (auto& f : FORKER_TRY(std::move(files))) {
    if (!f.lease || f.lease->container_id != container_id) continue;
    std::string path = dir + "/leases/" + f.name;
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", path);
  }
  return ok();
}

Result<std::vector<Lease>> NetworkStore::leases(const NetworkConfig& n) {
  auto files = scan_leases(root_ + "/" + n.id);
  if (!files && files.error().err == ENOENT) return no_such_network(n.name);
  std::vector<Lease> out;
  for (auto& f : FORKER_TRY(std::move(files)))
    if (f.lease) out.push_back(*f.lease);
  std::sort(out.begin(), out.end(),
            [](const Lease& a, const Lease& b) { return a.address < b.address; });
  return out;
}

}  // namespace forker::net
