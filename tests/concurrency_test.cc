// Torn-read hunting and atomicity under concurrency, with threads (which
// ThreadSanitizer checks) and with processes. Every value carries its own check: its
// length, and every byte after its header, follow from the header, so a mix of two
// writes shows. Each test stops at a deadline and logs its seed.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/shmdict.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict {
namespace {

using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkChild;
using ::shmdict::testing::Sanitized;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::TestSeed;
using ::shmdict::testing::WaitChild;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxValue = 256;
constexpr int kHotKeys = 6;

std::string KeyName(int k) { return "hot" + std::to_string(k); }

// A self-checking value: {key, writer, seq} then a fill that depends on all three;
// the length depends on seq too.
std::string MakeValue(uint32_t key, uint32_t writer, uint64_t seq) {
  const size_t len = 16 + (seq * 7 + writer) % (kMaxValue - 16 + 1);
  std::string v(len, '\0');
  std::memcpy(v.data(), &key, 4);
  std::memcpy(v.data() + 4, &writer, 4);
  std::memcpy(v.data() + 8, &seq, 8);
  for (size_t i = 16; i < len; ++i) {
    v[i] = static_cast<char>((seq * 131 + writer * 31 + key * 7 + i) & 0xFF);
  }
  return v;
}

// Empty string if `v` is a well-formed value of key `key`, else what is wrong.
std::string CheckValue(uint32_t key, const std::string& v) {
  if (v.size() < 16) return "short value";
  uint32_t k, writer;
  uint64_t seq;
  std::memcpy(&k, v.data(), 4);
  std::memcpy(&writer, v.data() + 4, 4);
  std::memcpy(&seq, v.data() + 8, 8);
  if (k != key) return "value of another key";
  if (v != MakeValue(k, writer, seq)) return "torn value";
  return "";
}

struct Budget {
  std::chrono::milliseconds duration;
};

Budget RunFor() {
  return {std::chrono::milliseconds(Sanitized() ? 700 : 1500)};
}

// One reader's loop: reads the hot keys, checks each value, and checks that the
// versions it sees of a key never go back (linearizability implies that, for one
// reader's successive reads). Returns an error description or "".
std::string ReaderLoop(const Dict& d, uint64_t seed, Clock::time_point deadline,
                       uint64_t* reads) {
  std::mt19937_64 rng(seed);
  uint64_t last_version[kHotKeys] = {};
  std::string value;
  char buf[kMaxValue];
  uint64_t n = 0;
  while (Clock::now() < deadline) {
    for (int rep = 0; rep < 64; ++rep, ++n) {
      const int k = static_cast<int>(rng() % kHotKeys);
      uint64_t version = 0;
      absl::Status s;
      if (rng() % 2 == 0) {
        absl::StatusOr<std::string> got = d.Get(KeyName(k), &version);
        s = got.status();
        if (got.ok()) value = *got;
      } else {
        size_t len = 0;
        s = d.GetInto(KeyName(k), buf, sizeof(buf), &len, &version);
        if (s.ok()) value.assign(buf, len);
      }
      if (ErrorCodeOf(s) == ErrorCode::kNotFound) continue;  // erased right now
      if (!s.ok()) return "read failed: " + std::string(s.message());
      if (std::string err = CheckValue(static_cast<uint32_t>(k), value); !err.empty()) {
        return err + " for " + KeyName(k);
      }
      if (version < last_version[k]) return "version went back for " + KeyName(k);
      last_version[k] = version;
    }
  }
  *reads = n;
  return "";
}

// One writer's loop: puts, erases and compare-and-swaps on the hot keys.
std::string WriterLoop(Dict& d, uint32_t writer, uint64_t seed, Clock::time_point deadline,
                       uint64_t* writes) {
  std::mt19937_64 rng(seed);
  uint64_t seq = 0, n = 0;
  while (Clock::now() < deadline) {
    for (int rep = 0; rep < 16; ++rep, ++n) {
      const uint32_t k = static_cast<uint32_t>(rng() % kHotKeys);
      const std::string value = MakeValue(k, writer, ++seq);
      const int op = static_cast<int>(rng() % 10);
      if (op == 0) {
        absl::Status s = d.Erase(KeyName(k));
        if (!s.ok() && ErrorCodeOf(s) != ErrorCode::kNotFound) {
          return "erase failed: " + std::string(s.message());
        }
      } else if (op == 1) {
        const uint64_t v = d.Version(KeyName(k));
        absl::StatusOr<uint64_t> r = d.CompareAndSwap(KeyName(k), v, value);
        if (!r.ok() && ErrorCodeOf(r.status()) != ErrorCode::kVersion) {
          return "cas failed: " + std::string(r.status().message());
        }
      } else {
        absl::StatusOr<uint64_t> r = d.Put(KeyName(k), value);
        if (!r.ok()) return "put failed: " + std::string(r.status().message());
      }
    }
  }
  *writes = n;
  return "";
}

// Each test's table (keys of up to 16 bytes, values of up to kMaxValue), at a path of
// its own, removed after the test.
class ConcurrencyTest : public ::testing::Test {
 protected:
  // Creates the table for `capacity` keys and opens it.
  absl::StatusOr<Dict> Create(uint64_t capacity = 64) {
    return Dict::Open(path(), CreateOptions(capacity, 16, kMaxValue));
  }
  // Another handle on the table (as a child process opens it).
  absl::StatusOr<Dict> Reopen() { return Dict::Open(path(), OpenOptions()); }
  const std::string& path() const { return table_.path(); }

 private:
  TempTable table_;
};

TEST_F(ConcurrencyTest, ThreadsNeverSeeTornValues) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok()) << d.status();
  const uint64_t seed = TestSeed();
  const auto deadline = Clock::now() + RunFor().duration;
  constexpr int kReaders = 3, kWriters = 3;
  std::vector<std::string> errors(kReaders + kWriters);
  std::vector<uint64_t> counts(kReaders + kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      errors[i] = WriterLoop(*d, static_cast<uint32_t>(i), seed + i, deadline, &counts[i]);
    });
  }
  for (int i = kWriters; i < kWriters + kReaders; ++i) {
    threads.emplace_back(
        [&, i] { errors[i] = ReaderLoop(*d, seed + i, deadline, &counts[i]); });
  }
  for (std::thread& th : threads) th.join();
  uint64_t reads = 0, writes = 0;
  for (int i = 0; i < kWriters + kReaders; ++i) {
    EXPECT_EQ(errors[i], "") << "thread " << i;
    (i < kWriters ? writes : reads) += counts[i];
  }
  std::fprintf(stderr, "%llu reads, %llu writes\n", static_cast<unsigned long long>(reads),
               static_cast<unsigned long long>(writes));
  EXPECT_GT(reads, 0u);
  EXPECT_GT(writes, 0u);
}

TEST_F(ConcurrencyTest, ProcessesNeverSeeTornValues) {
  {
    absl::StatusOr<Dict> d = Create();
    ASSERT_TRUE(d.ok()) << d.status();
  }
  const uint64_t seed = TestSeed();
  const auto deadline = Clock::now() + RunFor().duration;
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i) {
    const bool writer = i % 2 == 0;
    pids.push_back(ForkChild([&, i, writer]() -> int {
      absl::StatusOr<Dict> d = Reopen();
      if (!d.ok()) return 2;
      uint64_t n = 0;
      const std::string err =
          writer ? WriterLoop(*d, static_cast<uint32_t>(i), seed + i, deadline, &n)
                 : ReaderLoop(*d, seed + i, deadline, &n);
      if (!err.empty()) {
        std::fprintf(stderr, "process %d: %s\n", i, err.c_str());
        return 1;
      }
      return n > 0 ? 0 : 3;
    }));
  }
  for (pid_t pid : pids) {
    const int status = WaitChild(pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child " << pid;
  }
}

TEST_F(ConcurrencyTest, FetchAddFromTwoProcessesGivesTheExactTotal) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  const int kPerProcess = Sanitized() ? 20000 : 100000;
  std::vector<pid_t> pids;
  for (int p = 0; p < 2; ++p) {
    pids.push_back(ForkChild([&]() -> int {
      absl::StatusOr<Dict> c = Reopen();
      if (!c.ok()) return 2;
      for (int i = 0; i < kPerProcess; ++i) {
        if (!c->FetchAdd("counter", 1).ok()) return 1;
      }
      return 0;
    }));
  }
  for (pid_t pid : pids) {
    const int status = WaitChild(pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  absl::StatusOr<int64_t> total = d->FetchAdd("counter", 0);
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(*total, 2 * kPerProcess);
}

TEST_F(ConcurrencyTest, FetchAddAndCompareAndSwapFromThreadsAreAtomic) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  const int kPerThread = Sanitized() ? 2000 : 20000;
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < kPerThread; ++n) {
        if (!d->FetchAdd("fa", 3).ok()) failures.fetch_add(1);
        // Optimistic read-modify-write of a decimal counter with CompareAndSwap.
        for (;;) {
          uint64_t version = 0;
          absl::StatusOr<std::string> cur = d->Get("cas", &version);
          const long long value = cur.ok() ? std::stoll(*cur) : 0;
          absl::StatusOr<uint64_t> r =
              d->CompareAndSwap("cas", cur.ok() ? version : 0, std::to_string(value + 1));
          if (r.ok()) break;
          if (ErrorCodeOf(r.status()) != ErrorCode::kVersion) {
            failures.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*d->FetchAdd("fa", 0), int64_t{3} * kThreads * kPerThread);
  EXPECT_EQ(*d->Get("cas"), std::to_string(kThreads * kPerThread));
}

TEST_F(ConcurrencyTest, ConcurrentInsertsOfOneKeyHaveOneWinner) {
  absl::StatusOr<Dict> d = Create(4096);
  ASSERT_TRUE(d.ok());
  constexpr int kThreads = 4, kKeys = 2000;
  std::atomic<int> wins[kKeys] = {};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kKeys; ++k) {
        absl::StatusOr<uint64_t> r = d->Insert("k" + std::to_string(k), std::to_string(i));
        if (r.ok()) {
          wins[k].fetch_add(1);
        } else {
          EXPECT_EQ(ErrorCodeOf(r.status()), ErrorCode::kExists);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int k = 0; k < kKeys; ++k) ASSERT_EQ(wins[k].load(), 1) << "key " << k;
  EXPECT_EQ(d->Count(), static_cast<uint64_t>(kKeys));
}

// Inserts and erases of many keys from several threads at once, then a check that the
// table holds exactly what the threads' last acknowledged operations say.
TEST_F(ConcurrencyTest, DisjointWritersLeaveExactlyTheirLastWrites) {
  absl::StatusOr<Dict> d = Create(8192);
  ASSERT_TRUE(d.ok());
  const uint64_t seed = TestSeed();
  constexpr int kThreads = 4, kKeysPerThread = 500;
  const int kOps = Sanitized() ? 5000 : 40000;
  std::vector<std::map<std::string, std::string>> expected(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(seed + i);
      for (int n = 0; n < kOps; ++n) {
        const std::string key =
            "t" + std::to_string(i) + "k" + std::to_string(rng() % kKeysPerThread);
        if (rng() % 3 == 0) {
          if (d->Erase(key).ok()) expected[i].erase(key);
        } else {
          const std::string value = std::to_string(n);
          if (d->Put(key, value).ok()) expected[i][key] = value;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  size_t total = 0;
  for (int i = 0; i < kThreads; ++i) {
    total += expected[i].size();
    for (const auto& [k, v] : expected[i]) ASSERT_EQ(*d->Get(k), v) << k;
  }
  EXPECT_EQ(d->Count(), total);
  uint64_t visited = 0;
  d->ForEach([&](std::string_view k, std::string_view v, uint64_t) {
    const int thread = k[1] - '0';
    auto it = expected[thread].find(std::string(k));
    EXPECT_TRUE(it != expected[thread].end() && it->second == v) << k;
    ++visited;
    return true;
  });
  EXPECT_EQ(visited, total);
}

}  // namespace
}  // namespace shmdict
