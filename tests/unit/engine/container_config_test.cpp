// build_config and its parsers: docker's rules for `forker run`, checked on the config.json they
// produce, which must also pass the runtime's own parser and validator. resolve_user runs on a
// temp dir standing in for the image's root. Runs as any user.
#include "engine/container_config.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/unique_fd.hpp"
#include "oci/spec.hpp"
#include "oci/validate.hpp"
#include "support/temp_dir.hpp"

namespace forker::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

using ::forker::test::TempDir;

ConfigContext context() {
  ConfigContext c;
  c.id = kId;
  c.name = "web";
  c.rootfs = "/var/lib/forker/snapshots/x/rootfs";
  c.container_dir = "/var/lib/forker/containers/x";
  c.cgroups_path = "/forker/x";
  c.volumes_dir = "/var/lib/forker/volumes";
  c.host_env = {"FROM_HOST=here", "HOME=/home/me"};
  c.host_resolv_conf = "nameserver 10.0.0.2\nsearch example.com\n";
  return c;
}

RunOptions options(std::vector<std::string> command = {"sh"}) {
  RunOptions o;
  o.image = "busybox";
  o.command = std::move(command);
  return o;
}

BuiltConfig build(const RunOptions& o, const ImageDefaults& image = {},
                  const ConfigContext& ctx = context()) {
  auto r = build_config(o, image, ctx);
  EXPECT_TRUE(r) << r.error().message();
  return r ? std::move(r).value() : BuiltConfig{};
}

std::string build_error(const RunOptions& o, const ImageDefaults& image = {},
                        const ConfigContext& ctx = context()) {
  auto r = build_config(o, image, ctx);
  EXPECT_FALSE(r) << "built";
  return r ? std::string() : r.error().message();
}

// The config as the runtime reads it: parse_spec and validate_spec must accept it.
oci::Spec runtime_view(const BuiltConfig& b) {
  auto spec = oci::parse_spec(b.config.dump());
  EXPECT_TRUE(spec) << spec.error().message();
  if (!spec) return {};
  auto valid = oci::validate_spec(*spec);
  EXPECT_TRUE(valid) << valid.error().message();
  return std::move(spec).value();
}

const oci::Mount* find_mount(const oci::Spec& s, const std::string& dest) {
  for (const auto& m : s.mounts)
    if (m.destination == dest) return &m;
  return nullptr;
}

std::vector<std::string> destinations(const oci::Spec& s) {
  std::vector<std::string> out;
  for (const auto& m : s.mounts) out.push_back(m.destination);
  return out;
}

std::vector<std::string> namespace_types(const oci::Spec& s) {
  std::vector<std::string> out;
  for (const auto& n : s.linux.namespaces) out.push_back(n.type);
  return out;
}

// ---- parse_image_defaults ----

TEST(ImageDefaults, ReadsEveryField) {
  auto d = parse_image_defaults(R"({"architecture":"amd64","config":{
      "Env":["PATH=/opt/bin","A=1"],"Entrypoint":["/init"],"Cmd":["serve","-v"],
      "WorkingDir":"/srv","User":"www:www","StopSignal":"SIGQUIT",
      "ExposedPorts":{"80/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},
      "Labels":{"maintainer":"me"}}})");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_THAT(d->env, ElementsAre("PATH=/opt/bin", "A=1"));
  EXPECT_THAT(d->entrypoint, ElementsAre("/init"));
  EXPECT_THAT(d->cmd, ElementsAre("serve", "-v"));
  EXPECT_EQ(d->working_dir, "/srv");
  EXPECT_EQ(d->user, "www:www");
  EXPECT_EQ(d->stop_signal, "SIGQUIT");
  EXPECT_THAT(d->exposed_ports, ElementsAre("53/udp", "80/tcp"));
  EXPECT_THAT(d->volumes, ElementsAre("/data"));
  EXPECT_EQ(d->labels.at("maintainer"), "me");
}

TEST(ImageDefaults, NullsAndMissingConfigAreEmpty) {
  auto d = parse_image_defaults(R"({"config":{"Env":null,"Entrypoint":null,"Cmd":["sh"],
      "WorkingDir":null,"User":"","Volumes":null,"ExposedPorts":null,"Labels":null}})");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_THAT(d->env, IsEmpty());
  EXPECT_THAT(d->entrypoint, IsEmpty());
  EXPECT_THAT(d->cmd, ElementsAre("sh"));
  EXPECT_EQ(d->working_dir, "");
  auto none = parse_image_defaults(R"({"rootfs":{"type":"layers"}})");
  ASSERT_TRUE(none);
  EXPECT_THAT(none->cmd, IsEmpty());
  auto null_config = parse_image_defaults(R"({"config":null})");
  ASSERT_TRUE(null_config);
}

TEST(ImageDefaults, WrongTypesNameTheField) {
  auto env = parse_image_defaults(R"({"config":{"Env":"PATH=/bin"}})");
  ASSERT_FALSE(env);
  EXPECT_THAT(env.error().message(), HasSubstr("config.Env"));
  auto cmd = parse_image_defaults(R"({"config":{"Cmd":[1]}})");
  ASSERT_FALSE(cmd);
  EXPECT_THAT(cmd.error().message(), HasSubstr("config.Cmd"));
  EXPECT_FALSE(parse_image_defaults("not json"));
}

// ---- capabilities ----

TEST(RunCapabilities, DockersDefaultFourteen) {
  const auto& caps = default_capabilities();
  EXPECT_EQ(caps.size(), 14u);
  EXPECT_THAT(caps, Contains("CAP_NET_BIND_SERVICE"));
  EXPECT_THAT(caps, Contains("CAP_AUDIT_WRITE"));
  EXPECT_THAT(caps, Not(Contains("CAP_SYS_ADMIN")));
  EXPECT_THAT(caps, Not(Contains("CAP_NET_ADMIN")));
}

TEST(RunCapabilities, NormalizeAcceptsDockersSpellings) {
  for (const char* n : {"net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin"}) {
    auto c = normalize_capability(n);
    ASSERT_TRUE(c) << n;
    EXPECT_EQ(*c, "CAP_NET_ADMIN");
  }
  EXPECT_EQ(*normalize_capability("all"), "ALL");
  EXPECT_FALSE(normalize_capability("CAP_BOGUS"));
  EXPECT_FALSE(normalize_capability(""));
}

TEST(RunCapabilities, AllHasTheDefaultsAndSysAdmin) {
  const auto all = all_capabilities();
  EXPECT_GE(all.size(), 38u);
  EXPECT_EQ(all.front(), "CAP_CHOWN");
  EXPECT_THAT(all, Contains("CAP_SYS_ADMIN"));
  for (const auto& c : default_capabilities()) EXPECT_THAT(all, Contains(c));
}

// ---- parse_cpus ----

TEST(RunCpus, DecimalToQuotaOverFixedPeriod) {
  struct Case {
    const char* text;
    int64_t quota;
  } cases[] = {{"1.5", 150000}, {"0.5", 50000}, {"2", 200000}, {".25", 25000},
               {"0.01", 1000},  {"0.3", 30000}, {"0", 0}};
  for (const auto& c : cases) {
    auto q = parse_cpus(c.text);
    ASSERT_TRUE(q) << c.text << ": " << q.error().message();
    EXPECT_EQ(q->quota, c.quota) << c.text;
    EXPECT_EQ(q->period, 100000u) << c.text;
  }
}

TEST(RunCpus, RejectsWhatDockerRejects) {
  EXPECT_EQ(parse_cpus("x").error().message(), "--cpus 'x': not a number");
  for (const char* bad : {"", "-1", "1.", "1e3", "1,5", "0.001", "1.0000000001", "1.2.3"})
    EXPECT_FALSE(parse_cpus(bad)) << bad;
}

// ---- parse_ulimit ----

TEST(RunUlimit, SoftHardAndUnlimited) {
  auto n = parse_ulimit("nofile=1024:2048");
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->type, "RLIMIT_NOFILE");
  EXPECT_EQ(n->soft, 1024u);
  EXPECT_EQ(n->hard, 2048u);
  auto p = parse_ulimit("nproc=512");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, "RLIMIT_NPROC");
  EXPECT_EQ(p->soft, 512u);
  EXPECT_EQ(p->hard, 512u);
  auto c = parse_ulimit("core=-1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->soft, UINT64_MAX);
  EXPECT_EQ(c->hard, UINT64_MAX);
  auto s = parse_ulimit("stack=8192:-1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->soft, 8192u);
  EXPECT_EQ(s->hard, UINT64_MAX);
}

TEST(RunUlimit, ErrorsNameTheFlagAndValue) {
  EXPECT_EQ(parse_ulimit("foo=1").error().message(), "--ulimit 'foo=1': unknown resource");
  EXPECT_THAT(parse_ulimit("nofile").error().message(), HasSubstr("--ulimit 'nofile'"));
  EXPECT_THAT(parse_ulimit("nofile=a").error().message(), HasSubstr("not a number"));
  EXPECT_THAT(parse_ulimit("nofile=10:5").error().message(), HasSubstr("soft limit"));
  EXPECT_FALSE(parse_ulimit("nofile=1:2:3"));
  EXPECT_FALSE(parse_ulimit("nofile=-2"));
}

// ---- parse_volume ----

TEST(RunVolume, BindWithModes) {
  auto v = parse_volume("/srv/data/:/data:ro,Z");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->kind, VolumeSpec::Kind::kBind);
  EXPECT_EQ(v->source, "/srv/data");
  EXPECT_EQ(v->destination, "/data");
  EXPECT_TRUE(v->read_only);
  auto s = parse_volume("/a:/b//c/:rshared");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->destination, "/b/c");
  EXPECT_EQ(s->propagation, "rshared");
  EXPECT_FALSE(s->read_only);
}

TEST(RunVolume, NamedAndAnonymous) {
  auto n = parse_volume("pgdata:/var/lib/postgresql/data");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->kind, VolumeSpec::Kind::kNamed);
  EXPECT_EQ(n->source, "pgdata");
  auto a = parse_volume("/cache");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, VolumeSpec::Kind::kAnonymous);
  EXPECT_EQ(a->destination, "/cache");
  EXPECT_EQ(a->source, "");
}

TEST(RunVolume, Errors) {
  EXPECT_EQ(parse_volume("rel/dir:/x").error().message(),
            "-v 'rel/dir:/x': the host path must be absolute");
  EXPECT_EQ(parse_volume("./rel:/x").error().message(),
            "-v './rel:/x': the host path must be absolute");
  EXPECT_THAT(parse_volume("/a:rel").error().message(), HasSubstr("must be absolute"));
  EXPECT_THAT(parse_volume("/a:/b:xx").error().message(), HasSubstr("invalid mode 'xx'"));
  EXPECT_THAT(parse_volume("/a:/").error().message(), HasSubstr("must not be /"));
  EXPECT_THAT(parse_volume("x:/b").error().message(), HasSubstr("invalid volume name"));
  EXPECT_FALSE(parse_volume("/a:/b:ro:rw"));
  EXPECT_FALSE(parse_volume("/a:/b:ro,rw"));
  EXPECT_FALSE(parse_volume("/foo:ro"));  // docker: a destination with a mode is no volume
}

// ---- parse_tmpfs ----

TEST(RunTmpfs, DockerDefaultsThenOptionsLastWins) {
  auto t = parse_tmpfs("/run");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->destination, "/run");
  EXPECT_EQ(t->type, "tmpfs");
  EXPECT_THAT(t->options, ElementsAre("noexec", "nosuid", "nodev"));
  auto o = parse_tmpfs("/run/:exec,size=64m,mode=1777,size=32m");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->destination, "/run");
  EXPECT_THAT(o->options, ElementsAre("nosuid", "nodev", "exec", "mode=1777", "size=32m"));
}

TEST(RunTmpfs, Errors) {
  EXPECT_THAT(parse_tmpfs("run").error().message(), HasSubstr("--tmpfs 'run'"));
  EXPECT_THAT(parse_tmpfs("/run:bogus").error().message(), HasSubstr("invalid option 'bogus'"));
  EXPECT_FALSE(parse_tmpfs("/run:color=red"));
  EXPECT_FALSE(parse_tmpfs("/"));
}

// ---- parse_env_file ----

TEST(RunEnvFile, DockersRules) {
  auto e = parse_env_file(
      "\xEF\xBB\xBF# comment\n\nA=1\r\n  B=two words \nFROM_HOST\nNOT_ON_HOST\nC=\nD=x=y\n",
      {"FROM_HOST=here"});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_THAT(*e, ElementsAre("A=1", "B=two words ", "FROM_HOST=here", "C=", "D=x=y"));
}

TEST(RunEnvFile, Errors) {
  EXPECT_THAT(parse_env_file("A=1\n=x\n", {}).error().message(),
              HasSubstr("line 2: no variable name"));
  EXPECT_THAT(parse_env_file("MY VAR=1\n", {}).error().message(), HasSubstr("whitespace"));
}

// ---- resolve_user ----

class ResolveUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    dir_.write("root/etc/passwd",
               "root:x:0:0:root:/root:/bin/sh\n"
               "# a comment\n"
               "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
               "www:x:33:33:www-data:/var/www:/bin/sh\n"
               "broken line\n"
               "app:x:1000:1000::/home/app:/bin/sh\n");
    dir_.write("root/etc/group",
               "root:x:0:root\n"
               "bin:x:1:root,daemon\n"
               "www:x:33:\n"
               "audio:x:29:app\n"
               "video:x:44:www, app\n"
               "app:x:1000:\n");
    fd_ = UniqueFd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }

  oci::User user(const std::string& spec) {
    auto u = resolve_user(spec, fd_.get());
    EXPECT_TRUE(u) << spec << ": " << u.error().message();
    return u ? *u : oci::User{};
  }

  TempDir dir_;
  std::string root_ = dir_.at("root");
  UniqueFd fd_;
};

TEST_F(ResolveUserTest, NameGivesIdsAndSupplementaryGroups) {
  const auto app = user("app");
  EXPECT_EQ(app.uid, 1000u);
  EXPECT_EQ(app.gid, 1000u);
  EXPECT_THAT(app.additional_gids, ElementsAre(29u, 44u));
  const auto www = user("www");
  EXPECT_EQ(www.uid, 33u);
  EXPECT_THAT(www.additional_gids, ElementsAre(44u));
}

TEST_F(ResolveUserTest, EmptyAndNumericUidLookUpTheEntry) {
  for (const char* spec : {"", "0", "root"}) {
    const auto r = user(spec);
    EXPECT_EQ(r.uid, 0u) << spec;
    EXPECT_EQ(r.gid, 0u) << spec;
    EXPECT_THAT(r.additional_gids, ElementsAre(0u, 1u)) << spec;
  }
  const auto n = user("1000");
  EXPECT_EQ(n.gid, 1000u);
  EXPECT_THAT(n.additional_gids, ElementsAre(29u, 44u));
  auto home = lookup_user("www", fd_.get());
  ASSERT_TRUE(home);
  EXPECT_EQ(home->home, "/var/www");
}

TEST_F(ResolveUserTest, NumericUidWithoutEntry) {
  const auto u = user("4242");
  EXPECT_EQ(u.uid, 4242u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_THAT(u.additional_gids, IsEmpty());
  auto home = lookup_user("4242", fd_.get());
  EXPECT_EQ(home->home, "/");
}

TEST_F(ResolveUserTest, ExplicitGroupReplacesPrimaryAndDropsSupplementary) {
  const auto a = user("app:audio");
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.gid, 29u);
  EXPECT_THAT(a.additional_gids, IsEmpty());
  const auto b = user("app:44");
  EXPECT_EQ(b.gid, 44u);
  const auto c = user("4242:5000");
  EXPECT_EQ(c.uid, 4242u);
  EXPECT_EQ(c.gid, 5000u);
}

TEST_F(ResolveUserTest, UnknownNamesUseDockersText) {
  auto u = resolve_user("nobody", fd_.get());
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(), "unable to find user nobody: no matching entries in passwd file");
  auto g = resolve_user("app:wheel", fd_.get());
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message(), "unable to find group wheel: no matching entries in group file");
  EXPECT_THAT(resolve_user("99999999999", fd_.get()).error().message(), HasSubstr("range"));
  EXPECT_FALSE(resolve_user("-1", fd_.get()));
}

TEST_F(ResolveUserTest, MissingPasswdAllowsNumericOnly) {
  fs::remove(dir_.at("root/etc/passwd"));
  fs::remove(dir_.at("root/etc/group"));
  const auto u = user("1000:1000");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1000u);
  EXPECT_EQ(user("").uid, 0u);
  auto named = resolve_user("app", fd_.get());
  ASSERT_FALSE(named);
  EXPECT_THAT(named.error().message(), HasSubstr("unable to find user app"));
}

TEST_F(ResolveUserTest, SymlinkedPasswdStaysInsideTheRoot) {
  // The host side: a file next to the root that a naive open would reach.
  dir_.write("outside", "evil:x:0:0::/:/bin/sh\n");
  fs::remove(dir_.at("root/etc/passwd"));
  ASSERT_EQ(::symlink("/etc/../../outside", dir_.at("root/etc/passwd").c_str()), 0);
  // Inside the root the link resolves to /outside, which does not exist: no entries.
  auto evil = resolve_user("evil", fd_.get());
  ASSERT_FALSE(evil);
  EXPECT_THAT(evil.error().message(), HasSubstr("unable to find user evil"));
  // A relative link climbing out: followed naively from root/etc it reaches the host side's
  // file; inside the root ".." stops at /, so it names /outside of the image too.
  fs::remove(dir_.at("root/etc/passwd"));
  ASSERT_EQ(::symlink("../../outside", dir_.at("root/etc/passwd").c_str()), 0);
  EXPECT_FALSE(resolve_user("evil", fd_.get()));
  // And where the image does have /outside, that is what is read.
  dir_.write("root/outside", "inside:x:7:8::/in:/bin/sh\n");
  const auto in = user("inside");
  EXPECT_EQ(in.uid, 7u);
  EXPECT_EQ(in.gid, 8u);
  EXPECT_FALSE(resolve_user("evil", fd_.get()));
}

TEST_F(ResolveUserTest, RefusesAFifoAsPasswd) {
  fs::remove(dir_.at("root/etc/passwd"));
  ASSERT_EQ(::mkfifo(dir_.at("root/etc/passwd").c_str(), 0644), 0);
  auto u = resolve_user("app", fd_.get());  // must not block on the fifo
  ASSERT_FALSE(u);
  EXPECT_THAT(u.error().message(), HasSubstr("not a regular file"));
}

TEST(ResolveUserNoRoot, WithoutARootOnlyNumbers) {
  auto n = resolve_user("1000:50", -1);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->uid, 1000u);
  EXPECT_EQ(n->gid, 50u);
  EXPECT_FALSE(resolve_user("app", -1));
}

// ---- build_config ----

TEST(BuildConfig, HostnameFromTheName) {
  ConfigContext c = context();
  c.name = "my_app.v2";
  auto b = build_config(options(), ImageDefaults{}, c);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->files.hostname, "my-app.v2\n");
  c.name = "___";
  b = build_config(options(), ImageDefaults{}, c);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->files.hostname, c.id.substr(0, 12) + "\n");
}

TEST(BuildConfig, DefaultsPassTheRuntimesValidator) {
  const BuiltConfig b = build(options());
  const oci::Spec s = runtime_view(b);
  EXPECT_EQ(s.oci_version, "1.0.2");
  EXPECT_EQ(s.root.path, context().rootfs);
  EXPECT_FALSE(s.root.readonly);
  EXPECT_EQ(s.hostname, "web");  // the name, when no --hostname
  EXPECT_EQ(s.annotations.at("forker.container.name"), "web");
  EXPECT_THAT(namespace_types(s), ElementsAre("pid", "ipc", "uts", "mount", "cgroup", "network"));
  EXPECT_EQ(s.linux.cgroups_path, "/forker/x");
  EXPECT_THAT(destinations(s),
              ElementsAre("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                          "/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"));
  EXPECT_THAT(find_mount(s, "/dev/shm")->options, Contains("size=65536k"));
  EXPECT_THAT(find_mount(s, "/sys")->options, Contains("ro"));
  const auto* hosts = find_mount(s, "/etc/hosts");
  EXPECT_EQ(hosts->source, "/var/lib/forker/containers/x/hosts");
  EXPECT_THAT(hosts->options, ElementsAre("rbind", "rprivate"));
  EXPECT_EQ(s.linux.masked_paths.size(), 11u);
  EXPECT_THAT(s.linux.masked_paths, Contains("/sys/devices/virtual/powercap"));
  EXPECT_THAT(s.linux.readonly_paths, Contains("/proc/sysrq-trigger"));
  EXPECT_EQ(s.linux.sysctl.at("net.ipv4.ip_unprivileged_port_start"), "0");
  ASSERT_TRUE(s.process);
  EXPECT_FALSE(s.process->terminal);
  EXPECT_FALSE(s.process->no_new_privileges);
  EXPECT_EQ(b.stop_signal, "SIGTERM");
  EXPECT_THAT(b.args, ElementsAre("sh"));
  EXPECT_THAT(b.named_volumes, IsEmpty());
}

TEST(BuildConfig, ArgsFollowDockersEntrypointAndCmdRules) {
  ImageDefaults img;
  img.entrypoint = {"/docker-entrypoint.sh"};
  img.cmd = {"nginx", "-g", "daemon off;"};
  EXPECT_THAT(build(options({}), img).args,
              ElementsAre("/docker-entrypoint.sh", "nginx", "-g", "daemon off;"));
  EXPECT_THAT(build(options({"echo", "hi"}), img).args,
              ElementsAre("/docker-entrypoint.sh", "echo", "hi"));
  RunOptions ep = options({});
  ep.entrypoint = "/bin/sh";
  EXPECT_THAT(build(ep, img).args, ElementsAre("/bin/sh"));  // the image's Cmd is dropped
  ep.command = {"-c", "true"};
  EXPECT_THAT(build(ep, img).args, ElementsAre("/bin/sh", "-c", "true"));
  RunOptions cleared = options({"ls"});
  cleared.entrypoint = "";
  EXPECT_THAT(build(cleared, img).args, ElementsAre("ls"));
  const BuiltConfig b = build(cleared, img);
  EXPECT_THAT(b.config["process"]["args"], ElementsAre("ls"));
  cleared.command.clear();
  EXPECT_EQ(build_error(cleared, img), "no command specified");
  EXPECT_EQ(build_error(options({})), "no command specified");
}

TEST(BuildConfig, EnvironmentOrderAndOverrides) {
  ImageDefaults img;
  img.env = {"PATH=/opt/bin:/bin", "LANG=C", "DROPME=1"};
  RunOptions o = options();
  o.tty = true;
  o.env = {"LANG=C.UTF-8", "FROM_HOST", "NOT_ON_HOST", "DROPME", "NEW=1"};
  const oci::Spec s = runtime_view(build(o, img));
  EXPECT_THAT(s.process->env,
              ElementsAre("PATH=/opt/bin:/bin", "HOSTNAME=web", "TERM=xterm",
                          "LANG=C.UTF-8", "FROM_HOST=here", "NEW=1", "HOME=/"));
  EXPECT_TRUE(s.process->terminal);
  // Without an image PATH, docker's default; without -t, no TERM.
  const oci::Spec plain = runtime_view(build(options()));
  EXPECT_THAT(plain.process->env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOSTNAME=web", "HOME=/"));
  EXPECT_EQ(build_error([] {
              RunOptions bad = options();
              bad.env = {"=x"};
              return bad;
            }()),
            "-e '=x': invalid environment variable");
}

TEST(BuildConfig, EnvFilesComeBeforeDashE) {
  TempDir dir;
  dir.write("a.env", "# defaults\nMODE=file\nONLY_FILE=1\n");
  RunOptions o = options();
  o.env_files = {dir.at("a.env")};
  o.env = {"MODE=flag"};
  const oci::Spec s = runtime_view(build(o));
  EXPECT_THAT(s.process->env, Contains("MODE=flag"));
  EXPECT_THAT(s.process->env, Contains("ONLY_FILE=1"));
  EXPECT_THAT(s.process->env, Not(Contains("MODE=file")));
  o.env_files = {dir.at("missing.env")};
  EXPECT_THAT(build_error(o), HasSubstr("--env-file '" + dir.at("missing.env") + "'"));
}

TEST(BuildConfig, WorkingDirectory) {
  ImageDefaults img;
  img.working_dir = "/srv";
  EXPECT_EQ(runtime_view(build(options(), img)).process->cwd, "/srv");
  EXPECT_EQ(runtime_view(build(options())).process->cwd, "/");
  RunOptions o = options();
  o.workdir = "/tmp";
  EXPECT_EQ(runtime_view(build(o, img)).process->cwd, "/tmp");
  o.workdir = "tmp";
  EXPECT_THAT(build_error(o), HasSubstr("-w 'tmp'"));
}

TEST(BuildConfig, UserFromFlagOrImageWithHome) {
  TempDir dir;
  dir.write("root/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
  dir.write("root/etc/group", "app:x:1000:\nstaff:x:50:app\n");
  UniqueFd fd(::open(dir.at("root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ConfigContext ctx = context();
  ctx.rootfs_fd = fd.get();
  ImageDefaults img;
  img.user = "app";
  const oci::Spec s = runtime_view(build(options(), img, ctx));
  EXPECT_EQ(s.process->user.uid, 1000u);
  EXPECT_EQ(s.process->user.gid, 1000u);
  EXPECT_THAT(s.process->user.additional_gids, ElementsAre(50u));
  EXPECT_THAT(s.process->env, Contains("HOME=/home/app"));
  RunOptions o = options();
  o.user = "root";
  const oci::Spec r = runtime_view(build(o, img, ctx));
  EXPECT_EQ(r.process->user.uid, 0u);
  EXPECT_THAT(r.process->env, Contains("HOME=/root"));
  o.user = "ghost";
  EXPECT_EQ(build_error(o, img, ctx),
            "unable to find user ghost: no matching entries in passwd file");
}

TEST(BuildConfig, CapabilitiesDefaultAddDrop) {
  const oci::Spec s = runtime_view(build(options()));
  const auto& caps = *s.process->capabilities;
  EXPECT_EQ(caps.bounding, default_capabilities());
  EXPECT_EQ(caps.effective, default_capabilities());
  EXPECT_EQ(caps.permitted, default_capabilities());
  EXPECT_THAT(caps.inheritable, IsEmpty());
  EXPECT_THAT(caps.ambient, IsEmpty());

  RunOptions o = options();
  o.cap_add = {"net_admin", "CAP_CHOWN"};
  o.cap_drop = {"mknod", "chown"};
  const auto tweaked = runtime_view(build(o)).process->capabilities->bounding;
  EXPECT_THAT(tweaked, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(tweaked, Contains("CAP_CHOWN"));  // added after the drops, as docker does
  EXPECT_THAT(tweaked, Not(Contains("CAP_MKNOD")));
  EXPECT_EQ(tweaked.size(), 14u);
}

TEST(BuildConfig, CapabilitiesAllAndErrors) {
  RunOptions none = options();
  none.cap_drop = {"ALL"};
  none.cap_add = {"kill"};
  EXPECT_THAT(runtime_view(build(none)).process->capabilities->bounding, ElementsAre("CAP_KILL"));
  RunOptions all = options();
  all.cap_add = {"ALL"};
  all.cap_drop = {"SYS_ADMIN"};
  const auto every = runtime_view(build(all)).process->capabilities->bounding;
  EXPECT_THAT(every, Contains("CAP_SYS_PTRACE"));
  EXPECT_THAT(every, Not(Contains("CAP_SYS_ADMIN")));
  RunOptions bad = options();
  bad.cap_add = {"CAP_BOGUS"};
  EXPECT_EQ(build_error(bad), "--cap-add 'CAP_BOGUS': unknown capability");
  bad.cap_add.clear();
  bad.cap_drop = {"bogus"};
  EXPECT_EQ(build_error(bad), "--cap-drop 'bogus': unknown capability");
}

TEST(BuildConfig, NonRootKeepsOnlyTheBoundingSet) {
  RunOptions o = options();
  o.user = "1000";
  const auto caps = *runtime_view(build(o)).process->capabilities;
  EXPECT_EQ(caps.bounding, default_capabilities());
  EXPECT_THAT(caps.effective, IsEmpty());
  EXPECT_THAT(caps.permitted, IsEmpty());
}

TEST(BuildConfig, PrivilegedLiftsConfinement) {
  RunOptions o = options();
  o.privileged = true;
  o.security_opts = {"seccomp=/nonexistent.json"};  // ignored, as docker does
  const BuiltConfig b = build(o);
  const oci::Spec s = runtime_view(b);
  EXPECT_THAT(s.process->capabilities->bounding, Contains("CAP_SYS_ADMIN"));
  EXPECT_EQ(s.process->capabilities->bounding, all_capabilities());
  EXPECT_FALSE(s.linux.seccomp);
  EXPECT_THAT(s.linux.masked_paths, IsEmpty());
  EXPECT_THAT(s.linux.readonly_paths, IsEmpty());
  EXPECT_THAT(find_mount(s, "/sys")->options, Not(Contains("ro")));
  ASSERT_TRUE(s.linux.resources);
  ASSERT_EQ(s.linux.resources->devices.size(), 1u);
  EXPECT_TRUE(s.linux.resources->devices[0].allow);
}

TEST(BuildConfig, DefaultSeccompProfileFollowsTheCapabilities) {
  const oci::Spec s = runtime_view(build(options()));
  ASSERT_TRUE(s.linux.seccomp);
  EXPECT_EQ(s.linux.seccomp->default_action, "SCMP_ACT_ERRNO");
  EXPECT_THAT(s.linux.seccomp->architectures, Not(IsEmpty()));
  auto allowed = [](const oci::Spec& spec, const std::string& name) {
    for (const auto& r : spec.linux.seccomp->syscalls)
      if (r.action == "SCMP_ACT_ALLOW" && r.args.empty())
        for (const auto& n : r.names)
          if (n == name) return true;
    return false;
  };
  EXPECT_TRUE(allowed(s, "read"));
  EXPECT_FALSE(allowed(s, "mount"));  // needs CAP_SYS_ADMIN
  RunOptions admin = options();
  admin.cap_add = {"SYS_ADMIN"};
  EXPECT_TRUE(allowed(runtime_view(build(admin)), "mount"));
}

TEST(BuildConfig, SeccompUnconfinedOrFromAFile) {
  RunOptions o = options();
  o.security_opts = {"seccomp=unconfined", "no-new-privileges"};
  const oci::Spec u = runtime_view(build(o));
  EXPECT_FALSE(u.linux.seccomp);
  EXPECT_TRUE(u.process->no_new_privileges);
  EXPECT_THAT(u.linux.masked_paths, Not(IsEmpty()));

  TempDir dir;
  dir.write("p.json", R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]})");
  o.security_opts = {"seccomp=" + dir.at("p.json"), "no-new-privileges:false"};
  const oci::Spec f = runtime_view(build(o));
  ASSERT_TRUE(f.linux.seccomp);
  EXPECT_EQ(f.linux.seccomp->default_action, "SCMP_ACT_ALLOW");
  ASSERT_EQ(f.linux.seccomp->syscalls.size(), 1u);
  EXPECT_THAT(f.linux.seccomp->syscalls[0].names, ElementsAre("chmod"));
  EXPECT_FALSE(f.process->no_new_privileges);

  o.security_opts = {"seccomp=" + dir.at("none.json")};
  EXPECT_THAT(build_error(o), HasSubstr("--security-opt 'seccomp=" + dir.at("none.json")));
  o.security_opts = {"apparmor=myprofile"};
  EXPECT_THAT(build_error(o), HasSubstr("unsupported"));
  o.security_opts = {"systempaths=unconfined"};
  EXPECT_THAT(runtime_view(build(o)).linux.masked_paths, IsEmpty());
}

TEST(BuildConfig, MemoryLimitsAsDocker) {
  RunOptions o = options();
  o.memory = "100m";
  auto mem = *runtime_view(build(o)).linux.resources->memory;
  EXPECT_EQ(mem.limit, 100 << 20);
  EXPECT_EQ(mem.swap, 200 << 20);  // -m alone: as much swap again
  o.memory_swap = "300m";
  EXPECT_EQ(runtime_view(build(o)).linux.resources->memory->swap, 300 << 20);
  o.memory_swap = "-1";
  EXPECT_EQ(runtime_view(build(o)).linux.resources->memory->swap, -1);
  ConfigContext no_swap = context();
  no_swap.swap_accounting = false;
  o.memory_swap.clear();
  auto plain = *runtime_view(build(o, {}, no_swap)).linux.resources->memory;
  EXPECT_EQ(plain.limit, 100 << 20);
  EXPECT_FALSE(plain.swap);
}

TEST(BuildConfig, MemoryErrors) {
  RunOptions o = options();
  o.memory = "lots";
  EXPECT_THAT(build_error(o), HasSubstr("--memory 'lots': invalid size"));
  o.memory = "1m";
  EXPECT_THAT(build_error(o), HasSubstr("6MB"));
  o.memory = "100m";
  o.memory_swap = "50m";
  EXPECT_THAT(build_error(o), HasSubstr("--memory-swap '50m'"));
  o.memory.clear();
  EXPECT_THAT(build_error(o), HasSubstr("needs --memory"));
}

TEST(BuildConfig, CpuAndPids) {
  RunOptions o = options();
  o.cpus = "1.5";
  o.cpu_shares = 512;
  o.pids_limit = 100;
  const auto res = *runtime_view(build(o)).linux.resources;
  EXPECT_EQ(res.cpu->quota, 150000);
  EXPECT_EQ(res.cpu->period, 100000u);
  EXPECT_EQ(res.cpu->shares, 512u);
  EXPECT_EQ(res.pids_limit, 100);
  RunOptions q = options();
  q.cpu_quota = 50000;
  q.cpu_period = 200000;
  q.pids_limit = -1;  // unlimited: nothing written
  const auto qres = *runtime_view(build(q)).linux.resources;
  EXPECT_EQ(qres.cpu->quota, 50000);
  EXPECT_EQ(qres.cpu->period, 200000u);
  EXPECT_FALSE(qres.pids_limit);
  EXPECT_FALSE(qres.memory);
  q.cpus = "1";
  EXPECT_THAT(build_error(q), HasSubstr("conflicts with --cpu-quota"));
  RunOptions bad = options();
  bad.cpus = "x";
  EXPECT_EQ(build_error(bad), "--cpus 'x': not a number");
  bad.cpus.clear();
  bad.cpu_period = 10;
  EXPECT_THAT(build_error(bad), HasSubstr("--cpu-period '10'"));
}

TEST(BuildConfig, LimitsNeedACgroup) {
  ConfigContext ctx = context();
  ctx.cgroups_path.clear();
  const oci::Spec s = runtime_view(build(options(), {}, ctx));
  EXPECT_FALSE(s.linux.resources);
  EXPECT_EQ(s.linux.cgroups_path, "");
  RunOptions o = options();
  o.memory = "100m";
  EXPECT_EQ(build_error(o, {}, ctx),
            "--memory: no cgroup available (rootless without a delegated cgroup)");
  o.memory.clear();
  o.pids_limit = 10;
  EXPECT_THAT(build_error(o, {}, ctx), HasSubstr("--pids-limit: no cgroup"));
}

TEST(BuildConfig, Ulimits) {
  RunOptions o = options();
  o.ulimits = {"nofile=1024:2048", "nproc=64", "nofile=4096"};
  const auto rl = runtime_view(build(o)).process->rlimits;
  ASSERT_EQ(rl.size(), 2u);
  EXPECT_EQ(rl[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(rl[0].soft, 4096u);  // the last one given
  EXPECT_EQ(rl[1].type, "RLIMIT_NPROC");
  o.ulimits = {"foo=1"};
  EXPECT_EQ(build_error(o), "--ulimit 'foo=1': unknown resource");
}

TEST(BuildConfig, VolumesAndTmpfs) {
  RunOptions o = options();
  o.volumes = {"/srv/www:/www:ro", "pg:/var/lib/pg", "/cache"};
  o.tmpfs = {"/run:size=1m", "/dev/shm:size=128m"};
  ImageDefaults img;
  img.volumes = {"/var/lib/pg", "/data"};  // /var/lib/pg is covered by -v
  const BuiltConfig b = build(o, img);
  const oci::Spec s = runtime_view(b);
  const auto* www = find_mount(s, "/www");
  ASSERT_NE(www, nullptr);
  EXPECT_EQ(www->type, "bind");
  EXPECT_EQ(www->source, "/srv/www");
  EXPECT_THAT(www->options, ElementsAre("rbind", "rprivate", "ro"));
  EXPECT_EQ(find_mount(s, "/var/lib/pg")->source, "/var/lib/forker/volumes/pg/_data");
  ASSERT_EQ(b.named_volumes.size(), 3u);
  EXPECT_EQ(b.named_volumes[0], "pg");
  ASSERT_EQ(b.anonymous_volumes.size(), 2u);
  for (const auto& name : b.anonymous_volumes) {
    EXPECT_EQ(name.size(), 64u);
    EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), std::string::npos);
  }
  EXPECT_NE(b.anonymous_volumes[0], b.anonymous_volumes[1]);
  EXPECT_EQ(find_mount(s, "/cache")->source,
            "/var/lib/forker/volumes/" + b.anonymous_volumes[0] + "/_data");
  EXPECT_EQ(find_mount(s, "/data")->source,
            "/var/lib/forker/volumes/" + b.anonymous_volumes[1] + "/_data");
  EXPECT_THAT(find_mount(s, "/run")->options, ElementsAre("noexec", "nosuid", "nodev", "size=1m"));
  // --tmpfs /dev/shm replaces the default one rather than stacking on it.
  int shm = 0;
  for (const auto& m : s.mounts) shm += m.destination == "/dev/shm";
  EXPECT_EQ(shm, 1);
  EXPECT_THAT(find_mount(s, "/dev/shm")->options, Contains("size=128m"));
  // User mounts come after the defaults and /etc files, in the order given.
  const auto d = destinations(s);
  EXPECT_EQ(d.back(), "/dev/shm");
  EXPECT_LT(std::find(d.begin(), d.end(), "/etc/resolv.conf"),
            std::find(d.begin(), d.end(), "/www"));
}

TEST(BuildConfig, VolumeErrorsAndPropagation) {
  RunOptions o = options();
  o.volumes = {"rel/x:/x"};
  EXPECT_EQ(build_error(o), "-v 'rel/x:/x': the host path must be absolute");
  o.volumes = {"/a:/x", "b1:/x/"};
  EXPECT_THAT(build_error(o), HasSubstr("duplicate mount point /x"));
  o.volumes = {"/a:/x"};
  o.tmpfs = {"/x"};
  EXPECT_THAT(build_error(o), HasSubstr("--tmpfs '/x': duplicate mount point"));
  o.tmpfs.clear();
  o.volumes = {"/mnt:/mnt:rshared"};
  EXPECT_EQ(runtime_view(build(o)).linux.rootfs_propagation, "rshared");
  // A user file over /etc/hosts wins over the generated one.
  o.volumes = {"/srv/hosts:/etc/hosts:ro"};
  const oci::Spec s = runtime_view(build(o));
  EXPECT_EQ(find_mount(s, "/etc/hosts")->source, "/srv/hosts");
}

TEST(BuildConfig, ReadOnlyRoot) {
  RunOptions o = options();
  o.read_only = true;
  const oci::Spec s = runtime_view(build(o));
  EXPECT_TRUE(s.root.readonly);
  EXPECT_THAT(find_mount(s, "/etc/resolv.conf")->options, ElementsAre("rbind", "rprivate", "ro"));
}

TEST(BuildConfig, Rootless) {
  ConfigContext ctx = context();
  ctx.rootless = true;
  ctx.host_uid = 1000;
  ctx.host_gid = 1001;
  ctx.cgroups_path.clear();
  const oci::Spec s = runtime_view(build(options(), {}, ctx));
  EXPECT_THAT(namespace_types(s), Contains("user"));
  ASSERT_EQ(s.linux.uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux.uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(s.linux.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(s.linux.uid_mappings[0].size, 1u);
  EXPECT_EQ(s.linux.gid_mappings[0].host_id, 1001u);
  EXPECT_EQ(s.linux.cgroups_path, "");
  EXPECT_FALSE(s.linux.resources);
  EXPECT_EQ(find_mount(s, "/sys")->type, "none");
  EXPECT_EQ(find_mount(s, "/sys/fs/cgroup"), nullptr);
  EXPECT_THAT(find_mount(s, "/dev/pts")->options, Not(Contains("gid=5")));
  // With a delegated cgroup, limits apply, but no device rules (no device controller to own).
  ctx.cgroups_path = "/user.slice/forker/x";
  RunOptions o = options();
  o.pids_limit = 5;
  const auto res = *runtime_view(build(o, {}, ctx)).linux.resources;
  EXPECT_EQ(res.pids_limit, 5);
  EXPECT_THAT(res.devices, IsEmpty());
}

TEST(BuildConfig, NetworkModes) {
  RunOptions o = options();
  ConfigContext ctx = context();
  ctx.network_mode = "host";
  ctx.host_resolv_conf = "nameserver 127.0.0.53\noptions edns0\n";
  const BuiltConfig b = build(o, {}, ctx);
  const oci::Spec s = runtime_view(b);
  EXPECT_THAT(namespace_types(s), Not(Contains("network")));
  EXPECT_THAT(namespace_types(s), Contains("uts"));
  EXPECT_TRUE(s.linux.sysctl.empty());
  EXPECT_EQ(b.files.resolv_conf, ctx.host_resolv_conf);  // the host's resolver is reachable
  // container:NAME and ns:PATH join a namespace by path; its sysctls are not ours to set.
  ctx.network_mode = "container";
  ctx.netns_path = "/proc/42/ns/net";
  const oci::Spec joined = runtime_view(build(o, {}, ctx));
  ASSERT_THAT(namespace_types(joined), Contains("network"));
  for (const auto& n : joined.linux.namespaces) {
    if (n.type == "network") { EXPECT_EQ(n.path, "/proc/42/ns/net"); }
  }
  EXPECT_TRUE(joined.linux.sysctl.empty());
  ctx.network_mode = "slirp4netns";
  ctx.netns_path.clear();
  EXPECT_TRUE(build(o, {}, ctx).files.resolv_conf.starts_with("nameserver 10.0.2.3\n"));
  ctx.network_mode = "bridge";
  const oci::Spec bridged = runtime_view(build(o, {}, ctx));
  EXPECT_EQ(bridged.linux.sysctl.at("net.ipv4.ip_unprivileged_port_start"), "0");
  EXPECT_NE(build(o, {}, ctx).files.resolv_conf.find("nameserver"), std::string::npos);
}

TEST(BuildConfig, EtcFiles) {
  RunOptions o = options();
  o.hostname = "db.local";
  ConfigContext ctx = context();
  ctx.host_resolv_conf =
      "# generated\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.168.1.1\n"
      "search lan\noptions ndots:2\n";
  const BuiltConfig b = build(o, {}, ctx);
  EXPECT_EQ(b.files.hostname, "db.local\n");
  EXPECT_EQ(runtime_view(b).hostname, "db.local");
  EXPECT_THAT(b.files.hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(b.files.hosts, HasSubstr("::1\tlocalhost ip6-localhost ip6-loopback\n"));
  EXPECT_THAT(b.files.hosts, Not(HasSubstr("db.local")));
  EXPECT_EQ(b.files.resolv_conf,
            "# generated\nnameserver 192.168.1.1\nsearch lan\noptions ndots:2\n");
  ctx.host_resolv_conf = "nameserver 127.0.0.53\nsearch lan\n";
  EXPECT_EQ(build(o, {}, ctx).files.resolv_conf,
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  ctx.host_resolv_conf.clear();
  EXPECT_EQ(build(o, {}, ctx).files.resolv_conf, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  o.hostname = "bad_name!";
  EXPECT_THAT(build_error(o), HasSubstr("--hostname 'bad_name!'"));
}

TEST(BuildConfig, StopSignal) {
  ImageDefaults img;
  EXPECT_EQ(build(options(), img).stop_signal, "SIGTERM");
  img.stop_signal = "SIGQUIT";
  EXPECT_EQ(build(options(), img).stop_signal, "SIGQUIT");
  RunOptions o = options();
  o.stop_signal = "SIGINT";
  EXPECT_EQ(build(o, img).stop_signal, "SIGINT");
  o.stop_signal = "SIGNOPE";
  EXPECT_EQ(build_error(o, img), "--stop-signal 'SIGNOPE': invalid signal");
  img.stop_signal = "BOGUS";
  EXPECT_THAT(build_error(options(), img), HasSubstr("image StopSignal 'BOGUS'"));
}

}  // namespace
}  // namespace forker::engine
