// Functional tests of shmdict::Dict: operations, errors, versions, sizes.
#include "api/shmdict.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict {
namespace {

using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::TempTable;

// Each test's table file, at a path of its own, removed after the test.
class DictTest : public ::testing::Test {
 protected:
  // Creates the table (see CreateOptions) and opens it.
  absl::StatusOr<Dict> Create(uint64_t capacity = 1000, uint32_t key = 32,
                              uint32_t value = 64) {
    return Dict::Open(path(), CreateOptions(capacity, key, value));
  }
  const std::string& path() const { return table_.path(); }

 private:
  TempTable table_;
};

ErrorCode Code(const absl::Status& s) { return ErrorCodeOf(s); }
template <typename T>
ErrorCode Code(const absl::StatusOr<T>& s) {
  return ErrorCodeOf(s.status());
}

TEST_F(DictTest, PutGetRoundTrip) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<uint64_t> v1 = d->Put("alpha", "one");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_GT(*v1, 0u);
  uint64_t version = 0;
  absl::StatusOr<std::string> got = d->Get("alpha", &version);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "one");
  EXPECT_EQ(version, *v1);
  absl::StatusOr<uint64_t> v2 = d->Put("alpha", "two");
  ASSERT_TRUE(v2.ok());
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ(*d->Get("alpha"), "two");
  EXPECT_TRUE(d->Contains("alpha"));
  EXPECT_FALSE(d->Contains("beta"));
  EXPECT_EQ(Code(d->Get("beta")), ErrorCode::kNotFound);
  EXPECT_EQ(d->Count(), 1u);
}

// GetMany agrees with GetInto key by key: hits, misses, oversized keys, values that do
// not fit, and batches longer than the engine's internal groups and chunks.
TEST_F(DictTest, GetManyAgreesWithGetInto) {
  absl::StatusOr<Dict> d = Create(2000, 16, 64);
  ASSERT_TRUE(d.ok()) << d.status();
  std::mt19937_64 rng(::shmdict::testing::TestSeed());
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    std::string k = "k" + std::to_string(rng() % 1000);
    if (i % 3 != 0) {
      ASSERT_TRUE(d->Put(k, std::string(rng() % 65, char('a' + i % 26))).ok());
    }
    keys.push_back(k);
  }
  keys.push_back(std::string(17, 'x'));  // over the maximum key size: a miss
  keys.push_back("");
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<std::string> storage(keys.size());
  std::vector<absl::Span<char>> buffers;
  for (size_t i = 0; i < keys.size(); ++i) {
    storage[i].resize(i % 7 == 0 ? 4 : 64);  // some too small
    buffers.emplace_back(storage[i].data(), storage[i].size());
  }
  std::vector<GetManyResult> results(keys.size());
  absl::StatusOr<size_t> found = d->GetMany(views, buffers, absl::MakeSpan(results));
  ASSERT_TRUE(found.ok()) << found.status();
  size_t want_found = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    char buf[64];
    size_t len = 0;
    uint64_t version = 0;
    const absl::Status want = d->GetInto(keys[i], buf, storage[i].size(), &len, &version);
    EXPECT_EQ(Code(results[i].status), Code(want)) << i << " " << keys[i];
    if (want.ok() || Code(want) == ErrorCode::kBuffer) {
      ++want_found;
      EXPECT_EQ(results[i].value_len, len) << i;
      EXPECT_EQ(results[i].version, version) << i;
    }
    if (want.ok()) {
      EXPECT_EQ(std::string_view(storage[i].data(), len), std::string_view(buf, len)) << i;
    }
  }
  EXPECT_EQ(*found, want_found);
  EXPECT_GT(want_found, 0u);
  EXPECT_LT(want_found, keys.size());
  // Spans of different lengths are refused.
  EXPECT_EQ(Code(d->GetMany(views, absl::MakeConstSpan(buffers).subspan(1),
                            absl::MakeSpan(results))),
            ErrorCode::kInvalid);
}

TEST_F(DictTest, SecondHandleSeesWrites) {
  absl::StatusOr<Dict> a = Create();
  ASSERT_TRUE(a.ok());
  absl::StatusOr<Dict> b = Dict::Open(path(), OpenOptions());
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(a->Put("k", "v").ok());
  EXPECT_EQ(*b->Get("k"), "v");
  ASSERT_TRUE(b->Put("k", "w").ok());
  EXPECT_EQ(*a->Get("k"), "w");
}

TEST_F(DictTest, InsertReplaceErase) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Code(d->Replace("k", "x")), ErrorCode::kNotFound);
  ASSERT_TRUE(d->Insert("k", "a").ok());
  EXPECT_EQ(Code(d->Insert("k", "b")), ErrorCode::kExists);
  EXPECT_EQ(*d->Get("k"), "a");
  ASSERT_TRUE(d->Replace("k", "c").ok());
  EXPECT_EQ(*d->Get("k"), "c");
  ASSERT_TRUE(d->Erase("k").ok());
  EXPECT_EQ(Code(d->Get("k")), ErrorCode::kNotFound);
  EXPECT_EQ(Code(d->Erase("k")), ErrorCode::kNotFound);
  EXPECT_EQ(d->Count(), 0u);
  EXPECT_EQ(d->Version("k"), 0u);
}

TEST_F(DictTest, BinaryKeysWithNulBytesAndEmptyValues) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  const std::string k1("a\0b", 3), k2("a\0c", 3), k3("a", 1), k4("", 0);
  const std::string v1("\0\0\xff", 3);
  ASSERT_TRUE(d->Put(k1, v1).ok());
  ASSERT_TRUE(d->Put(k2, "").ok());
  ASSERT_TRUE(d->Put(k3, "x").ok());
  ASSERT_TRUE(d->Put(k4, "empty key").ok());
  EXPECT_EQ(*d->Get(k1), v1);
  EXPECT_EQ(*d->Get(k2), "");
  EXPECT_TRUE(d->Contains(k2));
  EXPECT_EQ(*d->Get(k3), "x");
  EXPECT_EQ(*d->Get(k4), "empty key");
  EXPECT_EQ(Code(d->Get(std::string("a\0", 2))), ErrorCode::kNotFound);
  EXPECT_EQ(d->Count(), 4u);
  std::map<std::string, std::string> seen;
  d->ForEach([&](std::string_view k, std::string_view v, uint64_t version) {
    EXPECT_GT(version, 0u);
    seen.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_EQ(seen, (std::map<std::string, std::string>{
                      {k1, v1}, {k2, ""}, {k3, "x"}, {k4, "empty key"}}));
}

TEST_F(DictTest, SizesAtAndOverTheMaxima) {
  absl::StatusOr<Dict> d = Create(100, 13, 21);
  ASSERT_TRUE(d.ok());
  const std::string key13(13, 'k'), value21(21, 'v');
  ASSERT_TRUE(d->Put(key13, value21).ok());
  EXPECT_EQ(*d->Get(key13), value21);
  EXPECT_EQ(Code(d->Put(std::string(14, 'k'), "v")), ErrorCode::kTooBig);
  EXPECT_EQ(Code(d->Put("k", std::string(22, 'v'))), ErrorCode::kTooBig);
  EXPECT_EQ(Code(d->Insert("k", std::string(22, 'v'))), ErrorCode::kTooBig);
  EXPECT_EQ(Code(d->CompareAndSwap("k", 0, std::string(22, 'v'))), ErrorCode::kTooBig);
  EXPECT_EQ(Code(d->Erase(std::string(14, 'k'))), ErrorCode::kTooBig);
  // Nothing was stored by the refused writes, and nothing truncated.
  EXPECT_EQ(Code(d->Get("k")), ErrorCode::kNotFound);
  EXPECT_EQ(Code(d->Get(std::string(14, 'k'))), ErrorCode::kNotFound);
  EXPECT_EQ(d->Count(), 1u);
}

TEST_F(DictTest, GetIntoReportsTheSizeNeeded) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Put("k", "0123456789").ok());
  char small[4];
  size_t len = 0;
  EXPECT_EQ(Code(d->GetInto("k", small, sizeof(small), &len)), ErrorCode::kBuffer);
  EXPECT_EQ(len, 10u);
  char big[16];
  uint64_t version = 0;
  ASSERT_TRUE(d->GetInto("k", big, sizeof(big), &len, &version).ok());
  EXPECT_EQ(std::string(big, len), "0123456789");
  EXPECT_EQ(version, d->Version("k"));
  EXPECT_EQ(Code(d->GetInto("k", nullptr, 5, &len)), ErrorCode::kInvalid);
  ASSERT_TRUE(d->Put("e", "").ok());
  EXPECT_TRUE(d->GetInto("e", nullptr, 0, &len).ok());
  EXPECT_EQ(len, 0u);
}

TEST_F(DictTest, CompareAndSwap) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  // Version 0 means insert-if-absent.
  absl::StatusOr<uint64_t> v1 = d->CompareAndSwap("k", 0, "a");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(Code(d->CompareAndSwap("k", 0, "b")), ErrorCode::kVersion);
  EXPECT_EQ(Code(d->CompareAndSwap("k", *v1 + 1, "b")), ErrorCode::kVersion);
  EXPECT_EQ(*d->Get("k"), "a");
  absl::StatusOr<uint64_t> v2 = d->CompareAndSwap("k", *v1, "b");
  ASSERT_TRUE(v2.ok());
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ(*d->Get("k"), "b");
  EXPECT_EQ(Code(d->CompareAndSwap("k", *v1, "c")), ErrorCode::kVersion);
  EXPECT_EQ(Code(d->CompareAndSwap("absent", 5, "c")), ErrorCode::kVersion);
  EXPECT_FALSE(d->Contains("absent"));
}

TEST_F(DictTest, FetchAdd) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  uint64_t version = 0;
  EXPECT_EQ(*d->FetchAdd("n", 5, &version), 5);
  EXPECT_EQ(version, d->Version("n"));
  EXPECT_EQ(*d->FetchAdd("n", -7), -2);
  std::string raw = *d->Get("n");
  ASSERT_EQ(raw.size(), 8u);
  int64_t stored;
  std::memcpy(&stored, raw.data(), 8);
  EXPECT_EQ(stored, -2);
  // Wraps around.
  ASSERT_TRUE(d->Erase("n").ok());
  ASSERT_TRUE(d->FetchAdd("n", INT64_MAX).ok());
  EXPECT_EQ(*d->FetchAdd("n", 1), INT64_MIN);
  ASSERT_TRUE(d->Put("s", "short").ok());
  EXPECT_EQ(Code(d->FetchAdd("s", 1)), ErrorCode::kType);
  EXPECT_EQ(*d->Get("s"), "short");
}

TEST_F(DictTest, FetchAddNeedsEightByteValues) {
  absl::StatusOr<Dict> d = Create(10, 8, 4);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Code(d->FetchAdd("n", 1)), ErrorCode::kTooBig);
}

TEST_F(DictTest, VersionsIncreaseAndNeverRepeatAcrossEraseAndReinsert) {
  // A small table, so that re-inserts land in either of the key's buckets.
  absl::StatusOr<Dict> d = Create(64, 16, 16);
  ASSERT_TRUE(d.ok());
  std::mt19937_64 rng(shmdict::testing::TestSeed());
  std::map<std::string, std::set<uint64_t>> seen;
  std::map<std::string, uint64_t> last;
  for (int round = 0; round < 20000; ++round) {
    const std::string key = "k" + std::to_string(rng() % 40);
    const int op = static_cast<int>(rng() % 4);
    if (op == 0) {
      absl::Status s = d->Erase(key);
      ASSERT_TRUE(s.ok() || Code(s) == ErrorCode::kNotFound) << s;
      continue;
    }
    absl::StatusOr<uint64_t> v = d->Put(key, "v" + std::to_string(round));
    if (!v.ok() && Code(v) == ErrorCode::kFull) continue;
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_NE(*v, 0u);
    ASSERT_TRUE(seen[key].insert(*v).second) << "version " << *v << " reused for " << key;
    ASSERT_GT(*v, last[key]) << key;
    last[key] = *v;
  }
}

TEST_F(DictTest, FillingToTheFirstFullKeepsEveryKey) {
  const uint64_t capacity = 20000;
  absl::StatusOr<Dict> d = Create(capacity, 16, 8);
  ASSERT_TRUE(d.ok());
  uint64_t n = 0;
  absl::Status last;
  auto key_of = [](uint64_t i) {
    std::string k = std::to_string(i);
    return "key" + std::string(13 - k.size(), '0') + k;
  };
  for (;; ++n) {
    absl::StatusOr<uint64_t> v = d->Insert(key_of(n), std::string(8, char('a' + n % 26)));
    if (!v.ok()) {
      last = v.status();
      break;
    }
  }
  EXPECT_EQ(Code(last), ErrorCode::kFull) << last;
  const Stats s = d->GetStats();
  std::fprintf(stderr, "first EFULL after %llu keys: load factor %.3f of %llu slots\n",
               static_cast<unsigned long long>(n), double(n) / double(s.slot_count),
               static_cast<unsigned long long>(s.slot_count));
  EXPECT_GE(n, capacity) << "the promised capacity must fit";
  EXPECT_EQ(d->Count(), n);
  for (uint64_t i = 0; i < n; ++i) {
    absl::StatusOr<std::string> v = d->Get(key_of(i));
    ASSERT_TRUE(v.ok()) << key_of(i);
    ASSERT_EQ(*v, std::string(8, char('a' + i % 26)));
  }
  // Updates of present keys still work in a full table; erasing frees room.
  EXPECT_TRUE(d->Put("key0000000000000", "zzzzzzzz").ok());
  ASSERT_TRUE(d->Erase("key0000000000001").ok());
  EXPECT_TRUE(d->Insert("key0000000000001", "yyyyyyyy").ok());
}

TEST_F(DictTest, ReadOnlyHandleReadsAndRefusesWrites) {
  {
    absl::StatusOr<Dict> d = Create();
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(d->Put("k", "v").ok());
  }
  ASSERT_EQ(chmod(path().c_str(), 0400), 0);
  OpenOptions ro;
  ro.read_only = true;
  absl::StatusOr<Dict> r = Dict::Open(path(), ro);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r->Get("k"), "v");
  EXPECT_EQ(Code(r->Put("k", "w")), ErrorCode::kPermission);
  EXPECT_EQ(Code(r->Erase("k")), ErrorCode::kPermission);
  EXPECT_EQ(Code(r->FetchAdd("n", 1)), ErrorCode::kPermission);
  EXPECT_EQ(*r->Get("k"), "v");
  OpenOptions bad = ro;
  bad.create = true;
  EXPECT_EQ(Code(Dict::Open(path(), bad)), ErrorCode::kInvalid);
}

TEST_F(DictTest, OpenOptionsAreChecked) {
  EXPECT_EQ(Code(Dict::Open(path(), OpenOptions())), ErrorCode::kNotFound);
  EXPECT_EQ(Code(Create(0)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(10, 0, 8)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(10, 8, 0)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(10, 70000, 8)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(uint64_t{1} << 40)), ErrorCode::kInvalid);
  OpenOptions world = CreateOptions();
  world.mode = 0666;
  EXPECT_EQ(Code(Dict::Open(path(), world)), ErrorCode::kInvalid);
  OpenOptions group = CreateOptions();
  group.mode = 0660;
  EXPECT_EQ(Code(Dict::Open(path(), group)), ErrorCode::kInvalid);
  OpenOptions excl_only;
  excl_only.exclusive = true;
  EXPECT_EQ(Code(Dict::Open(path(), excl_only)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Dict::Open("", CreateOptions())), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Dict::Open("..", CreateOptions())), ErrorCode::kInvalid);
  // None of the refused calls created a file.
  EXPECT_NE(access(path().c_str(), F_OK), 0);

  ASSERT_TRUE(Create(10, 8, 8).ok());
  OpenOptions excl = CreateOptions(10, 8, 8);
  excl.exclusive = true;
  EXPECT_EQ(Code(Dict::Open(path(), excl)), ErrorCode::kExists);
  EXPECT_TRUE(Create(10, 8, 8).ok());
  EXPECT_EQ(Code(Create(11, 8, 8)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(10, 9, 8)), ErrorCode::kInvalid);
  EXPECT_EQ(Code(Create(10, 8, 9)), ErrorCode::kInvalid);
}

TEST_F(DictTest, NameWithoutSlashLivesInDevShm) {
  const std::string name = "shmdict-test-name-" + std::to_string(getpid());
  unlink(("/dev/shm/" + name).c_str());
  {
    absl::StatusOr<Dict> d = Dict::Open(name, CreateOptions());
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->path(), "/dev/shm/" + name);
    struct stat st;
    ASSERT_EQ(stat(("/dev/shm/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_TRUE(Dict::Unlink(name).ok());
  EXPECT_EQ(Code(Dict::Unlink(name)), ErrorCode::kNotFound);
}

TEST_F(DictTest, UnlinkRefusesFilesThatAreNotTables) {
  ASSERT_TRUE(::shmdict::testing::WriteFile(path(), "precious data"));
  EXPECT_EQ(Code(Dict::Unlink(path())), ErrorCode::kBadFile);
  EXPECT_EQ(access(path().c_str(), F_OK), 0) << "a foreign file was removed";
}

TEST_F(DictTest, StatsDescribeTheTable) {
  absl::StatusOr<Dict> d = Create(1000, 16, 64);
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(d->Put("k" + std::to_string(i), "v").ok());
  const Stats s = d->GetStats();
  EXPECT_EQ(s.capacity, 1000u);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.slot_count, s.bucket_count * 16);
  EXPECT_GE(s.slot_count * 4, s.capacity * 5);  // sized for 80% load
  EXPECT_DOUBLE_EQ(s.load_factor, 100.0 / double(s.slot_count));
  EXPECT_EQ(s.max_key_size, 16u);
  EXPECT_EQ(s.max_value_size, 64u);
  EXPECT_EQ(s.live_processes, 1u);
  EXPECT_EQ(s.recoveries, 0u);
  struct stat st;
  ASSERT_EQ(stat(path().c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), s.file_size);
}

TEST_F(DictTest, ForEachStopsWhenAsked) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(d->Put("k" + std::to_string(i), "v").ok());
  int calls = 0;
  d->ForEach([&](std::string_view, std::string_view, uint64_t) { return ++calls < 7; });
  EXPECT_EQ(calls, 7);
}

TEST_F(DictTest, ChildAfterForkWritesWithItsOwnProcessEntry) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Put("parent", "1").ok());  // the parent registers
  const pid_t pid = shmdict::testing::ForkChild([&]() -> int {
    if (!d->Put("child", "2").ok()) return 1;
    if (d->GetStats().live_processes != 2) return 2;
    return 0;
  });
  const int status = shmdict::testing::WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(*d->Get("child"), "2");
  // The child's exit freed its entry; the parent's is still held.
  EXPECT_EQ(d->GetStats().live_processes, 1u);
}

TEST(ErrorCodeTest, NamesAndCodesAgree) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kFull), "SHMDICT_EFULL");
  EXPECT_EQ(ErrorCodeOf(MakeError(ErrorCode::kTooBig, "x")), ErrorCode::kTooBig);
  EXPECT_EQ(ErrorCodeOf(MakeError(ErrorCode::kInvalid, "x")), ErrorCode::kInvalid);
  EXPECT_EQ(MakeError(ErrorCode::kTooBig, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorCodeOf(absl::NotFoundError("x")), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorCodeOf(absl::UnavailableError("x")), ErrorCode::kIo);
  EXPECT_EQ(OsErrnoOf(MakeOsError("x", 28)), 28);
  EXPECT_EQ(ErrorCodeName(static_cast<ErrorCode>(-99)), "SHMDICT_EUNKNOWN");
}

}  // namespace
}  // namespace shmdict
