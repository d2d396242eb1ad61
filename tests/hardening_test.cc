// The engine against what an outside review found: a descriptor the application
// reused, an odd sequence under a free lock, fallocate emulation on a live table,
// creation leftovers and over-long names, verify on a busy table, writers polling a
// stopped holder, and an exhausted version clock. Each test failed before its fix.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/errors.h"
#include "core/crash_point.h"
#include "core/layout.h"
#include "core/slot.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

// posix_fallocate, interposed: the engine must never call it on a table others may
// have mapped (glibc's emulation writes a zero byte into every block). Counts calls and
// does the work with fallocate(2).
static std::atomic<int> g_posix_fallocate_calls{0};
extern "C" int posix_fallocate(int fd, off_t offset, off_t len) {
  g_posix_fallocate_calls.fetch_add(1);
  return fallocate(fd, 0, offset, len) == 0 ? 0 : errno;
}
extern "C" int posix_fallocate64(int fd, off_t offset, off_t len) {
  return posix_fallocate(fd, offset, len);
}

namespace shmdict::internal {
namespace {

using ::shmdict::testing::BucketMetaOf;
using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkArmed;
using ::shmdict::testing::ForkChild;
using ::shmdict::testing::Sanitized;
using ::shmdict::testing::SlotSeqOf;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::ValueOf;
using ::shmdict::testing::WaitChild;

// The tests' tables: `capacity` keys of up to 16 bytes, values of up to 64.
OpenOptions Options(uint64_t capacity = 100) { return CreateOptions(capacity, 16, 64); }

// Each test's table file, at a path of its own, removed after the test. The test suites
// below are this fixture under the names of the findings they check.
class TableTest : public ::testing::Test {
 protected:
  // The table, created for `capacity` keys if it does not exist yet; null after a test
  // failure if it does not open.
  std::unique_ptr<Table> Open(uint64_t capacity = 100) {
    return ::shmdict::testing::OpenTable(path(), Options(capacity));
  }
  const std::string& path() const { return file_.path(); }

 private:
  TempTable file_;
};
using DescriptorTest = TableTest;
using OddSequenceTest = TableTest;
using FileTest = TableTest;
using VerifyTest = TableTest;
using LockTest = TableTest;
using ClockTest = TableTest;
using ScanTest = TableTest;

// The descriptors of this process that refer to `path`.
std::set<int> DescriptorsOf(const std::string& path) {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[4096];
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == path) fds.insert(atoi(e->d_name));
  }
  closedir(d);
  return fds;
}

// A key whose candidate buckets differ from both of key0's.
std::string KeyAwayFrom(const Table& t, const std::string& key0) {
  uint64_t a1, a2;
  t.BucketsOf(key0, &a1, &a2);
  for (int i = 0;; ++i) {
    const std::string k = "other" + std::to_string(i);
    uint64_t b1, b2;
    t.BucketsOf(k, &b1, &b2);
    if (b1 != a1 && b1 != a2 && b2 != a1 && b2 != a2) return k;
  }
}

// Forks a writer that stops (SIGSTOP) holding key's bucket lock; returns its pid once
// it is stopped.
pid_t StopWriterHoldingLock(const std::string& path, const std::string& key) {
  const pid_t pid =
      ForkArmed(path, Options(), CrashPoint::kLockTaken, CrashAction::kStop, [&](Table& t) {
        return t.Write(WriteMode::kPut, key, "from the stopped writer", 0);
      });
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  EXPECT_TRUE(WIFSTOPPED(status));
  return pid;
}

void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  kill(pid, SIGCONT);
  WaitChild(pid);
}

// ---------------------------------------------------------------------------------
// Finding 1: descriptors

TEST_F(DescriptorTest, TableDescriptorsAreNeverStdio) {
  const pid_t pid = ForkChild([&] {
    close(0);
    close(1);
    close(2);
    std::unique_ptr<Table> t = Open();
    if (t == nullptr) return 1;
    if (!t->Write(WriteMode::kPut, "k", "v", 0).ok()) return 2;  // registers: a 2nd fd
    struct stat table;
    if (stat(path().c_str(), &table) != 0) return 3;
    for (int fd = 0; fd <= 2; ++fd) {
      struct stat st;
      if (fstat(fd, &st) == 0 && st.st_dev == table.st_dev && st.st_ino == table.st_ino) {
        return 10 + fd;
      }
    }
    return 0;
  });
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 + n: the table was open as descriptor n";
}

TEST_F(DescriptorTest, ReplacedDescriptorNeverStealsALiveWritersLock) {
  std::unique_ptr<Table> creator = Open();
  ASSERT_NE(creator, nullptr);
  const pid_t holder = StopWriterHoldingLock(path(), "k");

  const std::set<int> before = DescriptorsOf(path());
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  std::set<int> mine;
  for (int fd : DescriptorsOf(path())) {
    if (!before.count(fd)) mine.insert(fd);
  }
  ASSERT_EQ(mine.size(), 1u);
  // Register (a key away from the held buckets), then the application reuses the
  // table descriptor's number for another file.
  ASSERT_TRUE(t->Write(WriteMode::kPut, KeyAwayFrom(*t, "k"), "v", 0).ok());
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  ASSERT_EQ(dup2(devnull, *mine.begin()), *mine.begin());
  close(devnull);

  // The holder is alive (stopped): the write must not take its lock over. It cannot
  // tell liveness any more, so it fails with kBadFile instead of waiting forever.
  absl::StatusOr<uint64_t> v = t->Write(WriteMode::kPut, "k", "stolen", 0);
  EXPECT_EQ(ErrorCodeOf(v.status()), ErrorCode::kBadFile) << v.status();
  EXPECT_NE(v.status().message().find("replaced"), absl::string_view::npos) << v.status();
  KillChild(holder);
}

// ---------------------------------------------------------------------------------
// Finding 2: an odd sequence under a free lock

// Writes key = value into `t`, which must hold no other key, and returns the sequence
// word of the slot it went to (null after a test failure if the write failed).
uint64_t* PutOnlyKey(Table& t, const std::string& key, const std::string& value) {
  const absl::StatusOr<uint64_t> v = t.Write(WriteMode::kPut, key, value, 0);
  EXPECT_TRUE(v.ok()) << v.status();
  if (!v.ok()) return nullptr;
  for (uint64_t b = 0; b < t.layout().bucket_count; ++b) {
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      uint64_t* seq = SlotSeqOf(t, b, i);
      if (*seq != 0) return seq;
    }
  }
  ADD_FAILURE() << "no slot was written";
  return nullptr;
}

TEST_F(OddSequenceTest, WriteOverOddSequenceNeverPublishesTheCopyItFills) {
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  const std::string v1(64, '1'), v2(64, '2');
  uint64_t* seq = PutOnlyKey(*t, "k", v1);
  ASSERT_NE(seq, nullptr);
  ASSERT_EQ(*seq % 2, 0u);
  *seq += 1;  // damage: odd, with the lock free; readers still read v1's copy
  ASSERT_EQ(ValueOf(*t, "k"), v1);

  // A writer stops halfway through writing v2.
  const pid_t pid = ForkArmed(path(), Options(), CrashPoint::kPayloadHalfWritten,
                              CrashAction::kStop,
                              [&](Table& w) { return w.Write(WriteMode::kPut, "k", v2, 0); });
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status));
  // Mid-write, readers see the committed value, never the copy being written.
  EXPECT_EQ(ValueOf(*t, "k"), v1);
  kill(pid, SIGCONT);
  status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(ValueOf(*t, "k"), v2);
  EXPECT_EQ(t->Verify().damage, 0u);
}

TEST_F(OddSequenceTest, RepairRollsAnOddSequenceForward) {
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  uint64_t* seq = PutOnlyKey(*t, "k", "value");
  ASSERT_NE(seq, nullptr);
  *seq += 1;
  ASSERT_EQ(t->Verify().damage, 1u);
  absl::StatusOr<uint64_t> repaired = t->RepairDeadLocks();
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(*repaired, 1u);
  EXPECT_EQ(*seq % 2, 0u);
  const VerifyReport r = t->Verify();
  EXPECT_EQ(r.damage, 0u) << (r.messages.empty() ? "" : r.messages[0]);
  EXPECT_EQ(ValueOf(*t, "k"), "value");
}

// ---------------------------------------------------------------------------------
// Finding 3: no posix_fallocate on a live table

TEST_F(FileTest, OpeningASparseTableReservesWithoutEmulation) {
  std::unique_ptr<Table> t = Open(10000);
  ASSERT_NE(t, nullptr);
  const uint64_t size = t->layout().file_size;
  {
    // Punch a hole at the end (all zeros there: nothing changes but the allocation).
    const int fd = open(path().c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(size - 65536), 65536),
              0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    ASSERT_LT(static_cast<uint64_t>(st.st_blocks) * 512, size);
    close(fd);
  }
  g_posix_fallocate_calls.store(0);
  std::unique_ptr<Table> again = Open(10000);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(g_posix_fallocate_calls.load(), 0);
  struct stat st;
  ASSERT_EQ(stat(path().c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, size) << "the hole was not reserved";
}

// ---------------------------------------------------------------------------------
// Finding 4: creation

TEST_F(FileTest, CreatorKilledBeforeNamingTheFileLeavesNothing) {
  char dir_template[] = "/dev/shm/shmdict-test-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const pid_t pid = ForkChild([&] {
    ArmCrashPoint(CrashPoint::kCreateBeforeLink, 0, CrashAction::kKill);
    ::shmdict::testing::OpenTable(dir + "/t", Options(100000));
    return 1;  // not reached
  });
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  std::vector<std::string> left;
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      left.push_back(e->d_name);
      unlink((dir + "/" + e->d_name).c_str());
    }
  }
  closedir(d);
  rmdir(dir.c_str());
  EXPECT_TRUE(left.empty()) << "left behind: " << left[0];
}

TEST_F(FileTest, NameOverNameMaxIsInvalid) {
  const std::string name(NAME_MAX + 1, 'n');
  const OpenOptions p = CreateOptions(10, 8, 8);
  absl::StatusOr<std::unique_ptr<Table>> t = Table::Open(name, p);
  EXPECT_EQ(ErrorCodeOf(t.status()), ErrorCode::kInvalid) << t.status();
  EXPECT_NE(t.status().message().find("255"), absl::string_view::npos) << t.status();
  // The longest allowed name works (no longer temporary name is needed on the way).
  std::string longest = "shmdict-test-" + std::to_string(getpid()) + "-";
  longest += std::string(NAME_MAX - longest.size(), 'a');
  absl::StatusOr<std::unique_ptr<Table>> ok = Table::Open(longest, p);
  EXPECT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(Table::Unlink(longest).ok());
}

// ---------------------------------------------------------------------------------
// Finding 5: verify on a busy table

TEST_F(VerifyTest, BusyTableNeverReportsDamage) {
  std::unique_ptr<Table> t = Open(64);
  ASSERT_NE(t, nullptr);
  const uint64_t seed = ::shmdict::testing::TestSeed();
  const pid_t writer = ForkChild([&] {
    std::unique_ptr<Table> w = Open(64);
    if (w == nullptr) return 1;
    uint64_t x = seed | 1;
    for (;;) {  // until killed
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const std::string key = "k" + std::to_string(x % 48);
      if (x % 3 == 0) {
        (void)w->Erase(key);
      } else {
        (void)w->Write(WriteMode::kPut, key, std::string(1 + x % 60, 'v'), 0);
      }
    }
  });
  const int runs = Sanitized() ? 200 : 3000;
  int busy_runs = 0;
  for (int run = 0; run < runs; ++run) {
    const VerifyReport r = t->Verify();
    ASSERT_EQ(r.damage, 0u) << "run " << run << ": " << r.messages[0];
    busy_runs += r.buckets_busy != 0;
  }
  KillChild(writer);
  std::fprintf(stderr, "%d of %d verify runs saw a bucket busy throughout\n", busy_runs, runs);
}

// ---------------------------------------------------------------------------------
// Finding 6: a writer waiting for a stopped holder sleeps

// Voluntary context switches of thread `tid` of this process.
long VoluntarySwitches(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return atol(line.c_str() + 24);
  }
  return -1;
}

TEST_F(LockTest, WriterWaitingForAStoppedHolderSleeps) {
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  const pid_t holder = StopWriterHoldingLock(path(), "k");
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    (void)t->Write(WriteMode::kPut, "k", "after the holder", 0);
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long a = VoluntarySwitches(tid.load());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long b = VoluntarySwitches(tid.load());
  ASSERT_GE(a, 0);
  // Sleeping from 50 us doubling to 4 ms: about 250 wake-ups a second once the waiter
  // has backed off; polling every 100 us gave 7,000-10,000.
  EXPECT_LT(b - a, 1000) << "the waiter woke " << (b - a) << " times in one second";
  EXPECT_FALSE(done.load());  // a live holder is waited for, not overtaken
  kill(holder, SIGKILL);      // now it is dead: the waiter takes over and writes
  WaitChild(holder);
  waiter.join();
  EXPECT_EQ(ValueOf(*t, "k"), "after the holder");
}

// ---------------------------------------------------------------------------------
// Finding 8: an exhausted clock

TEST_F(ClockTest, ExhaustedClockRefusesWritesAndVerifyFlagsIt) {
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  uint64_t b1, b2;
  t->BucketsOf("k", &b1, &b2);
  BucketMetaOf(*t, b1).clock.store(UINT64_MAX);
  absl::StatusOr<uint64_t> v = t->Write(WriteMode::kInsert, "k", "v", 0);
  EXPECT_EQ(ErrorCodeOf(v.status()), ErrorCode::kBadFile) << v.status() << " version " << (v.ok() ? *v : 0);
  EXPECT_EQ(t->Version("k"), 0u);
  const VerifyReport r = t->Verify();
  ASSERT_GE(r.damage, 1u);
  EXPECT_NE(r.messages[0].find("clock"), std::string::npos) << r.messages[0];

  // An update in a bucket whose clock is exhausted is refused too.
  BucketMetaOf(*t, b1).clock.store(0);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "k", "v", 0).ok());
  uint64_t where1, where2;
  t->BucketsOf("k", &where1, &where2);
  BucketMetaOf(*t, where1).clock.store(UINT64_MAX);
  BucketMetaOf(*t, where2).clock.store(UINT64_MAX);
  v = t->Write(WriteMode::kPut, "k", "w", 0);
  EXPECT_EQ(ErrorCodeOf(v.status()), ErrorCode::kBadFile) << v.status();
  EXPECT_EQ(ValueOf(*t, "k"), "v");
}

// Count and ForEach say how many slots they skipped.
TEST_F(ScanTest, CorruptSlotsAreCountedNotSilentlySkipped) {
  std::unique_ptr<Table> t = Open();
  ASSERT_NE(t, nullptr);
  uint64_t* seq = PutOnlyKey(*t, "a", "1");
  ASSERT_NE(seq, nullptr);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "b", "2", 0).ok());
  // Slot of "a": its current copy claims a value longer than the maximum.
  uint64_t* copy = CopyAt(seq, *seq, t->layout().copy_stride / 8);
  copy[1] = (copy[1] & 0xFFFFFFFFu) | (uint64_t{1000} << 32);
  const ScanResult c = t->Count();
  EXPECT_EQ(c.entries, 1u);
  EXPECT_EQ(c.corrupt, 1u);
  int seen = 0;
  const ScanResult f = t->ForEach([&](std::string_view, std::string_view, uint64_t) {
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(f.corrupt, 1u);
}

}  // namespace
}  // namespace shmdict::internal
