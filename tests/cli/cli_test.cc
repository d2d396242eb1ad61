// The shmdict tool run as a user would: every subcommand's happy path and its errors,
// the exit codes, binary-safe dump and load, watch seeing another process's writes,
// and no progress output when stderr is a pipe. What the tool wrote is checked through
// the C++ API, independently of the tool's own encodings.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/shmdict.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_runner.h"

namespace shmdict::cli::testing {
namespace {

using namespace std::string_literals;

const std::vector<std::string> kCommands = {
    "create", "put",  "get",  "del",  "ttl",   "touch", "ls", "stats",
    "watch",  "dump", "load", "sweep", "clear", "verify", "rm"};

// Creates a table through the tool.
void CreateTable(const std::string& path, uint64_t capacity = 100, uint32_t max_key = 16,
                 uint32_t max_value = 64) {
  const CliResult r = Cli({"create", path, "--capacity", std::to_string(capacity),
                           "--max_key_size", std::to_string(max_key), "--max_value_size",
                           std::to_string(max_value)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

Dict OpenDict(const std::string& path, bool allow_group = false) {
  OpenOptions o;
  o.allow_group = allow_group;
  absl::StatusOr<Dict> d = Dict::Open(path, o);
  EXPECT_TRUE(d.ok()) << d.status();
  return std::move(*d);
}

std::map<std::string, std::string> Contents(const std::string& path, bool allow_group = false) {
  std::map<std::string, std::string> m;
  OpenDict(path, allow_group).ForEach([&](std::string_view k, std::string_view v, uint64_t) {
    m.emplace(std::string(k), std::string(v));
    return true;
  });
  return m;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Expects a usage or other error: exit 2, one line on stderr naming the command.
void ExpectError(const CliResult& r, const std::string& command, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("shmdict: " + command + ": ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "wanted '" << fragment << "' in " << r.err;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The names in a directory, sorted, without "." and "..".
std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str()); d != nullptr) {
    while (const dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        names.push_back(e->d_name);
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() { EXPECT_EQ(mkdir(path().c_str(), 0700), 0) << path(); }
  ~TempDir() { RemoveTree(path()); }
  const std::string& path() const { return temp_.path(); }

 private:
  static void RemoveTree(const std::string& path) {
    for (const std::string& name : DirEntries(path)) {
      const std::string child = path + "/" + name;
      struct stat s;
      if (lstat(child.c_str(), &s) == 0 && S_ISDIR(s.st_mode)) {
        RemoveTree(child);
      } else {
        unlink(child.c_str());
      }
    }
    rmdir(path.c_str());
  }
  TempPath temp_;
};

// For a child that might read without end: at most 1 GiB of address space, so that
// it fails (std::bad_alloc) before it takes the machine's memory. Not under the
// sanitizers, whose shadow memory reserves terabytes of address space.
void LimitAddressSpace() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  const rlimit limit = {rlim_t{1} << 30, rlim_t{1} << 30};
  setrlimit(RLIMIT_AS, &limit);
#endif
}

// Files the child writes may not grow past 4 KiB; a write past that fails with EFBIG
// (SIGXFSZ is ignored, instead of killing the child).
[[maybe_unused]] void LimitFileSize() {  // unused under TSan (see its test)
  signal(SIGXFSZ, SIG_IGN);
  const rlimit limit = {4096, 4096};
  setrlimit(RLIMIT_FSIZE, &limit);
}

TEST(CliHelpTest, EveryCommandHasHelpAndUnknownOnesFail) {
  CliResult r = Cli({"help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const std::string& c : kCommands) {
    EXPECT_NE(r.out.find("\n  " + c + " "), std::string::npos) << c << " missing in " << r.out;
    CliResult h = Cli({c, "--help"});
    EXPECT_EQ(h.exit_code, 0) << c;
    EXPECT_EQ(h.out.rfind("usage: shmdict " + c, 0), 0u) << h.out;
    EXPECT_NE(h.out.find("Exit codes"), std::string::npos) << h.out;
  }
  EXPECT_EQ(Cli({"help", "watch"}).out, Cli({"watch", "-h"}).out);
  r = Cli({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage: shmdict COMMAND"), std::string::npos) << r.err;
  r = Cli({"frobnicate", "t"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "shmdict: unknown command 'frobnicate' (see 'shmdict help')\n");
  EXPECT_EQ(Cli({"help", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(Cli({"--json", "get", "t", "k"}).exit_code, 2);
}

TEST(CliFlagsTest, BadFlagsAreUsageErrors) {
  TempPath t;
  CreateTable(t.path());
  ExpectError(Cli({"get", t.path(), "k", "--frob"}), "get", "unknown flag --frob");
  // A flag of another command.
  ExpectError(Cli({"get", t.path(), "k", "--prefix=a"}), "get", "unknown flag --prefix");
  ExpectError(Cli({"get", t.path(), "k", "--json=maybe"}), "get", "bad value 'maybe' for --json");
  ExpectError(Cli({"ls", t.path(), "--limit"}), "ls", "--limit needs a value");
  ExpectError(Cli({"ls", t.path(), "--limit=-3"}), "ls", "bad value '-3' for --limit");
  ExpectError(Cli({"ls", t.path(), "--nolimit"}), "ls", "unknown flag --nolimit");
  ExpectError(Cli({"ls", t.path(), "--nojson=1"}), "ls", "--nojson takes no value");
  ExpectError(Cli({"get", t.path()}), "get", "expected TABLE KEY, got 1 argument");
  ExpectError(Cli({"stats", t.path(), "extra"}), "stats", "expected TABLE, got 2 arguments");
  // --noflag and flags after arguments work.
  CliResult r = Cli({"ls", t.path(), "--json", "--nojson"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliCreateTest, CreatesWithTheGivenSizesAndChecksThem) {
  TempPath t;
  CliResult r = Cli({"create", t.path(), "--capacity=1000", "--max_key_size=32",
                     "--max_value_size=128"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("created " + t.path(), 0), 0u) << r.out;
  const Stats st = OpenDict(t.path()).GetStats();
  EXPECT_EQ(st.capacity, 1000u);
  EXPECT_EQ(st.max_key_size, 32u);
  EXPECT_EQ(st.max_value_size, 128u);
  struct stat s;
  ASSERT_EQ(stat(t.path().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
  // Again with the same sizes: left as it is.
  r = Cli({"create", t.path(), "--capacity=1000", "--max_key_size=32", "--max_value_size=128"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("left as is"), std::string::npos) << r.out;
  ExpectError(Cli({"create", t.path(), "--capacity=1000", "--max_key_size=32",
                   "--max_value_size=128", "--exclusive"}),
              "create", "exists");
  ExpectError(Cli({"create", t.path(), "--capacity=999", "--max_key_size=32",
                   "--max_value_size=128"}),
              "create", "unlike the options given");
}

TEST(CliCreateTest, BadOptionsAreRefused) {
  TempPath t;
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=8"}), "create",
              "--capacity, --max_key_size and --max_value_size are required");
  ExpectError(Cli({"create", t.path(), "--capacity=ten", "--max_key_size=8",
                   "--max_value_size=8"}),
              "create", "bad value 'ten' for --capacity");
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                   "--max_value_size=8", "--mode=rw"}),
              "create", "not an octal file mode");
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                   "--max_value_size=8", "--mode=0666"}),
              "create", "world-writable");
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                   "--max_value_size=8", "--mode=0660"}),
              "create", "allow-group");
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=100000",
                   "--max_value_size=8"}),
              "create", "max_key_size");
  ExpectError(Cli({"create", "/dev/shm/no-such-dir-for-shmdict/t", "--capacity=10",
                   "--max_key_size=8", "--max_value_size=8"}),
              "create", "does not exist");
  EXPECT_NE(access(t.path().c_str(), F_OK), 0);  // nothing was created
  CliResult r = Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                     "--max_value_size=8", "--mode=0640"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat s;
  ASSERT_EQ(stat(t.path().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0640u);
  TempPath g;
  r = Cli({"create", g.path(), "--capacity=10", "--max_key_size=8", "--max_value_size=8",
           "--mode=0660", "--allow_group"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(stat(g.path().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0660u);
}

TEST(CliCreateTest, ModesInMessagesAreOctal) {
  TempPath t;
  ExpectError(Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                   "--max_value_size=8", "--mode=1777"}),
              "create", "--mode: 01777 has bits outside 0777");
  ExpectError(Cli({"load", "--create", "--mode=4600", t.path()},
                  "{\"key\":\"k\",\"value\":\"v\"}\n"),
              "load", "--mode: 04600 has bits outside 0777");
  EXPECT_NE(access(t.path().c_str(), F_OK), 0);  // nothing was created
}

// A table shared by a group (mode 0660): every command that opens a table refuses it
// without --allow_group, with a message that names the option, and opens it with it.
TEST(CliGroupTest, EveryCommandOpensAGroupWritableTableWithAllowGroup) {
  TempPath t;
  CliResult r = Cli({"create", t.path(), "--capacity=10", "--max_key_size=8",
                     "--max_value_size=8", "--mode=0660", "--allow_group"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string line = "{\"key\":\"k2\",\"value\":\"v2\"}\n";
  const std::string refusal =
      "is group-writable; refusing to use it without the allow-group option";
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"put", t.path(), "k", "v"}, ""},
      {{"get", t.path(), "k"}, ""},
      {{"del", t.path(), "k"}, ""},
      {{"ttl", t.path(), "k"}, ""},
      {{"touch", t.path(), "k"}, ""},
      {{"ls", t.path()}, ""},
      {{"stats", t.path()}, ""},
      {{"watch", "--timeout_ms=0", t.path(), "k"}, ""},
      {{"dump", t.path()}, ""},
      {{"load", t.path()}, line},
      {{"load", "--create", t.path()}, line},
      {{"verify", t.path()}, ""},
      {{"verify", "--repair", t.path()}, ""},
      {{"sweep", t.path()}, ""},
      {{"clear", t.path()}, ""},
  };
  for (const auto& [args, input] : refused) {
    ExpectError(Cli(args, input), args[0], t.path() + " " + refusal);
    EXPECT_NE(Cli({args[0], "--help"}).out.find("\n  --allow_group "), std::string::npos)
        << args[0];
  }
  EXPECT_TRUE(Contents(t.path(), /*allow_group=*/true).empty());

  r = Cli({"put", "--allow_group", t.path(), "k", "v"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"get", "--allow_group", t.path(), "k"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "v");
  r = Cli({"ls", "--allow_group", "--values", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "k\tv\n");
  r = Cli({"stats", "--allow_group", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("entries: 1,"), std::string::npos) << r.out;
  r = Cli({"watch", "--allow_group", "--timeout_ms=0", t.path(), "k"});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // it ran: printed the value, then timed out
  EXPECT_EQ(r.out, "v\n");
  r = Cli({"dump", "--allow_group", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"key\":\"k\",\"value\":\"v\",", 0), 0u) << r.out;
  r = Cli({"load", "--allow_group", t.path()}, line);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"load", "--create", "--allow_group", t.path()},
          "{\"key\":\"k3\",\"value\":\"v3\"}\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "loaded 1 entry into " + t.path() + "\n");
  r = Cli({"verify", "--allow_group", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Cli({"verify", "--repair", "--allow_group", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Cli({"del", "--allow_group", t.path(), "k"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Contents(t.path(), /*allow_group=*/true),
            (std::map<std::string, std::string>{{"k2", "v2"}, {"k3", "v3"}}));
  struct stat s;
  ASSERT_EQ(stat(t.path().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0660u);  // opening never changes the mode
}

TEST(CliKeyValueTest, PutGetDel) {
  TempPath t;
  CreateTable(t.path());
  CliResult r = Cli({"put", t.path(), "EURUSD", "1.0842"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = Cli({"get", t.path(), "EURUSD"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1.0842");  // raw: no newline added when stdout is not a terminal
  EXPECT_EQ(r.err, "");
  r = Cli({"put", "--json", t.path(), "EURUSD", "1.0843"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"key\":\"EURUSD\",\"version\":2}\n");
  r = Cli({"get", "--json", t.path(), "EURUSD"});
  EXPECT_EQ(r.out, "{\"key\":\"EURUSD\",\"value\":\"1.0843\",\"version\":2}\n");
  // Arguments that look like flags: single-dash ones are arguments; "--" ends flags.
  ASSERT_EQ(Cli({"put", t.path(), "neg", "-5"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", t.path(), "--", "--dashes", "v"}).exit_code, 0);
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{
                                    {"EURUSD", "1.0843"}, {"neg", "-5"}, {"--dashes", "v"}}));
  r = Cli({"del", t.path(), "EURUSD"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"get", t.path(), "EURUSD"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "shmdict: get: key \"EURUSD\" not found\n");
  r = Cli({"del", t.path(), "EURUSD"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: del: key \"EURUSD\" not found\n");
  EXPECT_EQ(Cli({"get", "--json", t.path(), "EURUSD"}).exit_code, 1);
}

TEST(CliKeyValueTest, BinaryValuesAndKeys) {
  TempPath t;
  CreateTable(t.path());
  const std::string value = "a\0b\xff\n\x80z"s;
  CliResult r = Cli({"put", t.path(), "stdin", "--value_file=-"}, value);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string file = t.path() + ".value";
  {
    std::ofstream(file, std::ios::binary) << "file\0bytes"s;
  }
  r = Cli({"put", t.path(), "file", "--value_file", file});
  unlink(file.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Key "k\0\xff" in base64.
  r = Cli({"put", "--key_b64", t.path(), "awD/", "binary key"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Contents(t.path()),
            (std::map<std::string, std::string>{
                {"stdin", value}, {"file", "file\0bytes"s}, {"k\0\xff"s, "binary key"}}));
  r = Cli({"get", t.path(), "stdin"});
  EXPECT_EQ(r.out, value);
  r = Cli({"get", "--key_b64", t.path(), "awD/"});
  EXPECT_EQ(r.out, "binary key");
  r = Cli({"get", "--json", t.path(), "stdin"});
  EXPECT_EQ(r.out, "{\"key\":\"stdin\",\"value_b64\":\"YQBi/wqAeg==\",\"version\":1}\n");
  ExpectError(Cli({"get", "--key_b64", t.path(), "not base64!"}), "get", "not valid base64");
  ExpectError(Cli({"put", t.path(), "k", "v", "--value_file=-"}), "put",
              "VALUE and --value_file exclude each other");
  ExpectError(Cli({"put", t.path(), "k"}), "put", "expected TABLE KEY VALUE, or --value_file");
  ExpectError(Cli({"put", t.path(), "k", "--value_file=/nonexistent/v"}), "put",
              "/nonexistent/v: No such file or directory");
}

TEST(CliKeyValueTest, ValueFileIsReadOnlyUpToTheTablesMaximum) {
  TempPath t;
  CreateTable(t.path(), /*capacity=*/10, /*max_key=*/8, /*max_value=*/64);
  // An endless input: put reads one byte more than the maximum, then gives up.
  CliProcess endless({"put", t.path(), "k", "--value_file=/dev/zero"}, LimitAddressSpace);
  CliResult r = endless.Finish("", /*timeout_ms=*/60000);
  EXPECT_FALSE(r.timed_out);
  ExpectError(r, "put",
              "key \"k\": the value in /dev/zero is too big: over the table's maximum of 64 "
              "bytes");
  ExpectError(Cli({"put", t.path(), "k", "--value_file=-"}, std::string(1 << 20, 'x')), "put",
              "key \"k\": the value on stdin is too big: over the table's maximum of 64 bytes");
  // One byte over the maximum, and exactly the maximum.
  const std::string file = t.path() + ".value";
  WriteFile(file, std::string(65, 'v'));
  ExpectError(Cli({"put", t.path(), "k", "--value_file", file}), "put",
              "the value in " + file + " is too big");
  WriteFile(file, std::string(64, 'v'));
  r = Cli({"put", t.path(), "k", "--value_file", file});
  unlink(file.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Contents(t.path()),
            (std::map<std::string, std::string>{{"k", std::string(64, 'v')}}));
}

TEST(CliKeyValueTest, RefusedWrites) {
  TempPath t;
  CreateTable(t.path(), /*capacity=*/1, /*max_key=*/8, /*max_value=*/8);
  ExpectError(Cli({"put", t.path(), "123456789", "v"}), "put",
              "key \"123456789\": key of 9 bytes is over the table's maximum of 8");
  ExpectError(Cli({"put", t.path(), "k", "123456789"}), "put",
              "value of 9 bytes is over the table's maximum of 8");
  ExpectError(Cli({"get", t.path(), "123456789"}), "get",
              "key of 9 bytes is over the table's maximum of 8");
  ExpectError(Cli({"del", t.path(), "123456789"}), "del", "over the table's maximum of 8");
  ExpectError(Cli({"watch", t.path(), "123456789"}), "watch", "over the table's maximum of 8");
  ExpectError(Cli({"ttl", t.path(), "123456789"}), "ttl",
              "key of 9 bytes is over the table's maximum of 8");
  ExpectError(Cli({"touch", t.path(), "123456789"}), "touch", "over the table's maximum of 8");
  // Fill the table through the API, then one more through the tool.
  Dict d = OpenDict(t.path());
  int n = 0;
  while (d.Put("k" + std::to_string(n), "v").ok()) ++n;
  ASSERT_GT(n, 0);
  ExpectError(Cli({"put", t.path(), "k" + std::to_string(n), "v"}), "put", "full");
}

TEST(CliKeyValueTest, MissingTablesAndFilesThatAreNotTables) {
  TempPath missing;
  for (const std::string& c : {"get"s, "del"s, "watch"s, "ttl"s, "touch"s}) {
    ExpectError(Cli({c, missing.path(), "k"}), c, "no table at " + missing.path());
  }
  ExpectError(Cli({"put", missing.path(), "k", "v"}), "put", "no table at");
  for (const std::string& c : {"ls"s, "stats"s, "dump"s, "rm"s, "sweep"s, "clear"s}) {
    ExpectError(Cli({c, missing.path()}), c, "no table at " + missing.path());
  }
  ExpectError(Cli({"load", missing.path()}, "{\"key\":\"k\",\"value\":\"v\"}\n"), "load",
              "--create");
  EXPECT_EQ(Cli({"verify", missing.path()}).exit_code, 2);
  // A name without '/' is a table in /dev/shm.
  const std::string name = missing.path().substr(strlen("/dev/shm/"));
  ExpectError(Cli({"get", name, "k"}), "get", "no table at " + missing.path());

  TempPath file;
  {
    std::ofstream(file.path()) << std::string(8192, 'x');
  }
  ExpectError(Cli({"get", file.path(), "k"}), "get", "not a shmdict file");
  ExpectError(Cli({"ls", file.path()}), "ls", "not a shmdict file");
  ExpectError(Cli({"rm", file.path()}), "rm", "not a shmdict file; not removing it");
  EXPECT_EQ(access(file.path().c_str(), F_OK), 0);
  CliResult r = Cli({"verify", file.path()});
  EXPECT_EQ(r.exit_code, 1);  // verify calls a bad file damage
  EXPECT_NE(r.out.find("NOT A VALID TABLE"), std::string::npos) << r.out;

  TempPath dir;
  ASSERT_EQ(mkdir(dir.path().c_str(), 0700), 0);
  ExpectError(Cli({"stats", dir.path()}), "stats", "is not a regular file");
}

// A file whose size says more than a read of it gives is not a valid table (kBadFile),
// not an OS error with errno 0 ("Success"). A sysfs attribute is such a file (4096
// bytes by stat, a few by read); a table truncated between the open's fstat and its
// read of the header is another.
// DISABLED_ until core/table.cc's ValidateFile treats a short pread of the header as
// kBadFile; run it with --gtest_also_run_disabled_tests.
TEST(CliOpenTest, AShortHeaderReadIsABadFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the sysfs files it opens are root's";
  std::string file;
  for (const char* f : {"/sys/kernel/profiling", "/sys/kernel/mm/transparent_hugepage/enabled",
                        "/sys/power/state", "/sys/kernel/uevent_seqnum"}) {
    struct stat s;
    if (stat(f, &s) != 0 || !S_ISREG(s.st_mode) || s.st_size < 4096 || s.st_uid != 0 ||
        (s.st_mode & 022) != 0) {
      continue;
    }
    const std::string contents = ReadFile(f);
    if (!contents.empty() && contents.size() < 4096) {
      file = f;
      break;
    }
  }
  if (file.empty()) GTEST_SKIP() << "no sysfs attribute file to read here";
  CliResult r = Cli({"verify", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // not a valid table: damage, not an error
  EXPECT_EQ(r.out.rfind(file + ": NOT A VALID TABLE: ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("Success"), std::string::npos) << r.out;
  r = Cli({"stats", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Success"), std::string::npos) << r.err;
}

TEST(CliLsTest, ListsWithPrefixValuesLimitAndEscapes) {
  TempPath t;
  CreateTable(t.path());
  {
    Dict d = OpenDict(t.path());
    ASSERT_TRUE(d.Put("user:1", "Ada").ok());
    ASSERT_TRUE(d.Put("user:2", "Grace\nHopper").ok());
    ASSERT_TRUE(d.Put("job:1", "x").ok());
    ASSERT_TRUE(d.Put("bin\0\xff\\"s, "\t").ok());
  }
  CliResult r = Cli({"ls", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"bin\\x00\\xff\\\\", "job:1", "user:1", "user:2"}));
  r = Cli({"ls", "--prefix=user:", "--values", t.path()});
  lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"user:1\tAda", "user:2\tGrace\\nHopper"}));
  r = Cli({"ls", "--limit=2", t.path()});
  EXPECT_EQ(Lines(r.out).size(), 2u);
  r = Cli({"ls", "--prefix=nothing", t.path()});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  r = Cli({"ls", "--prefix=nothing", "--json", t.path()});
  EXPECT_EQ(r.out, "[]\n");
  r = Cli({"ls", "--prefix=job", "--values", "--json", t.path()});
  EXPECT_EQ(r.out, "[\n{\"key\":\"job:1\",\"value\":\"x\",\"version\":" +
                       std::to_string(OpenDict(t.path()).Version("job:1")) + "}\n]\n");
}

TEST(CliStatsTest, ShowsLayoutFillAndLiveAndDeadProcesses) {
  TempPath t;
  CreateTable(t.path(), 1000, 16, 64);
  // This process writes (and stays: a live entry); a child writes and exits (a dead one).
  Dict d = OpenDict(t.path());
  ASSERT_TRUE(d.Put("mine", "1").ok());
  const pid_t child = fork();
  if (child == 0) {
    absl::StatusOr<Dict> c = Dict::Open(t.path(), {});
    _exit(c.ok() && c->Put("child's", "2").ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CliResult r = Cli({"stats", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Stats st = d.GetStats();
  EXPECT_NE(r.out.find("capacity 1000, " + std::to_string(st.bucket_count) + " buckets x 16 slots = " +
                       std::to_string(st.slot_count) + " slots"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("entries: 2,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("processes: 1 live, 1 dead"), std::string::npos) << r.out;
  std::string mine, theirs;
  for (const std::string& line : Lines(r.out)) {
    std::istringstream fields(line);
    std::string entry, pid;
    fields >> entry >> pid;
    if (pid == std::to_string(getpid())) mine = line;
    if (pid == std::to_string(child)) theirs = line;
  }
  EXPECT_NE(mine.find(" live"), std::string::npos) << r.out;
  EXPECT_NE(theirs.find(" dead"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recoveries: 0"), std::string::npos) << r.out;
  // The fill histogram: its bucket counts add up to the bucket count.
  uint64_t buckets = 0;
  bool in_fill = false;
  for (const std::string& line : Lines(r.out)) {
    if (line.find("bucket fill") != std::string::npos) {
      in_fill = true;
      continue;
    }
    if (in_fill && line.find(':') != std::string::npos && line.rfind("    ", 0) == 0) {
      buckets += std::stoull(line.substr(line.find(':') + 1));
    } else if (in_fill) {
      in_fill = false;
    }
  }
  EXPECT_EQ(buckets, st.bucket_count) << r.out;
}

TEST(CliWatchTest, SeesChangesMadeByAnotherProcess) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_EQ(Cli({"put", t.path(), "price", "1.00"}).exit_code, 0);
  CliProcess watch({"watch", "--count=3", "--timeout_ms=60000", t.path(), "price"});
  EXPECT_EQ(watch.ReadLine(), "1.00\n");
  // Each write comes from another process (the tool, then this test), and waits for the
  // watcher to print the previous one, so no change is coalesced with the next.
  ASSERT_EQ(Cli({"put", t.path(), "price", "1.01"}).exit_code, 0);
  EXPECT_EQ(watch.ReadLine(), "1.01\n");
  {
    Dict d = OpenDict(t.path());
    ASSERT_TRUE(d.Put("price", "a\tb").ok());
    EXPECT_EQ(watch.ReadLine(), "a\\tb\n");
    ASSERT_TRUE(d.Erase("price").ok());
  }
  EXPECT_EQ(watch.ReadLine(), "(absent)\n");
  const CliResult r = watch.Finish();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliWatchTest, TimesOutWithExitOne) {
  TempPath t;
  CreateTable(t.path());
  CliResult r = Cli({"watch", "--timeout_ms=50", t.path(), "quiet"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "(absent)\n");
  EXPECT_EQ(r.err, "shmdict: watch: no change of key \"quiet\" within 50 ms\n");
  ASSERT_EQ(Cli({"put", t.path(), "k", "v"}).exit_code, 0);
  r = Cli({"watch", "--count=2", "--timeout_ms=50", "--json", t.path(), "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "{\"key\":\"k\",\"value\":\"v\",\"version\":1}\n");
  EXPECT_NE(r.err.find("saw 0 of 2 changes"), std::string::npos) << r.err;
  ExpectError(Cli({"watch", "--timeout_ms=-5", t.path(), "k"}), "watch", "--timeout_ms");
}

// Entries that exercise every encoding: text, escapes, NUL bytes, invalid UTF-8,
// empty values, the maximum sizes, and random bytes.
std::map<std::string, std::string> AwkwardEntries(uint32_t max_key, uint32_t max_value) {
  std::map<std::string, std::string> m = {
      {"plain", "text"},
      {"quote\"back\\slash", "line\nbreak\ttab\rcr"},
      {"caf\xc3\xa9 \xe2\x82\xac", "\xf0\x9f\x98\x80"},
      {"\0"s, "\0\0\0"s},
      {"nul\0inside"s, "invalid \xff\xfe utf-8"},
      {"\xc0\xaf", "overlong"},
      {"empty value", ""},
      {"esc\x1b[31m", "\x7f\xc2\x85"},
      {std::string(max_key, 'K'), std::string(max_value, '\xee')},
  };
  std::mt19937_64 rng(20240501);
  while (m.size() < 300) {
    std::string k(1 + rng() % max_key, '\0'), v(rng() % (max_value + 1), '\0');
    for (char& c : k) c = char(rng());
    for (char& c : v) c = char(rng());
    m.emplace(k, v);
  }
  return m;
}

TEST(CliDumpLoadTest, RoundTripIsBinarySafe) {
  TempPath src, copy, inferred;
  CreateTable(src.path(), 1000, 24, 100);
  const std::map<std::string, std::string> entries = AwkwardEntries(24, 100);
  {
    Dict d = OpenDict(src.path());
    for (const auto& [k, v] : entries) ASSERT_TRUE(d.Put(k, v).ok()) << k;
  }
  CliResult dump = Cli({"dump", src.path()});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(dump.err, "");  // no progress bar in a pipe
  EXPECT_EQ(Lines(dump.out).size(), entries.size());
  for (const std::string& line : Lines(dump.out)) {
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
  }
  // Into an existing table, from stdin.
  CreateTable(copy.path(), 1000, 24, 100);
  CliResult load = Cli({"load", copy.path()}, dump.out);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.out, "loaded 300 entries into " + copy.path() + "\n");
  EXPECT_EQ(load.err, "");
  EXPECT_EQ(Contents(copy.path()), entries);
  // Through a file, into a table created with sizes taken from the input.
  const std::string file = src.path() + ".jsonl";
  CliResult to_file = Cli({"dump", "--output", file, src.path()});
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(to_file.out, "dumped 300 entries of " + src.path() + " to " + file + "\n");
  load = Cli({"load", "--create", "--input", file, inferred.path()});
  unlink(file.c_str());
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.out, "loaded 300 entries into " + inferred.path() + " (created)\n");
  EXPECT_EQ(Contents(inferred.path()), entries);
  const Stats st = OpenDict(inferred.path()).GetStats();
  EXPECT_EQ(st.capacity, 300u);
  EXPECT_EQ(st.max_key_size, 24u);
  EXPECT_EQ(st.max_value_size, 100u);
  // A dump of the copy holds the same lines, up to order and versions.
  auto strip_versions = [](const std::string& text) {
    std::vector<std::string> lines = Lines(text);
    for (std::string& l : lines) l = l.substr(0, l.rfind(",\"version\":"));
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  EXPECT_EQ(strip_versions(Cli({"dump", inferred.path()}).out), strip_versions(dump.out));
}

TEST(CliDumpLoadTest, LoadCreatesWithGivenSizesAndChecksThem) {
  TempPath t;
  const std::string input = "{\"key\":\"a\",\"value\":\"1\"}\n\n  \n{\"key\":\"b\",\"value\":\"2\"}\n";
  CliResult r = Cli({"load", "--create", "--capacity=50", "--max_key_size=4",
                     "--max_value_size=4", "--json", t.path()},
                    input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"path\":\"" + t.path() +
                       "\",\"loaded\":2,\"skipped_expired\":0,\"created\":true}\n");
  EXPECT_EQ(OpenDict(t.path()).GetStats().capacity, 50u);
  // Existing now: --create opens it if the sizes given match.
  r = Cli({"load", "--create", "--capacity=50", t.path()}, input);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "loaded 2 entries into " + t.path() + "\n");
  ExpectError(Cli({"load", "--create", "--capacity=51", t.path()}, input), "load",
              "unlike the options given");
  ExpectError(Cli({"load", "--create", "--exclusive", t.path()}, input), "load", "exists");
  ExpectError(Cli({"load", "--capacity=51", t.path()}, input), "load", "need --create");
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
}

TEST(CliDumpLoadTest, BadInputStopsTheLoadAtItsLine) {
  TempPath t;
  CreateTable(t.path(), 100, 8, 8);
  const std::string good = "{\"key\":\"ok\",\"value\":\"v\"}\n";
  ExpectError(Cli({"load", t.path()}, good + good + "{\"key\":\"x\" \"value\":\"v\"}\n"), "load",
              "stdin: line 3: at byte 11: expected ',' or '}' (2 entries loaded before it)");
  ExpectError(Cli({"load", t.path()}, "{\"key\":\"x\",\"value\":\"v\",\"ttl\":1}\n"), "load",
              "line 1: unknown member \"ttl\"");
  ExpectError(Cli({"load", t.path()}, "{\"key_b64\":\"@@\",\"value\":\"v\"}\n"), "load",
              "line 1: \"key_b64\" is not valid base64 (nothing loaded)");
  ExpectError(Cli({"load", t.path()}, good + "{\"key\":\"big\",\"value\":\"123456789\"}\n"),
              "load",
              "line 2: key \"big\": value of 9 bytes is over the table's maximum of 8 (1 entry "
              "loaded before it)");
  ExpectError(Cli({"load", "--input=/nonexistent/dump", t.path()}), "load",
              "/nonexistent/dump: No such file or directory");
  // With sizes to infer, a bad line leaves no table behind.
  TempPath fresh;
  ExpectError(Cli({"load", "--create", fresh.path()}, good + "not json\n"), "load", "line 2");
  EXPECT_NE(access(fresh.path().c_str(), F_OK), 0);
}

TEST(CliDumpLoadTest, OutputReplacesASymlinkInsteadOfFollowingIt) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_TRUE(OpenDict(t.path()).Put("k", "v").ok());
  TempDir dir;
  const std::string target = dir.path() + "/target";
  const std::string out = dir.path() + "/out.jsonl";
  WriteFile(target, "precious\n");
  ASSERT_EQ(symlink(target.c_str(), out.c_str()), 0);
  CliResult r = Cli({"dump", "--output", out, t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(target), "precious\n");
  struct stat s;
  ASSERT_EQ(lstat(out.c_str(), &s), 0);
  EXPECT_TRUE(S_ISREG(s.st_mode));
  EXPECT_EQ(s.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(out), Cli({"dump", t.path()}).out);
  EXPECT_EQ(DirEntries(dir.path()), (std::vector<std::string>{"out.jsonl", "target"}));
}

TEST(CliDumpLoadTest, OutputReplacesAnExistingFileWithOneOfMode0600) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_TRUE(OpenDict(t.path()).Put("k", "v").ok());
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  WriteFile(out, "an older dump, readable by all\n");
  ASSERT_EQ(chmod(out.c_str(), 0644), 0);
  CliResult r = Cli({"dump", "--output", out, t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat s;
  ASSERT_EQ(lstat(out.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(out), Cli({"dump", t.path()}).out);
  EXPECT_EQ(DirEntries(dir.path()), (std::vector<std::string>{"out.jsonl"}));
}

TEST(CliDumpLoadTest, AFailedDumpLeavesTheOutputAsItWasAndNoTemporaryFile) {
  TempPath t;
  CreateTable(t.path(), 1000, 16, 64);
  {
    Dict d = OpenDict(t.path());
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(d.Put("key" + std::to_string(i), std::string(64, 'v')).ok());
    }
  }
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  WriteFile(out, "the previous dump\n");
  // A write fails (the dump is over 4 KiB, and so is not allowed to be). Not under
  // ThreadSanitizer: under the 4 KiB file-size limit the tool dies of SIGBUS inside the
  // TSan runtime ("ThreadSanitizer: BUS on unknown address", exit 66) before it writes.
#ifndef __SANITIZE_THREAD__
  CliProcess too_big({"dump", "--output", out, t.path()}, LimitFileSize);
  ExpectError(too_big.Finish(), "dump", "writing " + out + ": File too large");
  EXPECT_EQ(ReadFile(out), "the previous dump\n");
  EXPECT_EQ(DirEntries(dir.path()), (std::vector<std::string>{"out.jsonl"}));
#endif
  // The rename fails: a directory is where FILE would go.
  const std::string sub = dir.path() + "/sub";
  ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
  WriteFile(sub + "/inside", "x");
  ExpectError(Cli({"dump", "--output", sub, t.path()}), "dump", sub + ": Is a directory");
  EXPECT_EQ(DirEntries(dir.path()), (std::vector<std::string>{"out.jsonl", "sub"}));
  EXPECT_EQ(DirEntries(sub), (std::vector<std::string>{"inside"}));
  // FILE's directory does not exist.
  ExpectError(Cli({"dump", "--output", dir.path() + "/missing/out.jsonl", t.path()}), "dump",
              "No such file or directory");
}

TEST(CliDumpLoadTest, ALineOfManyMembersIsCheckedForRepeats) {
  TempPath t;
  CreateTable(t.path());
  std::string line = "{";
  for (int i = 0; i < 20000; ++i) {
    line += (i > 0 ? ",\"m" : "\"m") + std::to_string(i) + "\":0";
  }
  // 20,000 different names parse; the first is then refused as not a record's.
  ExpectError(Cli({"load", t.path()}, line + "}\n"), "load",
              "stdin: line 1: unknown member \"m0\"");
  // One name repeated, the last of 20,001.
  ExpectError(Cli({"load", t.path()}, line + ",\"m19999\":1}\n"), "load",
              "stdin: line 1: at byte " + std::to_string(line.size() + 1) +
                  ": member \"m19999\" appears twice");
}

// ---------------------------------------------------------------------------------
// Expiry and eviction: create --eviction, put --ttl/--if_absent/--if_present, ttl,
// touch, sweep, clear, stats, and dump/load keeping absolute expiries.

// Milliseconds since the Unix epoch, from the clock the engine's expiries use.
uint64_t UnixMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// The time `key` has left in ms (-1: never expires, -2: absent), through the C++ API.
int64_t TtlMsOf(const std::string& path, const std::string& key) {
  absl::StatusOr<absl::Duration> ttl = OpenDict(path).Ttl(key);
  if (!ttl.ok()) return -2;
  if (*ttl == absl::InfiniteDuration()) return -1;
  return absl::ToInt64Milliseconds(*ttl);
}

// The "expires_unix_ms" of each line of a dump, by key (0 when the line has none).
std::map<std::string, uint64_t> DumpedExpiries(const std::string& dump) {
  std::map<std::string, uint64_t> m;
  for (const std::string& line : Lines(dump)) {
    const size_t k = line.find("{\"key\":\"");
    EXPECT_EQ(k, 0u) << line;
    const std::string key = line.substr(8, line.find('"', 8) - 8);
    const std::string member = "\"expires_unix_ms\":";
    const size_t e = line.find(member);
    m[key] = e == std::string::npos ? 0 : std::stoull(line.substr(e + member.size()));
  }
  return m;
}

TEST(CliEvictionTest, CreateChoosesThePolicyAndChecksAnExistingTablesPolicy) {
  TempPath lrs, plain;
  const std::vector<std::string> sizes = {"--capacity=16", "--max_key_size=8",
                                          "--max_value_size=8"};
  auto create = [&](const std::string& path, std::vector<std::string> extra) {
    std::vector<std::string> args = {"create", path};
    args.insert(args.end(), sizes.begin(), sizes.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  };
  CliResult r = create(lrs.path(), {"--eviction=lrs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(", eviction lrs\n"), std::string::npos) << r.out;
  EXPECT_EQ(OpenDict(lrs.path()).GetStats().eviction, Eviction::kLrs);
  r = create(plain.path(), {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(", eviction none\n"), std::string::npos) << r.out;
  EXPECT_EQ(OpenDict(plain.path()).GetStats().eviction, Eviction::kNone);

  // An existing table: the same policy, or none given, leaves it as it is.
  for (const auto& extra : {std::vector<std::string>{"--eviction=lrs"},
                            std::vector<std::string>{}}) {
    r = create(lrs.path(), extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("left as is"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(", eviction lrs\n"), std::string::npos) << r.out;
  }
  // Another policy, either way round, is an error.
  ExpectError(create(lrs.path(), {"--eviction=none"}), "create",
              lrs.path() + " exists with eviction policy lrs, unlike --eviction=none");
  ExpectError(create(plain.path(), {"--eviction", "lrs"}), "create",
              plain.path() + " exists with eviction policy none");
  EXPECT_EQ(OpenDict(plain.path()).GetStats().eviction, Eviction::kNone);

  TempPath never;
  for (const std::string& bad : {"lru"s, "LRS"s, ""s}) {
    if (bad.empty()) continue;  // "" is "not given"
    ExpectError(create(never.path(), {"--eviction=" + bad}), "create",
                "--eviction: '" + bad + "' is not an eviction policy: wanted none or lrs");
  }
  ExpectError(create(never.path(), {"--eviction"}), "create", "--eviction needs a value");
  EXPECT_EQ(access(never.path().c_str(), F_OK), -1);  // nothing created
}

TEST(CliEvictionTest, AnLrsTableEvictsWhereAPlainOneIsFullAndStatsCountsIt) {
  TempPath lrs, plain;
  CreateTable(plain.path(), /*capacity=*/8, /*max_key=*/8, /*max_value=*/8);
  CliResult r = Cli({"create", lrs.path(), "--capacity=8", "--max_key_size=8",
                     "--max_value_size=8", "--eviction=lrs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Fill the plain table through the API until a write is refused; the lrs table
  // takes every one of those writes and more.
  Dict p = OpenDict(plain.path());
  int n = 0;
  while (p.Put("k" + std::to_string(n), "v").ok()) ++n;
  ASSERT_GT(n, 0);
  ExpectError(Cli({"put", plain.path(), "k" + std::to_string(n), "v"}), "put", "full");
  Dict l = OpenDict(lrs.path());
  for (int i = 0; i <= n; ++i) ASSERT_TRUE(l.Put("k" + std::to_string(i), "v").ok()) << i;
  for (int i = n + 1; i < 3 * n; ++i) {
    r = Cli({"put", lrs.path(), "k" + std::to_string(i), "v"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const Stats st = l.GetStats();
  ASSERT_GT(st.evictions, 0u);
  r = Cli({"stats", lrs.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\n  eviction: lrs (a write with no room evicts the least recently "
                       "stored entry), " +
                       std::to_string(st.evictions) + " evictions so far\n"),
            std::string::npos)
      << r.out;
  r = Cli({"stats", plain.path()});
  EXPECT_NE(r.out.find("\n  eviction: none (a write with no room fails: table full), "
                       "0 evictions so far\n"),
            std::string::npos)
      << r.out;
}

TEST(CliExpiryTest, PutWithTtlExpiresAndPutWithoutDropsTheExpiry) {
  TempPath t;
  CreateTable(t.path());
  CliResult r = Cli({"put", "--ttl=3600", t.path(), "hour", "h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int64_t left = TtlMsOf(t.path(), "hour");
  EXPECT_GT(left, 3590 * 1000) << left;
  EXPECT_LE(left, 3600 * 1000) << left;
  r = Cli({"put", "--ttl", "30.5", t.path(), "half", "h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  left = TtlMsOf(t.path(), "half");
  EXPECT_GT(left, 20 * 1000);
  EXPECT_LE(left, 30500);
  // Checked only once expired: on a loaded machine the next command may come later
  // than a quarter of a second.
  r = Cli({"put", "--ttl", "0.25", t.path(), "short", "s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A fraction of a millisecond rounds up to one.
  r = Cli({"put", "--ttl=0.0001", t.path(), "tiny", "t"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Without --ttl, a put leaves the key with no expiry, whatever it had.
  ASSERT_EQ(Cli({"put", "--ttl=3600", t.path(), "was", "1"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", t.path(), "was", "2"}).exit_code, 0);
  EXPECT_EQ(TtlMsOf(t.path(), "was"), -1);
  SleepMs(400);
  r = Cli({"get", t.path(), "short"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.err, "shmdict: get: key \"short\" not found\n");
  EXPECT_EQ(Cli({"get", t.path(), "tiny"}).exit_code, 1);
  EXPECT_EQ(Contents(t.path()),
            (std::map<std::string, std::string>{{"hour", "h"}, {"half", "h"}, {"was", "2"}}));
}

TEST(CliExpiryTest, BadTtlsAreUsageErrorsThatWriteNothing) {
  TempPath t;
  CreateTable(t.path());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"0", "--ttl: must be more than 0 seconds"},
      {"0.0000", "--ttl: must be more than 0 seconds"},
      {"-1", "--ttl: -1: must be more than 0 seconds"},
      {"abc", "--ttl: 'abc' is not a number of seconds such as 30 or 0.25"},
      {"1e3", "'1e3' is not a number of seconds"},
      {"inf", "'inf' is not a number of seconds"},
      {"nan", "'nan' is not a number of seconds"},
      {"1.2.3", "'1.2.3' is not a number of seconds"},
      {".", "'.' is not a number of seconds"},
      {" 5", "' 5' is not a number of seconds"},
      {"4398046512", "--ttl: 4398046512 seconds is over the maximum of 4398046511.104 (2^42 "
                     "ms, about 139 years)"},
      {"99999999999999999999999", "is over the maximum of 4398046511.104"},
  };
  for (const auto& [value, message] : bad) {
    ExpectError(Cli({"put", "--ttl=" + value, t.path(), "k", "v"}), "put", message);
    ExpectError(Cli({"touch", "--ttl=" + value, t.path(), "k"}), "touch", message);
  }
  ExpectError(Cli({"put", t.path(), "k", "v", "--ttl"}), "put", "--ttl needs a value");
  EXPECT_TRUE(Contents(t.path()).empty());
  // The largest accepted: exactly 2^42 ms.
  CliResult r = Cli({"put", "--ttl=4398046511.104", t.path(), "k", "v"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(TtlMsOf(t.path(), "k"), int64_t{4398046511000});
}

TEST(CliExpiryTest, PutIfAbsentAndIfPresentAreConditionsWithExitOne) {
  TempPath t;
  CreateTable(t.path());
  CliResult r = Cli({"put", "--if_present", t.path(), "k", "v0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: put: key \"k\" not found (--if_present): not written\n");
  EXPECT_TRUE(Contents(t.path()).empty());
  r = Cli({"put", "--if_absent", "--json", t.path(), "k", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const uint64_t v1 = OpenDict(t.path()).Version("k");
  EXPECT_EQ(r.out, "{\"key\":\"k\",\"version\":" + std::to_string(v1) + "}\n");
  r = Cli({"put", "--if_absent", t.path(), "k", "v2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: put: key \"k\" exists (--if_absent): not written\n");
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"k", "v1"}}));
  r = Cli({"put", "--if_present", "--ttl=1", t.path(), "k", "v3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OpenDict(t.path()).Get("k").value_or("(absent)"), "v3");
  // Once expired, the key is absent to both conditions.
  SleepMs(1100);
  EXPECT_EQ(Cli({"put", "--if_present", t.path(), "k", "v4"}).exit_code, 1);
  r = Cli({"put", "--if_absent", t.path(), "k", "v5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"k", "v5"}}));
  ExpectError(Cli({"put", "--if_absent", "--if_present", t.path(), "k", "v6"}), "put",
              "--if_absent and --if_present exclude each other");
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"k", "v5"}}));
}

TEST(CliExpiryTest, TtlPrintsSecondsLeftOrNever) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_EQ(Cli({"put", "--ttl=100", t.path(), "k", "v"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", t.path(), "forever", "v"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", "--ttl=0.2", t.path(), "brief", "v"}).exit_code, 0);
  CliResult r = Cli({"ttl", t.path(), "k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Seconds with three decimals, between what the API says just after and 100.
  ASSERT_EQ(r.out.size(), std::string("99.999\n").size()) << r.out;
  EXPECT_EQ(r.out[2], '.') << r.out;
  const double printed = std::stod(r.out);
  EXPECT_LE(printed, 100.0);
  EXPECT_GE(printed * 1000, double(TtlMsOf(t.path(), "k")));
  EXPECT_GT(printed, 90.0);
  r = Cli({"ttl", t.path(), "forever"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "never\n");
  r = Cli({"ttl", "--json", t.path(), "forever"});
  EXPECT_EQ(r.out, "{\"key\":\"forever\",\"ttl\":null}\n");
  r = Cli({"ttl", "--json", "--key_b64", t.path(), "aw=="});  // "k"
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"key\":\"k\",\"ttl\":", 0), 0u) << r.out;
  EXPECT_LE(std::stod(r.out.substr(r.out.find(':', 10) + 1)), 100.0) << r.out;
  r = Cli({"ttl", t.path(), "missing"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: ttl: key \"missing\" not found\n");
  SleepMs(300);
  r = Cli({"ttl", t.path(), "brief"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: ttl: key \"brief\" not found\n");
  ExpectError(Cli({"ttl", "--ttl=5", t.path(), "k"}), "ttl", "unknown flag --ttl");
  ExpectError(Cli({"ttl", t.path()}), "ttl", "expected TABLE KEY, got 1 argument");
}

TEST(CliExpiryTest, TouchGivesANewExpiryAndKeepsTheValue) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_EQ(Cli({"put", "--ttl=1", t.path(), "k", "value"}).exit_code, 0);
  const uint64_t before = OpenDict(t.path()).Version("k");
  CliResult r = Cli({"touch", "--ttl=3600", "--json", t.path(), "k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const uint64_t after = OpenDict(t.path()).Version("k");
  EXPECT_GT(after, before);
  EXPECT_EQ(r.out, "{\"key\":\"k\",\"version\":" + std::to_string(after) + "}\n");
  SleepMs(1100);  // past the first expiry: the touch replaced it
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"k", "value"}}));
  EXPECT_GT(TtlMsOf(t.path(), "k"), 3590 * 1000);
  // Without --ttl: never expires.
  r = Cli({"touch", t.path(), "k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(TtlMsOf(t.path(), "k"), -1);
  // Shorter again, then expired: touch finds nothing.
  ASSERT_EQ(Cli({"touch", "--ttl=0.2", t.path(), "k"}).exit_code, 0);
  EXPECT_LE(TtlMsOf(t.path(), "k"), 200);
  SleepMs(300);
  r = Cli({"touch", t.path(), "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "shmdict: touch: key \"k\" not found\n");
  r = Cli({"touch", "--ttl=5", t.path(), "never-was"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contents(t.path()).empty());
}

TEST(CliExpiryTest, SweepErasesTheExpiredAndStatsCountsThem) {
  TempPath t;
  CreateTable(t.path());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Cli({"put", "--ttl=0.1", t.path(), "gone" + std::to_string(i), "v"}).exit_code,
              0);
  }
  ASSERT_EQ(Cli({"put", t.path(), "stays", "v"}).exit_code, 0);
  SleepMs(200);
  CliResult r = Cli({"stats", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\n  entries: 1,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  expired: 3 still in their slots (not counted as entries; "
                       "'shmdict sweep' erases them), 0 erased so far\n"),
            std::string::npos)
      << r.out;
  r = Cli({"sweep", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "erased 3 expired entries from " + t.path() + "\n");
  const Stats st = OpenDict(t.path()).GetStats();
  EXPECT_EQ(st.expired, 0u);
  EXPECT_EQ(st.expired_erased, 3u);
  r = Cli({"stats", t.path()});
  EXPECT_NE(r.out.find("\n  expired: 0 still in their slots (not counted as entries; "
                       "'shmdict sweep' erases them), 3 erased so far\n"),
            std::string::npos)
      << r.out;
  r = Cli({"sweep", "--json", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"path\":\"" + t.path() + "\",\"erased\":0}\n");
  ASSERT_EQ(Cli({"put", "--ttl=0.05", t.path(), "one", "v"}).exit_code, 0);
  SleepMs(150);
  EXPECT_EQ(Cli({"sweep", t.path()}).out, "erased 1 expired entry from " + t.path() + "\n");
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"stays", "v"}}));
  ExpectError(Cli({"sweep", t.path(), "extra"}), "sweep", "expected TABLE, got 2 arguments");
}

TEST(CliExpiryTest, ClearErasesEverythingAndVersionsGoOnIncreasing) {
  TempPath t;
  CreateTable(t.path());
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Cli({"put", t.path(), "k" + std::to_string(i), "v"}).exit_code, 0);
  }
  ASSERT_EQ(Cli({"put", "--ttl=60", t.path(), "k0", "again"}).exit_code, 0);
  const uint64_t before = OpenDict(t.path()).Version("k0");
  CliResult r = Cli({"clear", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(Contents(t.path()).empty());
  EXPECT_EQ(OpenDict(t.path()).Count(), 0u);
  ASSERT_EQ(Cli({"put", t.path(), "k0", "new"}).exit_code, 0);
  EXPECT_GT(OpenDict(t.path()).Version("k0"), before);
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"k0", "new"}}));
  ExpectError(Cli({"clear", "--yes", t.path()}), "clear", "unknown flag --yes");
  ExpectError(Cli({"clear"}), "clear", "expected TABLE, got 0 arguments");
}

TEST(CliExpiryTest, DumpAndLoadKeepAbsoluteExpiries) {
  TempPath src, copy, inferred;
  CreateTable(src.path());
  const uint64_t start = UnixMs();
  ASSERT_EQ(Cli({"put", "--ttl=3600", src.path(), "hour", "h"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", "--ttl=1", src.path(), "brief", "b"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", src.path(), "forever", "f"}).exit_code, 0);
  CliResult dump = Cli({"dump", src.path()});
  const uint64_t dumped_at = UnixMs();
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  const std::map<std::string, uint64_t> expiries = DumpedExpiries(dump.out);
  ASSERT_EQ(expiries.size(), 3u) << dump.out;
  // Absolute times: now + ttl, within the span of the puts.
  EXPECT_GE(expiries.at("hour"), start + 3600 * 1000);
  EXPECT_LE(expiries.at("hour"), dumped_at + 3600 * 1000);
  EXPECT_GE(expiries.at("brief"), start + 1000);
  EXPECT_LE(expiries.at("brief"), dumped_at + 1000);
  EXPECT_EQ(expiries.at("forever"), 0u);  // no member at all
  for (const std::string& line : Lines(dump.out)) {
    EXPECT_EQ(line.find("expires") != std::string::npos,
              line.find("\"forever\"") == std::string::npos)
        << line;
  }

  // Past the brief entry's expiry: load skips it and says so.
  SleepMs(int(std::max<int64_t>(0, int64_t(expiries.at("brief")) - int64_t(UnixMs()))) + 100);
  CliResult load = Cli({"load", copy.path(), "--create", "--capacity=100"}, dump.out);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.out, "loaded 2 entries into " + copy.path() +
                          " (created); skipped 1 expired entry\n");
  EXPECT_EQ(Contents(copy.path()),
            (std::map<std::string, std::string>{{"hour", "h"}, {"forever", "f"}}));
  EXPECT_EQ(TtlMsOf(copy.path(), "forever"), -1);
  // The copy's expiry is the dumped one, to the millisecond (a few more if the loader
  // was descheduled between its clock reading and the engine's), never earlier.
  const std::map<std::string, uint64_t> copied = DumpedExpiries(Cli({"dump", copy.path()}).out);
  EXPECT_GE(copied.at("hour"), expiries.at("hour"));
  EXPECT_LE(copied.at("hour"), expiries.at("hour") + 50);
  EXPECT_EQ(copied.at("forever"), 0u);
  EXPECT_EQ(copied.count("brief"), 0u);
  const int64_t left = TtlMsOf(copy.path(), "hour");
  EXPECT_LE(left, int64_t(expiries.at("hour") - UnixMs()) + 50);
  EXPECT_GT(left, 3590 * 1000);

  // The same through a table created from the input's sizes (the input is read whole
  // first), and with --json.
  load = Cli({"load", "--create", "--json", inferred.path()}, dump.out);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.out, "{\"path\":\"" + inferred.path() +
                          "\",\"loaded\":2,\"skipped_expired\":1,\"created\":true}\n");
  const std::map<std::string, uint64_t> inferred_copy =
      DumpedExpiries(Cli({"dump", inferred.path()}).out);
  EXPECT_GE(inferred_copy.at("hour"), expiries.at("hour"));
  EXPECT_LE(inferred_copy.at("hour"), expiries.at("hour") + 50);

  // A dump without expiries (the format's first version) loads as before: nothing
  // skipped, nothing said about it, no expiry.
  load = Cli({"load", copy.path()}, "{\"key\":\"old\",\"value\":\"o\",\"version\":7}\n");
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.out, "loaded 1 entry into " + copy.path() + "\n");
  EXPECT_EQ(TtlMsOf(copy.path(), "old"), -1);
  // Loading over an entry with an expiry replaces the expiry too.
  load = Cli({"load", copy.path()}, "{\"key\":\"hour\",\"value\":\"H\"}\n");
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(TtlMsOf(copy.path(), "hour"), -1);
}

TEST(CliExpiryTest, LoadChecksExpiriesAndEviction) {
  TempPath t;
  CreateTable(t.path(), 100, 8, 8);
  const std::string good = "{\"key\":\"ok\",\"value\":\"v\"}\n";
  const uint64_t now = UnixMs();
  // Written by hand: an expiry in the past is skipped, one in the future kept, 0 is
  // "never".
  CliResult r = Cli({"load", t.path()},
                    "{\"key\":\"past\",\"value\":\"p\",\"expires_unix_ms\":" +
                        std::to_string(now - 1000) + "}\n" +
                        "{\"key\":\"soon\",\"value\":\"s\",\"expires_unix_ms\":" +
                        std::to_string(now + 60000) + "}\n" +
                        "{\"key\":\"zero\",\"value\":\"z\",\"expires_unix_ms\":0}\n" +
                        "{\"key\":\"one\",\"value\":\"1\",\"expires_unix_ms\":1}\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "loaded 2 entries into " + t.path() + "; skipped 2 expired entries\n");
  EXPECT_EQ(Contents(t.path()), (std::map<std::string, std::string>{{"soon", "s"}, {"zero", "z"}}));
  EXPECT_LE(TtlMsOf(t.path(), "soon"), 60000);
  EXPECT_GT(TtlMsOf(t.path(), "soon"), 50000);
  EXPECT_EQ(TtlMsOf(t.path(), "zero"), -1);
  ExpectError(Cli({"load", t.path()}, good + "{\"key\":\"x\",\"value\":\"v\","
                                             "\"expires_unix_ms\":-5}\n"),
              "load",
              "stdin: line 2: \"expires_unix_ms\" is not a nonnegative integer (milliseconds "
              "since the Unix epoch) (1 entry loaded before it)");
  ExpectError(Cli({"load", t.path()}, good + "{\"key\":\"far\",\"value\":\"v\","
                                             "\"expires_unix_ms\":18446744073709551615}\n"),
              "load",
              "line 2: key \"far\": \"expires_unix_ms\" 18446744073709551615 is over 2^42 ms "
              "(about 139 years) from now (1 entry loaded before it)");
  EXPECT_FALSE(OpenDict(t.path()).Contains("far"));

  // --eviction goes with --create.
  ExpectError(Cli({"load", "--eviction=lrs", t.path()}, good), "load",
              "--eviction need --create");
  TempPath lrs;
  r = Cli({"load", "--create", "--eviction=lrs", lrs.path()}, good);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OpenDict(lrs.path()).GetStats().eviction, Eviction::kLrs);
  ExpectError(Cli({"load", "--create", "--eviction=lfu", lrs.path()}, good), "load",
              "--eviction: 'lfu' is not an eviction policy");
  ExpectError(Cli({"load", "--create", "--eviction=none", lrs.path()}, good), "load",
              lrs.path() + " exists with eviction policy lrs, unlike --eviction=none");
  ExpectError(Cli({"load", "--create", "--capacity=100", "--max_key_size=8",
                   "--max_value_size=8", "--eviction=lrs", t.path()},
                  good),
              "load", t.path() + " exists with eviction policy none");
}

TEST(CliVerifyRmTest, VerifyThenRemove) {
  TempPath t;
  CreateTable(t.path());
  ASSERT_EQ(Cli({"put", t.path(), "k", "v"}).exit_code, 0);
  CliResult r = Cli({"verify", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("entries: 1"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");  // no progress display in a pipe
  r = Cli({"rm", t.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(access(t.path().c_str(), F_OK), 0);
  ExpectError(Cli({"rm", t.path()}), "rm", "no table at");
  ExpectError(Cli({"rm"}), "rm", "expected TABLE..., got 0 arguments");
}

TEST(CliProgressTest, NothingOnStderrWhenItIsAPipe) {
  TempPath t, copy;
  CreateTable(t.path(), 20000, 16, 16);
  {
    Dict d = OpenDict(t.path());
    for (int i = 0; i < 10000; ++i) ASSERT_TRUE(d.Put("key" + std::to_string(i), "v").ok());
  }
  const CliResult dump = Cli({"dump", t.path()});
  ASSERT_EQ(dump.exit_code, 0);
  EXPECT_EQ(dump.err, "");
  const CliResult load = Cli({"load", "--create", copy.path()}, dump.out);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(load.err, "");
  const CliResult verify = Cli({"verify", copy.path()});
  EXPECT_EQ(verify.exit_code, 0);
  EXPECT_EQ(verify.err, "");
}

}  // namespace
}  // namespace shmdict::cli::testing
