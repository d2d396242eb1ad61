// The C API (api/shmdict_c.h), function by function and error by error, through its C
// names only. This file includes no other shmdict header: the C type `struct shmdict`
// and C++'s `namespace shmdict` (api/shmdict.h, tests/test_util.h) cannot meet in one
// translation unit.
#include "api/shmdict_c.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

// A unique path under /dev/shm, removed when this object goes away. The name holds a
// random nonce besides the pid: in Bazel's sandbox every test process has the same pid
// (its own PID namespace) while /dev/shm is shared, so parallel runs
// (--runs_per_test) would otherwise collide.
class TempPath {
 public:
  explicit TempPath(const std::string& tag = "t") {
    static std::atomic<int> counter{0};
    static const uint64_t nonce = [] {
      std::random_device rd;
      return uint64_t{rd()} << 32 | rd();
    }();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = info != nullptr ? info->name() : "none";
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(nonce));
    name_ = "shmdict-ctest-" + std::to_string(getpid()) + "-" + hex + "-" +
            std::to_string(counter.fetch_add(1)) + "-" + test + "-" + tag;
    path_ = "/dev/shm/" + name_;
    unlink(path_.c_str());
  }
  ~TempPath() { unlink(path_.c_str()); }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

  const char* path() const { return path_.c_str(); }
  // The same file, named without a directory (resolved to /dev/shm).
  const char* name() const { return name_.c_str(); }

 private:
  std::string name_;
  std::string path_;
};

struct Closer {
  void operator()(shmdict* d) const { EXPECT_EQ(shmdict_close(d), SHMDICT_OK); }
};
using Handle = std::unique_ptr<shmdict, Closer>;

shmdict_options Options(uint64_t capacity = 1000, uint32_t key = 32, uint32_t value = 64,
                        uint32_t mode = 0) {
  shmdict_options o;
  std::memset(&o, 0, sizeof(o));
  o.capacity = capacity;
  o.max_key_size = key;
  o.max_value_size = value;
  o.mode = mode;
  return o;
}

// Opens with `flags`; a null handle (and a test failure) on error.
Handle Open(const char* path, int flags, const shmdict_options* opts) {
  shmdict* d = nullptr;
  const int rc = shmdict_open(path, flags, opts, &d);
  EXPECT_EQ(rc, SHMDICT_OK) << shmdict_strerror(rc) << ": " << shmdict_last_error();
  if (rc == SHMDICT_OK) {
    EXPECT_NE(d, nullptr);
  }
  return Handle(d);
}

Handle Create(const TempPath& t, shmdict_options o = Options()) {
  return Open(t.path(), SHMDICT_CREATE, &o);
}

// Expects shmdict_open to fail with `want`, set *out to NULL and leave a message.
void ExpectOpenFails(const char* path, int flags, const shmdict_options* opts, int want) {
  shmdict* d = reinterpret_cast<shmdict*>(uintptr_t{0x1});  // must be overwritten
  const int rc = shmdict_open(path, flags, opts, &d);
  EXPECT_EQ(rc, want) << shmdict_strerror(rc) << ": " << shmdict_last_error();
  EXPECT_EQ(d, nullptr);
  EXPECT_STRNE(shmdict_last_error(), "");
  if (rc == SHMDICT_OK) shmdict_close(d);
}

// Creates a file at `path` (which must not exist) holding `bytes`: a file that is not a
// table.
::testing::AssertionResult WriteNewFile(const char* path, const std::string& bytes) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return ::testing::AssertionFailure() << "create " << path << ": " << errno;
  const ssize_t n = write(fd, bytes.data(), bytes.size());
  close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) {
    return ::testing::AssertionFailure() << "write " << path << ": " << errno;
  }
  return ::testing::AssertionSuccess();
}

bool Exists(const char* path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

unsigned ModeOf(const char* path) {
  struct stat st;
  if (stat(path, &st) != 0) return 07777;
  return st.st_mode & 07777;
}

int Put(shmdict* d, const std::string& key, const std::string& value,
        uint64_t* version = nullptr) {
  return shmdict_put(d, key.data(), key.size(), value.data(), value.size(), version);
}

// The value of `key`, or "<code>" when the get fails.
std::string Get(shmdict* d, const std::string& key, uint64_t* version = nullptr) {
  char buf[256];
  size_t len = 0;
  const int rc = shmdict_get(d, key.data(), key.size(), buf, sizeof(buf), &len, version);
  if (rc != SHMDICT_OK) return "<" + std::to_string(rc) + ">";
  return std::string(buf, len);
}

const std::string kMissing = "<" + std::to_string(SHMDICT_ENOTFOUND) + ">";

uint64_t Count(shmdict* d) {
  uint64_t n = ~uint64_t{0};
  EXPECT_EQ(shmdict_count(d, &n), SHMDICT_OK);
  return n;
}

// A handle from shmdict_open on the table at `path`, created with the default options
// if absent; the caller closes it. Null (and a test failure) if it does not open.
shmdict* OpenUnowned(const char* path) {
  const shmdict_options o = Options();
  shmdict* d = nullptr;
  EXPECT_EQ(shmdict_open(path, SHMDICT_CREATE, &o, &d), SHMDICT_OK) << shmdict_last_error();
  return d;
}

// Each test's table: NewTable creates it, at a path of the test's own, and keeps a handle
// on it until the test ends.
class CApiTest : public ::testing::Test {
 protected:
  // Creates the table with `o` and returns the handle; null (and a test failure) if it
  // does not open.
  shmdict* NewTable(const shmdict_options& o = Options()) {
    handle_ = Create(table_, o);
    return handle_.get();
  }
  // NewTable(), then k = "v" written through the handle; *version, if given, is that
  // write's version. Null (and a test failure) if a step failed.
  shmdict* NewTableWithK(uint64_t* version = nullptr) {
    shmdict* d = NewTable();
    if (d == nullptr) return nullptr;
    const int rc = Put(d, "k", "v", version);
    EXPECT_EQ(rc, SHMDICT_OK) << shmdict_last_error();
    return rc == SHMDICT_OK ? d : nullptr;
  }
  const char* path() const { return table_.path(); }

 private:
  TempPath table_;
  Handle handle_;
};

const int kAllErrors[] = {SHMDICT_ENOTFOUND, SHMDICT_EEXISTS, SHMDICT_EFULL,
                          SHMDICT_ETOOBIG,   SHMDICT_EBUFFER, SHMDICT_EVERSION,
                          SHMDICT_ETYPE,     SHMDICT_EINVAL,  SHMDICT_EBADFILE,
                          SHMDICT_EPERM,     SHMDICT_ETIMEOUT, SHMDICT_EIO};

// ---------------------------------------------------------------------------------
// Codes and messages

TEST_F(CApiTest, CodesAreDistinctAndNegative) {
  EXPECT_EQ(SHMDICT_OK, 0);
  std::set<int> seen;
  for (const int code : kAllErrors) {
    EXPECT_LT(code, 0);
    EXPECT_TRUE(seen.insert(code).second) << "code " << code << " used twice";
  }
  EXPECT_EQ(seen.size(), 12u);
  // The flags are distinct bits.
  const int flags[] = {SHMDICT_CREATE, SHMDICT_EXCL, SHMDICT_READONLY, SHMDICT_ALLOW_GROUP};
  int all = 0;
  for (const int f : flags) {
    EXPECT_EQ(f & (f - 1), 0) << f;
    EXPECT_EQ(all & f, 0) << f;
    all |= f;
  }
}

TEST_F(CApiTest, StrerrorDescribesEveryCodeAndNeverReturnsNull) {
  // Each code's description names what the code means: this checks the C values
  // against the library's table of codes, which the C header cannot see.
  const struct {
    int code;
    const char* mentions;
  } expected[] = {
      {SHMDICT_OK, "success"},
      {SHMDICT_ENOTFOUND, "not found"},
      {SHMDICT_EEXISTS, "exists"},
      {SHMDICT_EFULL, "full"},
      {SHMDICT_ETOOBIG, "maximum"},
      {SHMDICT_EBUFFER, "buffer"},
      {SHMDICT_EVERSION, "version"},
      {SHMDICT_ETYPE, "8-byte integer"},
      {SHMDICT_EINVAL, "invalid argument"},
      {SHMDICT_EBADFILE, "not a valid shmdict file"},
      {SHMDICT_EPERM, "permission"},
      {SHMDICT_ETIMEOUT, "timed out"},
      {SHMDICT_EIO, "operating system"},
  };
  std::set<std::string> descriptions;
  for (const auto& e : expected) {
    const char* text = shmdict_strerror(e.code);
    ASSERT_NE(text, nullptr) << e.code;
    EXPECT_NE(std::string(text).find(e.mentions), std::string::npos)
        << e.code << ": \"" << text << "\"";
    descriptions.insert(text);
  }
  EXPECT_EQ(descriptions.size(), 13u) << "two codes share a description";
  for (const int unknown : {1, 2, 12, -13, -14, -100, 100, 0x7F, INT_MIN, INT_MAX}) {
    const char* text = shmdict_strerror(unknown);
    ASSERT_NE(text, nullptr) << unknown;
    EXPECT_STRNE(text, "") << unknown;
    EXPECT_EQ(descriptions.count(text), 0u)
        << unknown << " is described as a known code: " << text;
  }
}

// A lookup miss also leaves a message (the engine's misses carry none, to stay
// allocation-free; the C API describes the code instead).
TEST_F(CApiTest, LastErrorAfterAMissIsNotEmpty) {
  shmdict* h = NewTable();
  ASSERT_NE(h, nullptr);
  char buf[8];
  size_t len = 0;
  EXPECT_EQ(shmdict_get(h, "absent", 6, buf, sizeof(buf), &len, nullptr),
            SHMDICT_ENOTFOUND);
  EXPECT_STRNE(shmdict_last_error(), "");
}

TEST_F(CApiTest, GetManyAgreesWithGet) {
  shmdict* h = NewTable();
  ASSERT_NE(h, nullptr);
  std::vector<std::string> keys;
  for (int i = 0; i < 150; ++i) {
    keys.push_back("key" + std::to_string(i));
    if (i % 2 == 0) {
      ASSERT_EQ(shmdict_put(h, keys.back().data(), keys.back().size(),
                            keys.back().data(), i % 5 == 0 ? 0 : keys.back().size(), nullptr),
                SHMDICT_OK);
    }
  }
  const size_t n = keys.size();
  std::vector<const void*> kp(n);
  std::vector<size_t> kl(n), caps(n), lens(n, 999);
  std::vector<std::string> bufs(n, std::string(8, '\0'));
  std::vector<void*> vp(n);
  std::vector<uint64_t> versions(n, 999);
  std::vector<int> results(n, 1);
  for (size_t i = 0; i < n; ++i) {
    kp[i] = keys[i].data();
    kl[i] = keys[i].size();
    vp[i] = bufs[i].data();
    caps[i] = i % 11 == 0 ? 2 : 8;
  }
  kp[3] = nullptr;  // a null key with nonzero length: that key alone is invalid
  ASSERT_EQ(shmdict_get_many(h, n, kp.data(), kl.data(), vp.data(), caps.data(),
                             lens.data(), versions.data(), results.data()),
            SHMDICT_OK);
  for (size_t i = 0; i < n; ++i) {
    if (i == 3) {
      EXPECT_EQ(results[i], SHMDICT_EINVAL);
      continue;
    }
    char buf[8];
    size_t len = 0;
    uint64_t version = 0;
    const int want = shmdict_get(h, keys[i].data(), keys[i].size(), buf, caps[i], &len,
                                 &version);
    EXPECT_EQ(results[i], want) << i;
    if (want == SHMDICT_OK || want == SHMDICT_EBUFFER) {
      EXPECT_EQ(lens[i], len) << i;
      EXPECT_EQ(versions[i], version) << i;
    }
    if (want == SHMDICT_OK) {
      EXPECT_EQ(bufs[i].substr(0, len), std::string(buf, len)) << i;
    }
  }
  // Optional outputs may be null; required arrays may not.
  EXPECT_EQ(shmdict_get_many(h, n, kp.data(), kl.data(), vp.data(), caps.data(),
                             nullptr, nullptr, results.data()),
            SHMDICT_OK);
  EXPECT_EQ(shmdict_get_many(h, n, nullptr, kl.data(), vp.data(), caps.data(),
                             nullptr, nullptr, results.data()),
            SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_get_many(nullptr, 0, nullptr, nullptr, nullptr, nullptr, nullptr,
                             nullptr, nullptr),
            SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_get_many(h, 0, nullptr, nullptr, nullptr, nullptr, nullptr,
                             nullptr, nullptr),
            SHMDICT_OK);
}

TEST_F(CApiTest, LastErrorIsPerThreadAndNamesTheProblem) {
  // A thread that never failed has no message.
  std::string fresh = "unset";
  std::thread([&] { fresh = shmdict_last_error(); }).join();
  EXPECT_EQ(fresh, "");

  TempPath t;
  ExpectOpenFails(t.path(), 0, nullptr, SHMDICT_ENOTFOUND);
  const std::string not_found = shmdict_last_error();
  EXPECT_NE(not_found.find(t.path()), std::string::npos) << not_found;

  // Another thread's failure does not touch this thread's message.
  std::string other;
  std::thread([&] {
    EXPECT_EQ(shmdict_open(nullptr, 0, nullptr, nullptr), SHMDICT_EINVAL);
    other = shmdict_last_error();
  }).join();
  EXPECT_NE(other, "");
  EXPECT_NE(other, not_found);
  EXPECT_EQ(shmdict_last_error(), not_found);

  // A different failure replaces it.
  const shmdict_options bad = Options(0);
  ExpectOpenFails(t.path(), SHMDICT_CREATE, &bad, SHMDICT_EINVAL);
  EXPECT_NE(std::string(shmdict_last_error()), not_found);
  EXPECT_NE(std::string(shmdict_last_error()).find("capacity"), std::string::npos)
      << shmdict_last_error();
}

// ---------------------------------------------------------------------------------
// shmdict_open, shmdict_close, shmdict_unlink

TEST_F(CApiTest, OpenCreatesAndReopens) {
  TempPath t;
  {
    Handle d = Create(t);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(Put(d.get(), "k", "v"), SHMDICT_OK);
  }
  EXPECT_TRUE(Exists(t.path()));
  // Without flags or options, by path and by bare name.
  Handle again = Open(t.path(), 0, nullptr);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(Get(again.get(), "k"), "v");
  Handle by_name = Open(t.name(), 0, nullptr);
  ASSERT_NE(by_name, nullptr);
  EXPECT_EQ(Get(by_name.get(), "k"), "v");
  // Two handles on one table see each other's writes.
  EXPECT_EQ(Put(by_name.get(), "k", "w"), SHMDICT_OK);
  EXPECT_EQ(Get(again.get(), "k"), "w");
  // CREATE on an existing table with matching options opens it.
  const shmdict_options o = Options();
  Handle created_again = Open(t.path(), SHMDICT_CREATE, &o);
  ASSERT_NE(created_again, nullptr);
  EXPECT_EQ(Get(created_again.get(), "k"), "w");
}

TEST_F(CApiTest, OpenWithoutCreateOnAMissingFileIsNotFound) {
  TempPath t;
  ExpectOpenFails(t.path(), 0, nullptr, SHMDICT_ENOTFOUND);
  ExpectOpenFails(t.path(), SHMDICT_READONLY, nullptr, SHMDICT_ENOTFOUND);
  const shmdict_options o = Options();
  ExpectOpenFails(t.path(), 0, &o, SHMDICT_ENOTFOUND);  // options without CREATE
  EXPECT_FALSE(Exists(t.path()));
  ExpectOpenFails("/dev/shm/no-such-directory-for-shmdict/t", SHMDICT_CREATE, &o,
                  SHMDICT_ENOTFOUND);
}

TEST_F(CApiTest, OpenExclusive) {
  TempPath t;
  const shmdict_options o = Options();
  Handle d = Open(t.path(), SHMDICT_CREATE | SHMDICT_EXCL, &o);
  ASSERT_NE(d, nullptr);
  ExpectOpenFails(t.path(), SHMDICT_CREATE | SHMDICT_EXCL, &o, SHMDICT_EEXISTS);
  // EXCL needs CREATE.
  TempPath u;
  ExpectOpenFails(u.path(), SHMDICT_EXCL, &o, SHMDICT_EINVAL);
  ExpectOpenFails(t.path(), SHMDICT_EXCL, &o, SHMDICT_EINVAL);
  EXPECT_FALSE(Exists(u.path()));
}

TEST_F(CApiTest, OpenReadOnlyRefusesWrites) {
  TempPath t;
  {
    Handle d = Create(t);
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(Put(d.get(), "k", "v"), SHMDICT_OK);
  }
  ASSERT_EQ(chmod(t.path(), 0400), 0);
  Handle r = Open(t.path(), SHMDICT_READONLY, nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(Get(r.get(), "k"), "v");
  EXPECT_EQ(Count(r.get()), 1u);
  uint64_t version = 7;
  int64_t sum = 7;
  EXPECT_EQ(Put(r.get(), "k", "w", &version), SHMDICT_EPERM);
  EXPECT_EQ(version, 7u) << "a failed write set the version";
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(shmdict_insert(r.get(), "n", 1, "v", 1, nullptr), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_replace(r.get(), "k", 1, "w", 1, nullptr), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_erase(r.get(), "k", 1), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_compare_and_swap(r.get(), "n", 1, 0, "v", 1, nullptr), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_fetch_add(r.get(), "c", 1, 1, &sum), SHMDICT_EPERM);
  EXPECT_EQ(sum, 7);
  EXPECT_EQ(Get(r.get(), "k"), "v");
  EXPECT_EQ(Count(r.get()), 1u);
  // READONLY and CREATE exclude each other.
  const shmdict_options o = Options();
  ExpectOpenFails(t.path(), SHMDICT_READONLY | SHMDICT_CREATE, &o, SHMDICT_EINVAL);
}

TEST_F(CApiTest, UnknownFlagsAreInvalid) {
  TempPath t;
  const shmdict_options o = Options();
  for (const int flags : {0x10, 0x100, 0x40000000, INT_MIN, -1, SHMDICT_CREATE | 0x20}) {
    SCOPED_TRACE(::testing::Message() << "flags " << std::hex << flags);
    ExpectOpenFails(t.path(), flags, &o, SHMDICT_EINVAL);
    EXPECT_FALSE(Exists(t.path())) << "refused flags created the file";
  }
}

TEST_F(CApiTest, NullArgumentsToOpenAreInvalid) {
  TempPath t;
  const shmdict_options o = Options();
  // NULL out: nothing to return a handle in, so nothing is created either.
  EXPECT_EQ(shmdict_open(t.path(), SHMDICT_CREATE, &o, nullptr), SHMDICT_EINVAL);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_FALSE(Exists(t.path()));
  EXPECT_EQ(shmdict_open(t.path(), 0x100, &o, nullptr), SHMDICT_EINVAL);
  // NULL and empty paths.
  ExpectOpenFails(nullptr, SHMDICT_CREATE, &o, SHMDICT_EINVAL);
  ExpectOpenFails(nullptr, 0, nullptr, SHMDICT_EINVAL);
  ExpectOpenFails("", SHMDICT_CREATE, &o, SHMDICT_EINVAL);
  // CREATE needs options.
  ExpectOpenFails(t.path(), SHMDICT_CREATE, nullptr, SHMDICT_EINVAL);
  ExpectOpenFails(t.path(), SHMDICT_CREATE | SHMDICT_EXCL, nullptr, SHMDICT_EINVAL);
  EXPECT_FALSE(Exists(t.path()));
}

TEST_F(CApiTest, BadOptionsAreInvalid) {
  TempPath t;
  for (const shmdict_options& o :
       {Options(0), Options(uint64_t{1} << 37), Options(10, 0, 8), Options(10, 65537, 8),
        Options(10, 8, 0), Options(10, 8, (64u << 20) + 1)}) {
    SCOPED_TRACE(::testing::Message() << o.capacity << " " << o.max_key_size << " "
                                      << o.max_value_size);
    ExpectOpenFails(t.path(), SHMDICT_CREATE, &o, SHMDICT_EINVAL);
  }
  EXPECT_FALSE(Exists(t.path()));
  // An existing table's options must match.
  {
    Handle d = Create(t, Options(1000, 32, 64));
    ASSERT_NE(d, nullptr);
  }
  for (const shmdict_options& o :
       {Options(1001, 32, 64), Options(1000, 33, 64), Options(1000, 32, 65)}) {
    ExpectOpenFails(t.path(), SHMDICT_CREATE, &o, SHMDICT_EINVAL);
  }
}

class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : old_(umask(mask)) {}
  ~UmaskGuard() { umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

TEST_F(CApiTest, ModeZeroMeans0600) {
  UmaskGuard guard(0);  // the mode must not depend on the umask
  {
    TempPath t;
    Handle d = Create(t, Options(100, 8, 8, 0));
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(ModeOf(t.path()), 0600u);
  }
  {
    TempPath t;
    Handle d = Create(t, Options(100, 8, 8, 0640));
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(ModeOf(t.path()), 0640u);
  }
  {
    TempPath t;
    const shmdict_options o = Options(100, 8, 8, 0660);
    ExpectOpenFails(t.path(), SHMDICT_CREATE, &o, SHMDICT_EINVAL);  // needs ALLOW_GROUP
    EXPECT_FALSE(Exists(t.path()));
    Handle d = Open(t.path(), SHMDICT_CREATE | SHMDICT_ALLOW_GROUP, &o);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(ModeOf(t.path()), 0660u);
    // Group-writable: refused without ALLOW_GROUP, accepted with it.
    ExpectOpenFails(t.path(), 0, nullptr, SHMDICT_EPERM);
    EXPECT_NE(std::string(shmdict_last_error()).find("group-writable"), std::string::npos);
    Handle g = Open(t.path(), SHMDICT_ALLOW_GROUP, nullptr);
    EXPECT_NE(g, nullptr);
  }
  for (const uint32_t mode : {0666u, 0602u, 0400u, 0200u, 01600u, 0100600u}) {
    SCOPED_TRACE(::testing::Message() << "mode 0" << std::oct << mode);
    TempPath t;
    const shmdict_options o = Options(100, 8, 8, mode);
    ExpectOpenFails(t.path(), SHMDICT_CREATE | SHMDICT_ALLOW_GROUP, &o, SHMDICT_EINVAL);
    EXPECT_FALSE(Exists(t.path()));
  }
}

TEST_F(CApiTest, OpenRefusesFilesThatAreNotTables) {
  TempPath t;
  ASSERT_TRUE(WriteNewFile(t.path(), "not a table"));
  ExpectOpenFails(t.path(), 0, nullptr, SHMDICT_EBADFILE);
  ExpectOpenFails(t.path(), SHMDICT_READONLY, nullptr, SHMDICT_EBADFILE);
  const shmdict_options o = Options();
  ExpectOpenFails(t.path(), SHMDICT_CREATE, &o, SHMDICT_EBADFILE);
  ASSERT_EQ(chmod(t.path(), 0602), 0);
  ExpectOpenFails(t.path(), 0, nullptr, SHMDICT_EPERM);
}

TEST_F(CApiTest, EioLeavesAMessage) {
  // A table larger than /dev/shm: the space reservation fails.
  struct statvfs vfs;
  ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
  const uint64_t shm_bytes = uint64_t{vfs.f_blocks} * vfs.f_frsize;
  // Capacity 2^36 with 8-byte keys and values needs about 6 TiB.
  if (shm_bytes > (uint64_t{1} << 41)) GTEST_SKIP() << "/dev/shm is too large";
  TempPath t;
  const shmdict_options o = Options(uint64_t{1} << 36, 8, 8);
  ExpectOpenFails(t.path(), SHMDICT_CREATE, &o, SHMDICT_EIO);
  EXPECT_NE(std::string(shmdict_last_error()).find("space"), std::string::npos)
      << shmdict_last_error();
  EXPECT_FALSE(Exists(t.path()));
}

// The contract: errno is left set after SHMDICT_EIO (here ENOSPC: /dev/shm is too small).
TEST_F(CApiTest, EioLeavesErrnoSet) {
  struct statvfs vfs;
  ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
  if (uint64_t{vfs.f_blocks} * vfs.f_frsize > (uint64_t{1} << 41)) {
    GTEST_SKIP() << "/dev/shm is too large";
  }
  TempPath t;
  const shmdict_options o = Options(uint64_t{1} << 36, 8, 8);
  shmdict* d = nullptr;
  errno = 0;
  ASSERT_EQ(shmdict_open(t.path(), SHMDICT_CREATE, &o, &d), SHMDICT_EIO);
  EXPECT_EQ(errno, ENOSPC) << strerror(errno);
}

TEST_F(CApiTest, CloseNullIsOk) {
  EXPECT_EQ(shmdict_close(nullptr), SHMDICT_OK);
  TempPath t;
  shmdict* d = OpenUnowned(t.path());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(shmdict_close(d), SHMDICT_OK);
}

// ---------------------------------------------------------------------------------
// Closed and foreign handles

// Calls every function that takes a handle on `d`, with valid other arguments; returns
// their codes. Checks that none touched its out-parameters or called back.
std::vector<int> CallEveryFunction(shmdict* d) {
  char buf[8] = "unset";
  size_t len = 77;
  uint64_t version = 77, count = 77;
  int64_t sum = 77;
  const void* keys[1] = {"k"};
  const size_t key_lens[1] = {1};
  void* values[1] = {buf};
  const size_t caps[1] = {sizeof(buf)};
  size_t lens[1] = {77};
  uint64_t versions[1] = {77};
  int results[1] = {77};
  int calls = 0;
  auto count_calls = [](void* ctx, const void*, size_t, const void*, size_t, uint64_t) {
    ++*static_cast<int*>(ctx);
    return 0;
  };
  std::vector<int> rcs = {
      shmdict_get(d, "k", 1, buf, sizeof(buf), &len, &version),
      shmdict_get_many(d, 1, keys, key_lens, values, caps, lens, versions, results),
      shmdict_put(d, "k", 1, "new", 3, &version),
      shmdict_insert(d, "n", 1, "new", 3, &version),
      shmdict_replace(d, "k", 1, "new", 3, &version),
      shmdict_erase(d, "k", 1),
      shmdict_compare_and_swap(d, "n", 1, 0, "new", 3, &version),
      shmdict_fetch_add(d, "c", 1, 1, &sum),
      shmdict_wait(d, "k", 1, 0, 0),
      shmdict_foreach(d, count_calls, &calls),
      shmdict_count(d, &count),
  };
  EXPECT_STREQ(buf, "unset");
  EXPECT_EQ(len, 77u);
  EXPECT_EQ(version, 77u);
  EXPECT_EQ(count, 77u);
  EXPECT_EQ(sum, 77);
  EXPECT_EQ(lens[0], 77u);
  EXPECT_EQ(versions[0], 77u);
  EXPECT_EQ(results[0], 77);
  EXPECT_EQ(calls, 0);
  return rcs;
}

// Expects every function that takes a handle to refuse `d` with SHMDICT_EINVAL, and to
// touch none of its out-parameters (CallEveryFunction).
void ExpectEveryCallInvalid(shmdict* d) {
  const std::vector<int> rcs = CallEveryFunction(d);
  for (size_t i = 0; i < rcs.size(); ++i) {
    EXPECT_EQ(rcs[i], SHMDICT_EINVAL) << "function " << i;
  }
}

// Each test's table, at a path of its own, removed after the test.
class CApiClosedHandleTest : public ::testing::Test {
 protected:
  // A handle that created the table, wrote k = "v" and was closed: the stale handle the
  // tests call with. Null (and a test failure) if a step failed.
  shmdict* StaleHandle() {
    shmdict* d = OpenUnowned(path());
    if (d == nullptr) return nullptr;
    const int put = Put(d, "k", "v");
    EXPECT_EQ(put, SHMDICT_OK);
    const int closed = shmdict_close(d);
    EXPECT_EQ(closed, SHMDICT_OK);
    return put == SHMDICT_OK && closed == SHMDICT_OK ? d : nullptr;
  }

  // Expects the table to hold exactly k = "v".
  void ExpectOnlyKV() {
    Handle h = Open(path(), 0, nullptr);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(Get(h.get(), "k"), "v");
    EXPECT_EQ(Count(h.get()), 1u);
  }

  const char* path() const { return table_.path(); }

 private:
  TempPath table_;
};

TEST_F(CApiClosedHandleTest, DoubleCloseIsInvalid) {
  shmdict* d = OpenUnowned(path());
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(shmdict_close(d), SHMDICT_OK);
  EXPECT_EQ(shmdict_close(d), SHMDICT_EINVAL);
  EXPECT_STREQ(shmdict_last_error(), "closed handle");
  EXPECT_EQ(shmdict_close(d), SHMDICT_EINVAL);
}

TEST_F(CApiClosedHandleTest, GetAndPutAfterCloseAreInvalid) {
  shmdict* d = StaleHandle();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(Get(d, "k"), "<" + std::to_string(SHMDICT_EINVAL) + ">");
  EXPECT_STREQ(shmdict_last_error(), "closed handle");
  EXPECT_EQ(Put(d, "k", "new"), SHMDICT_EINVAL);
  EXPECT_STREQ(shmdict_last_error(), "closed handle");
  ExpectOnlyKV();
}

TEST_F(CApiClosedHandleTest, EveryCallOnAClosedHandleIsInvalidAndChangesNothing) {
  shmdict* d = StaleHandle();
  ASSERT_NE(d, nullptr);
  ExpectEveryCallInvalid(d);
  EXPECT_STREQ(shmdict_last_error(), "closed handle");
  ExpectOnlyKV();
}

// The memory of a closed handle is set aside, not reused for new handles, for the
// next 1024 closes (api/shmdict_c.h): a stale handle is recognised all that while.
TEST_F(CApiClosedHandleTest, StaysRecognisedWhileOtherHandlesOpenAndClose) {
  shmdict* stale = StaleHandle();
  ASSERT_NE(stale, nullptr);
  for (int i = 0; i < 1023; ++i) {
    shmdict* d = nullptr;
    ASSERT_EQ(shmdict_open(path(), 0, nullptr, &d), SHMDICT_OK) << i;
    ASSERT_NE(d, stale) << "a new handle reuses a closed one's memory after " << i
                        << " closes";
    ASSERT_EQ(shmdict_close(d), SHMDICT_OK);
  }
  EXPECT_EQ(Put(stale, "k", "new"), SHMDICT_EINVAL);
  EXPECT_STREQ(shmdict_last_error(), "closed handle");
  EXPECT_EQ(shmdict_close(stale), SHMDICT_EINVAL);
  ExpectOnlyKV();
}

// What closed handles keep aside is bounded: thousands of opens and closes do not
// accumulate memory.
TEST_F(CApiClosedHandleTest, ClosedHandlesDoNotAccumulate) {
  auto open_and_close = [&](int n) {
    for (int i = 0; i < n; ++i) {
      shmdict* d = OpenUnowned(path());
      ASSERT_NE(d, nullptr);
      ASSERT_EQ(shmdict_close(d), SHMDICT_OK);
    }
  };
  open_and_close(2000);  // fills what is kept aside
  const size_t before = mallinfo2().uordblks;
  open_and_close(4000);
  const size_t after = mallinfo2().uordblks;
  // Kept without bound, 4000 handles would hold at least 4000 * 24 bytes more.
  EXPECT_LT(after, before + 4000 * 24 / 4) << "before " << before << ", after " << after;
}

TEST_F(CApiClosedHandleTest, RacingClosesCloseOnce) {
  for (int round = 0; round < 50; ++round) {
    shmdict* d = OpenUnowned(path());
    ASSERT_NE(d, nullptr);
    std::atomic<bool> go{false};
    std::atomic<int> ok{0}, invalid{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        const int rc = shmdict_close(d);
        (rc == SHMDICT_OK ? ok : invalid).fetch_add(1);
      });
    }
    go.store(true);
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(ok.load(), 1) << "round " << round;
    EXPECT_EQ(invalid.load(), 3) << "round " << round;
  }
}

TEST_F(CApiClosedHandleTest, AForeignPointerIsNotAHandle) {
  alignas(64) uint64_t memory[16] = {};
  shmdict* d = reinterpret_cast<shmdict*>(memory);
  ExpectEveryCallInvalid(d);
  EXPECT_STREQ(shmdict_last_error(), "not a shmdict handle");
  EXPECT_EQ(shmdict_close(d), SHMDICT_EINVAL);
  EXPECT_STREQ(shmdict_last_error(), "not a shmdict handle");
  for (const uint64_t word : memory) EXPECT_EQ(word, 0u);  // nothing was written to it

  // Memory the caller may read but not write: only read (a store would fault).
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  shmdict* read_only = static_cast<shmdict*>(page);
  EXPECT_EQ(shmdict_close(read_only), SHMDICT_EINVAL);
  EXPECT_STREQ(shmdict_last_error(), "not a shmdict handle");
  ExpectEveryCallInvalid(read_only);
  munmap(page, 4096);
}

TEST_F(CApiTest, Unlink) {
  shmdict* d = NewTableWithK();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(shmdict_unlink(path()), SHMDICT_OK);
  EXPECT_FALSE(Exists(path()));
  // Open handles stay valid.
  EXPECT_EQ(Get(d, "k"), "v");
  EXPECT_EQ(Put(d, "k2", "v2"), SHMDICT_OK);
  EXPECT_EQ(shmdict_unlink(path()), SHMDICT_ENOTFOUND);
  EXPECT_STRNE(shmdict_last_error(), "");
  ExpectOpenFails(path(), 0, nullptr, SHMDICT_ENOTFOUND);
  // By bare name.
  TempPath named;
  ASSERT_NE(Create(named), nullptr);
  EXPECT_EQ(shmdict_unlink(named.name()), SHMDICT_OK);
  EXPECT_FALSE(Exists(named.path()));
  EXPECT_EQ(shmdict_unlink(nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_unlink(""), SHMDICT_EINVAL);
}

TEST_F(CApiTest, UnlinkLeavesFilesThatAreNotTablesInPlace) {
  TempPath t;
  ASSERT_TRUE(WriteNewFile(t.path(), "precious"));
  EXPECT_EQ(shmdict_unlink(t.path()), SHMDICT_EBADFILE);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_TRUE(Exists(t.path()));
  TempPath link("link");
  TempPath target("target");
  ASSERT_NE(Create(target), nullptr);
  ASSERT_EQ(symlink(target.path(), link.path()), 0);
  EXPECT_EQ(shmdict_unlink(link.path()), SHMDICT_EBADFILE);
  EXPECT_TRUE(Exists(link.path()));
  EXPECT_TRUE(Exists(target.path()));
}

// ---------------------------------------------------------------------------------
// Reads and writes

TEST_F(CApiTest, PutGetInsertReplaceErase) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  uint64_t v1 = 0, v2 = 0, v3 = 0, got_version = 0;
  ASSERT_EQ(Put(d, "alpha", "one", &v1), SHMDICT_OK);
  EXPECT_NE(v1, 0u);
  EXPECT_EQ(Get(d, "alpha", &got_version), "one");
  EXPECT_EQ(got_version, v1);
  ASSERT_EQ(Put(d, "alpha", "two", &v2), SHMDICT_OK);
  EXPECT_GT(v2, v1);
  EXPECT_EQ(Get(d, "alpha"), "two");

  EXPECT_EQ(shmdict_insert(d, "alpha", 5, "x", 1, &v3), SHMDICT_EEXISTS);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(Get(d, "alpha"), "two");
  ASSERT_EQ(shmdict_insert(d, "beta", 4, "b", 1, &v3), SHMDICT_OK);
  EXPECT_NE(v3, 0u);
  EXPECT_EQ(Get(d, "beta"), "b");

  EXPECT_EQ(shmdict_replace(d, "gamma", 5, "g", 1, nullptr), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(d, "gamma"), kMissing);
  uint64_t v4 = 0;
  ASSERT_EQ(shmdict_replace(d, "alpha", 5, "three", 5, &v4), SHMDICT_OK);
  EXPECT_GT(v4, v2);
  EXPECT_EQ(Get(d, "alpha", &got_version), "three");
  EXPECT_EQ(got_version, v4);

  EXPECT_EQ(Count(d), 2u);
  ASSERT_EQ(shmdict_erase(d, "alpha", 5), SHMDICT_OK);
  EXPECT_EQ(Get(d, "alpha"), kMissing);
  EXPECT_EQ(shmdict_erase(d, "alpha", 5), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Count(d), 1u);
  // Re-inserted, the key gets a version above all its earlier ones.
  uint64_t v5 = 0;
  ASSERT_EQ(Put(d, "alpha", "again", &v5), SHMDICT_OK);
  EXPECT_GT(v5, v4);
}

TEST_F(CApiTest, KeysAndValuesAreBytes) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  const std::string k1("a\0b", 3), k2("a\0c", 3), v1("\0\xff\0", 3);
  ASSERT_EQ(Put(d, k1, v1), SHMDICT_OK);
  ASSERT_EQ(Put(d, k2, "second"), SHMDICT_OK);
  EXPECT_EQ(Get(d, k1), v1);
  EXPECT_EQ(Get(d, k2), "second");
  EXPECT_EQ(Get(d, std::string("a", 1)), kMissing);
  // NULL pointers with zero lengths: the empty key and the empty value.
  ASSERT_EQ(shmdict_put(d, nullptr, 0, "empty key", 9, nullptr), SHMDICT_OK);
  EXPECT_EQ(Get(d, ""), "empty key");
  ASSERT_EQ(shmdict_put(d, "e", 1, nullptr, 0, nullptr), SHMDICT_OK);
  size_t len = 99;
  EXPECT_EQ(shmdict_get(d, "e", 1, nullptr, 0, &len, nullptr), SHMDICT_OK);
  EXPECT_EQ(len, 0u);
  ASSERT_EQ(shmdict_erase(d, nullptr, 0), SHMDICT_OK);
  EXPECT_EQ(Get(d, ""), kMissing);
  EXPECT_EQ(Count(d), 3u);
}

TEST_F(CApiTest, GetReportsTheSizeNeeded) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(Put(d, "k", "0123456789"), SHMDICT_OK);
  char small[4];
  size_t len = 0;
  EXPECT_EQ(shmdict_get(d, "k", 1, small, sizeof(small), &len, nullptr), SHMDICT_EBUFFER);
  EXPECT_EQ(len, 10u);
  EXPECT_STRNE(shmdict_last_error(), "");
  // A NULL buffer of capacity 0 asks for the size only.
  len = 0;
  EXPECT_EQ(shmdict_get(d, "k", 1, nullptr, 0, &len, nullptr), SHMDICT_EBUFFER);
  EXPECT_EQ(len, 10u);
  // Exactly big enough.
  char exact[10];
  uint64_t version = 0;
  ASSERT_EQ(shmdict_get(d, "k", 1, exact, sizeof(exact), &len, &version), SHMDICT_OK);
  EXPECT_EQ(std::string(exact, len), "0123456789");
  uint64_t put_version = 0;
  ASSERT_EQ(Put(d, "k", "0123456789", &put_version), SHMDICT_OK);
  ASSERT_EQ(shmdict_get(d, "k", 1, exact, sizeof(exact), &len, &version), SHMDICT_OK);
  EXPECT_EQ(version, put_version);
  // A NULL buffer with a nonzero capacity.
  EXPECT_EQ(shmdict_get(d, "k", 1, nullptr, 5, &len, nullptr), SHMDICT_EINVAL);
  // A miss leaves the caller's buffer alone.
  char buf[8] = "xxxxxxx";
  EXPECT_EQ(shmdict_get(d, "absent", 6, buf, sizeof(buf), &len, nullptr), SHMDICT_ENOTFOUND);
  EXPECT_STREQ(buf, "xxxxxxx");
}

TEST_F(CApiTest, CompareAndSwap) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  uint64_t v1 = 0, v2 = 0, unchanged = 12345;
  // Expected version 0: insert-if-absent.
  ASSERT_EQ(shmdict_compare_and_swap(d, "k", 1, 0, "a", 1, &v1), SHMDICT_OK);
  EXPECT_NE(v1, 0u);
  EXPECT_EQ(shmdict_compare_and_swap(d, "k", 1, 0, "b", 1, &unchanged), SHMDICT_EVERSION);
  EXPECT_EQ(unchanged, 12345u);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(shmdict_compare_and_swap(d, "k", 1, v1 + 1, "b", 1, nullptr), SHMDICT_EVERSION);
  EXPECT_EQ(Get(d, "k"), "a");
  ASSERT_EQ(shmdict_compare_and_swap(d, "k", 1, v1, "b", 1, &v2), SHMDICT_OK);
  EXPECT_GT(v2, v1);
  EXPECT_EQ(Get(d, "k"), "b");
  EXPECT_EQ(shmdict_compare_and_swap(d, "k", 1, v1, "c", 1, nullptr), SHMDICT_EVERSION);
  EXPECT_EQ(shmdict_compare_and_swap(d, "absent", 6, 5, "c", 1, nullptr), SHMDICT_EVERSION);
  EXPECT_EQ(Get(d, "absent"), kMissing);
  EXPECT_EQ(Get(d, "k"), "b");
}

TEST_F(CApiTest, FetchAdd) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  int64_t sum = 0;
  ASSERT_EQ(shmdict_fetch_add(d, "n", 1, 5, &sum), SHMDICT_OK);
  EXPECT_EQ(sum, 5);
  ASSERT_EQ(shmdict_fetch_add(d, "n", 1, -7, &sum), SHMDICT_OK);
  EXPECT_EQ(sum, -2);
  // Stored as 8 little-endian bytes.
  const std::string raw = Get(d, "n");
  ASSERT_EQ(raw.size(), 8u);
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  uint64_t stored = 0;
  for (int i = 7; i >= 0; --i) stored = stored << 8 | bytes[i];
  EXPECT_EQ(static_cast<int64_t>(stored), -2);
  // Wraps around.
  ASSERT_EQ(shmdict_erase(d, "n", 1), SHMDICT_OK);
  ASSERT_EQ(shmdict_fetch_add(d, "n", 1, INT64_MAX, nullptr), SHMDICT_OK);
  ASSERT_EQ(shmdict_fetch_add(d, "n", 1, 1, &sum), SHMDICT_OK);
  EXPECT_EQ(sum, INT64_MIN);
  // Not an 8-byte value: ETYPE, and the value stays.
  ASSERT_EQ(Put(d, "s", "short"), SHMDICT_OK);
  sum = 42;
  EXPECT_EQ(shmdict_fetch_add(d, "s", 1, 1, &sum), SHMDICT_ETYPE);
  EXPECT_EQ(sum, 42);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(Get(d, "s"), "short");
  ASSERT_EQ(Put(d, "nine", "123456789"), SHMDICT_OK);
  EXPECT_EQ(shmdict_fetch_add(d, "nine", 4, 1, nullptr), SHMDICT_ETYPE);

  // A table whose values are shorter than 8 bytes.
  TempPath small;
  Handle s = Create(small, Options(10, 8, 4));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(shmdict_fetch_add(s.get(), "n", 1, 1, nullptr), SHMDICT_ETOOBIG);
}

TEST_F(CApiTest, Count) {
  shmdict* h = NewTable();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(Count(h), 0u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(Put(h, "k" + std::to_string(i), "v"), 0);
  EXPECT_EQ(Count(h), 100u);
  for (int i = 0; i < 30; ++i) {
    const std::string k = "k" + std::to_string(i);
    ASSERT_EQ(shmdict_erase(h, k.data(), k.size()), SHMDICT_OK);
  }
  EXPECT_EQ(Count(h), 70u);
  EXPECT_EQ(shmdict_count(h, nullptr), SHMDICT_OK);  // optional out-pointer
}

TEST_F(CApiTest, TooBig) {
  shmdict* d = NewTable(Options(100, 13, 21));
  ASSERT_NE(d, nullptr);
  const std::string key13(13, 'k'), key14(14, 'k'), value21(21, 'v'), value22(22, 'v');
  ASSERT_EQ(Put(d, key13, value21), SHMDICT_OK);
  EXPECT_EQ(Get(d, key13), value21);
  EXPECT_EQ(Put(d, key14, "v"), SHMDICT_ETOOBIG);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(Put(d, "k", value22), SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_insert(d, key14.data(), 14, "v", 1, nullptr), SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_insert(d, "k", 1, value22.data(), 22, nullptr), SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_replace(d, key13.data(), 13, value22.data(), 22, nullptr),
            SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_compare_and_swap(d, "k", 1, 0, value22.data(), 22, nullptr),
            SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_compare_and_swap(d, key14.data(), 14, 0, "v", 1, nullptr),
            SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_erase(d, key14.data(), 14), SHMDICT_ETOOBIG);
  EXPECT_EQ(shmdict_fetch_add(d, key14.data(), 14, 1, nullptr), SHMDICT_ETOOBIG);
  // A lookup of an oversized key is a miss, not an error of its own.
  EXPECT_EQ(Get(d, key14), kMissing);
  EXPECT_EQ(Get(d, key13), value21);
  EXPECT_EQ(Count(d), 1u);
}

TEST_F(CApiTest, FullTable) {
  shmdict* d = NewTable(Options(16, 8, 8));
  ASSERT_NE(d, nullptr);
  int n = 0;
  int rc = SHMDICT_OK;
  for (; n < 100000; ++n) {
    const std::string k = std::to_string(n);
    rc = shmdict_insert(d, k.data(), k.size(), "v", 1, nullptr);
    if (rc != SHMDICT_OK) break;
  }
  EXPECT_EQ(rc, SHMDICT_EFULL) << shmdict_last_error();
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_GE(n, 16);
  EXPECT_EQ(Count(d), static_cast<uint64_t>(n));
  // A present key can still be updated; erasing frees room.
  EXPECT_EQ(Put(d, "0", "w"), SHMDICT_OK);
  ASSERT_EQ(shmdict_erase(d, "1", 1), SHMDICT_OK);
  EXPECT_EQ(shmdict_insert(d, "1", 1, "x", 1, nullptr), SHMDICT_OK);
}

// ---------------------------------------------------------------------------------
// shmdict_wait

int64_t MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

TEST_F(CApiTest, WaitReturnsAtOnceWhenTheVersionDiffers) {
  uint64_t v = 0;
  shmdict* d = NewTableWithK(&v);
  ASSERT_NE(d, nullptr);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(shmdict_wait(d, "k", 1, 0, 10000), SHMDICT_OK);  // present, not absent
  EXPECT_EQ(shmdict_wait(d, "k", 1, v - 1, 10000), SHMDICT_OK);
  EXPECT_EQ(shmdict_wait(d, "k", 1, v + 1, -1), SHMDICT_OK);
  EXPECT_EQ(shmdict_wait(d, "absent", 6, 1, -1), SHMDICT_OK);  // absent is version 0
  EXPECT_LT(MillisecondsSince(start), 5000);
}

TEST_F(CApiTest, WaitTimesOut) {
  uint64_t v = 0;
  shmdict* d = NewTableWithK(&v);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(shmdict_wait(d, "k", 1, v, 0), SHMDICT_ETIMEOUT);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(shmdict_wait(d, "absent", 6, 0, 0), SHMDICT_ETIMEOUT);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(shmdict_wait(d, "k", 1, v, 50), SHMDICT_ETIMEOUT);
  const int64_t waited = MillisecondsSince(start);
  EXPECT_GE(waited, 49);
  EXPECT_LT(waited, 5000);
  // A read-only handle (which polls) times out the same way.
  Handle r = Open(path(), SHMDICT_READONLY, nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(shmdict_wait(r.get(), "k", 1, v, 20), SHMDICT_ETIMEOUT);
}

// Waits in a thread for `key` to leave `version` on `waiter`, while `writer` writes it
// after a delay. Returns the wait's result.
int WaitWhileAnotherWrites(shmdict* waiter, shmdict* writer, const std::string& key,
                           uint64_t version, int64_t timeout_ms) {
  std::atomic<int> rc{1};
  std::thread waiting([&] {
    rc = shmdict_wait(waiter, key.data(), key.size(), version, timeout_ms);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rc.load(), 1) << "the wait returned before the write";
  EXPECT_EQ(Put(writer, key, "changed"), SHMDICT_OK);
  waiting.join();
  return rc.load();
}

TEST_F(CApiTest, WaitWakesOnAWrite) {
  uint64_t v = 0;
  shmdict* a = NewTableWithK(&v);
  ASSERT_NE(a, nullptr);
  Handle b = Open(path(), 0, nullptr);
  ASSERT_NE(b, nullptr);
  auto start = std::chrono::steady_clock::now();
  // An update, through another handle, without a timeout.
  EXPECT_EQ(WaitWhileAnotherWrites(a, b.get(), "k", v, -1), SHMDICT_OK);
  EXPECT_LT(MillisecondsSince(start), 5000);
  // An insert (version 0: wait for the key to appear), with a long timeout.
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(WaitWhileAnotherWrites(a, a, "new", 0, 60000), SHMDICT_OK);
  EXPECT_LT(MillisecondsSince(start), 5000);
  // A read-only waiter notices by polling.
  Handle r = Open(path(), SHMDICT_READONLY, nullptr);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(Put(a, "ro", "v", &v), SHMDICT_OK);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(WaitWhileAnotherWrites(r.get(), a, "ro", v, 60000), SHMDICT_OK);
  EXPECT_LT(MillisecondsSince(start), 5000);
}

TEST_F(CApiTest, WaitWakesOnAnotherProcessWrite) {
  uint64_t v = 0;
  shmdict* h = NewTableWithK(&v);
  ASSERT_NE(h, nullptr);
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    shmdict* d = nullptr;
    if (shmdict_open(path(), 0, nullptr, &d) != SHMDICT_OK) _exit(1);
    usleep(100 * 1000);
    _exit(shmdict_put(d, "k", 1, "w", 1, nullptr) == SHMDICT_OK ? 0 : 2);
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(shmdict_wait(h, "k", 1, v, 30000), SHMDICT_OK) << shmdict_last_error();
  EXPECT_LT(MillisecondsSince(start), 10000);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Get(h, "k"), "w");
}

TEST_F(CApiTest, WaitArgumentErrors) {
  shmdict* h = NewTable(Options(100, 8, 8));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(shmdict_wait(nullptr, "k", 1, 0, 0), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_wait(h, nullptr, 1, 0, 0), SHMDICT_EINVAL);
  EXPECT_STRNE(shmdict_last_error(), "");
  // A key over the maximum can never change.
  EXPECT_EQ(shmdict_wait(h, "123456789", 9, 0, -1), SHMDICT_ETOOBIG);
  // The empty key is a key.
  EXPECT_EQ(shmdict_wait(h, nullptr, 0, 0, 0), SHMDICT_ETIMEOUT);
  ASSERT_EQ(shmdict_put(h, nullptr, 0, "v", 1, nullptr), SHMDICT_OK);
  EXPECT_EQ(shmdict_wait(h, nullptr, 0, 0, 0), SHMDICT_OK);
}

// The longest timeout (INT64_MAX ms) waits: the deadline saturates instead of wrapping.
TEST_F(CApiTest, WaitWithTheLongestTimeoutWaits) {
  uint64_t v = 0;
  shmdict* h = NewTableWithK(&v);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(WaitWhileAnotherWrites(h, h, "k", v, INT64_MAX), SHMDICT_OK);
}

// ---------------------------------------------------------------------------------
// Argument checks

TEST_F(CApiTest, NullHandleIsInvalid) {
  ExpectEveryCallInvalid(nullptr);
  EXPECT_STRNE(shmdict_last_error(), "");
}

TEST_F(CApiTest, NullPointersWithNonzeroLengthsAreInvalid) {
  shmdict* d = NewTableWithK();
  ASSERT_NE(d, nullptr);
  char buf[8];
  size_t len = 0;
  // NULL keys.
  EXPECT_EQ(shmdict_get(d, nullptr, 1, buf, sizeof(buf), &len, nullptr), SHMDICT_EINVAL);
  EXPECT_STRNE(shmdict_last_error(), "");
  EXPECT_EQ(shmdict_put(d, nullptr, 1, "v", 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_insert(d, nullptr, 1, "v", 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_replace(d, nullptr, 1, "v", 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_erase(d, nullptr, 1), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_compare_and_swap(d, nullptr, 1, 0, "v", 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_fetch_add(d, nullptr, 1, 1, nullptr), SHMDICT_EINVAL);
  // NULL values and buffers.
  EXPECT_EQ(shmdict_put(d, "k", 1, nullptr, 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_insert(d, "n", 1, nullptr, 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_replace(d, "k", 1, nullptr, 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_compare_and_swap(d, "n", 1, 0, nullptr, 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_get(d, "k", 1, nullptr, 1, &len, nullptr), SHMDICT_EINVAL);
  // Nothing was written.
  EXPECT_EQ(Get(d, "k"), "v");
  EXPECT_EQ(Get(d, "n"), kMissing);
  EXPECT_EQ(Count(d), 1u);
}

TEST_F(CApiTest, OptionalOutPointersMayBeNull) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(shmdict_put(d, "k", 1, "v", 1, nullptr), SHMDICT_OK);
  EXPECT_EQ(shmdict_insert(d, "i", 1, "v", 1, nullptr), SHMDICT_OK);
  EXPECT_EQ(shmdict_replace(d, "k", 1, "w", 1, nullptr), SHMDICT_OK);
  EXPECT_EQ(shmdict_compare_and_swap(d, "c", 1, 0, "v", 1, nullptr), SHMDICT_OK);
  EXPECT_EQ(shmdict_fetch_add(d, "n", 1, 1, nullptr), SHMDICT_OK);
  char buf[8];
  EXPECT_EQ(shmdict_get(d, "k", 1, buf, sizeof(buf), nullptr, nullptr), SHMDICT_OK);
  EXPECT_EQ(buf[0], 'w');
  EXPECT_EQ(shmdict_get(d, "n", 1, buf, 2, nullptr, nullptr), SHMDICT_EBUFFER);
  EXPECT_EQ(shmdict_count(d, nullptr), SHMDICT_OK);
  EXPECT_EQ(Count(d), 4u);
}

// ---------------------------------------------------------------------------------
// Threads and processes

TEST_F(CApiTest, ThreadsShareAHandle) {
  shmdict* h = NewTable();
  ASSERT_NE(h, nullptr);
  constexpr int kThreads = 4, kAdds = 2000;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kAdds; ++j) {
        if (shmdict_fetch_add(h, "n", 1, 1, nullptr) != SHMDICT_OK) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t sum = 0;
  ASSERT_EQ(shmdict_fetch_add(h, "n", 1, 0, &sum), SHMDICT_OK);
  EXPECT_EQ(sum, kThreads * kAdds);
}

TEST_F(CApiTest, ChildUsesAnInheritedHandle) {
  shmdict* h = NewTable();
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(Put(h, "parent", "1"), SHMDICT_OK);
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = shmdict_put(h, "child", 5, "2", 1, nullptr);
    if (rc == SHMDICT_OK) rc = shmdict_fetch_add(h, "n", 1, 3, nullptr);
    _exit(rc == SHMDICT_OK ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Get(h, "child"), "2");
  int64_t sum = 0;
  ASSERT_EQ(shmdict_fetch_add(h, "n", 1, 1, &sum), SHMDICT_OK);
  EXPECT_EQ(sum, 4);
}

}  // namespace

namespace {

using CApiForEachTest = CApiTest;

struct Visited {
  std::map<std::string, std::pair<std::string, uint64_t>> entries;
  int stop_after = -1;  // stop when this many entries were visited (-1: never)
};

int Visit(void* ctx, const void* key, size_t key_len, const void* value, size_t value_len,
          uint64_t version) {
  auto* v = static_cast<Visited*>(ctx);
  v->entries[std::string(static_cast<const char*>(key), key_len)] = {
      std::string(static_cast<const char*>(value), value_len), version};
  return v->stop_after >= 0 && static_cast<int>(v->entries.size()) >= v->stop_after;
}

TEST_F(CApiForEachTest, VisitsEveryEntryOnceWithItsVersion) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  std::map<std::string, std::pair<std::string, uint64_t>> want;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i), value = std::string(i % 7, 'v');
    uint64_t version = 0;
    ASSERT_EQ(Put(d, key, value, &version), SHMDICT_OK);
    want[key] = {value, version};
  }
  ASSERT_EQ(shmdict_erase(d, "k5", 2), SHMDICT_OK);
  want.erase("k5");
  Visited v;
  ASSERT_EQ(shmdict_foreach(d, Visit, &v), SHMDICT_OK);
  EXPECT_EQ(v.entries, want);
}

TEST_F(CApiForEachTest, StopsWhenTheCallbackSaysSo) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Put(d, "k" + std::to_string(i), "v"), SHMDICT_OK);
  Visited v;
  v.stop_after = 3;
  ASSERT_EQ(shmdict_foreach(d, Visit, &v), SHMDICT_OK);
  EXPECT_EQ(v.entries.size(), 3u);
}

TEST_F(CApiForEachTest, TheCallbackMayWriteTheTable) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Put(d, "k" + std::to_string(i), "v"), SHMDICT_OK);
  struct Ctx {
    shmdict* d;
    int visited = 0;
  } ctx{d};
  auto erase_each = [](void* c, const void* key, size_t key_len, const void*, size_t,
                       uint64_t) {
    auto* x = static_cast<Ctx*>(c);
    ++x->visited;
    return shmdict_erase(x->d, key, key_len) == SHMDICT_OK ? 0 : 1;
  };
  ASSERT_EQ(shmdict_foreach(d, erase_each, &ctx), SHMDICT_OK);
  EXPECT_EQ(ctx.visited, 20);
  EXPECT_EQ(Count(d), 0u);
}

TEST_F(CApiForEachTest, BadArguments) {
  shmdict* d = NewTable();
  ASSERT_NE(d, nullptr);
  Visited v;
  EXPECT_EQ(shmdict_foreach(nullptr, Visit, &v), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_foreach(d, nullptr, &v), SHMDICT_EINVAL);
  EXPECT_STRNE(shmdict_last_error(), "");
  ASSERT_EQ(shmdict_foreach(d, Visit, &v), SHMDICT_OK);  // empty table
  EXPECT_TRUE(v.entries.empty());
}

}  // namespace
