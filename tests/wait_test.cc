// WaitForChange across processes: a waiter wakes promptly when another process writes,
// times out when nothing changes, and survives a writer's death.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "api/shmdict.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict {
namespace {

using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkChild;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::WaitChild;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The waiter is another process; the write happens in the test. The waiter exits 0
// once it has seen the change to "new", or with 250 and up when something failed.
int WaiterProcess(const std::string& path, uint64_t version, bool read_only) {
  absl::StatusOr<Dict> d = Dict::Open(path, {.read_only = read_only});
  if (!d.ok()) return 250;
  absl::Status s = d->WaitForChange("k", version, 20000);
  if (!s.ok()) return 251;
  absl::StatusOr<std::string> v = d->Get("k");
  if (!v.ok() || *v != "new") return 252;
  return 0;
}

// Each test's table (100 keys of up to 16 bytes, values of up to 16), at a path of its
// own, removed after the test.
class WaitTest : public ::testing::Test {
 protected:
  // Creates the table and opens it.
  absl::StatusOr<Dict> Create() { return Dict::Open(path(), CreateOptions(100, 16, 16)); }
  // Another handle on the table, read-write (as a child process opens it).
  absl::StatusOr<Dict> Reopen() { return Dict::Open(path(), OpenOptions()); }
  const std::string& path() const { return table_.path(); }

  void WakeAcrossProcesses(bool read_only);

 private:
  TempTable table_;
};

TEST_F(WaitTest, ReturnsAtOnceWhenTheVersionAlreadyDiffers) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ErrorCodeOf(d->WaitForChange("k", 7, 0)), ErrorCode::kOk);  // absent != 7
  absl::StatusOr<uint64_t> v = d->Put("k", "x");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(d->WaitForChange("k", 0, 0).ok());
  EXPECT_EQ(ErrorCodeOf(d->WaitForChange("k", *v, 0)), ErrorCode::kTimeout);
  EXPECT_EQ(ErrorCodeOf(d->WaitForChange(std::string(17, 'k'), 0, 0)), ErrorCode::kTooBig);
}

TEST_F(WaitTest, TimesOutWhenNothingChanges) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  absl::StatusOr<uint64_t> v = d->Put("k", "x");
  ASSERT_TRUE(v.ok());
  // Writes to other keys (some share the bucket) wake the waiter, which goes back to
  // sleep: the key itself did not change.
  std::atomic<bool> stop{false};
  std::thread noise([&] {
    for (int i = 0; !stop.load(); ++i) {
      (void)d->Put("other" + std::to_string(i % 50), "y");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto start = Clock::now();
  absl::Status s = d->WaitForChange("k", *v, 150);
  const double ms = MsSince(start);
  stop.store(true);
  noise.join();
  EXPECT_EQ(ErrorCodeOf(s), ErrorCode::kTimeout) << s;
  EXPECT_GE(ms, 150.0);
}

void WaitTest::WakeAcrossProcesses(bool read_only) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  absl::StatusOr<uint64_t> v = d->Put("k", "old");
  ASSERT_TRUE(v.ok());
  const pid_t pid = ForkChild([&] { return WaiterProcess(path(), *v, read_only); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it fall asleep
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0) << "the waiter returned before the write";
  const auto wrote = Clock::now();
  ASSERT_TRUE(d->Put("k", "new").ok());
  status = WaitChild(pid);
  const double ms = MsSince(wrote);
  std::fprintf(stderr, "%s waiter woke %.3f ms after the write\n",
               read_only ? "read-only" : "writable", ms);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // A missed wake would cost a full 1 s re-check slice; a working wake takes
  // microseconds (the bound is loose for this shared, noisy machine).
  EXPECT_LT(ms, 500.0);
}

TEST_F(WaitTest, WriterInAnotherProcessWakesTheWaiter) { WakeAcrossProcesses(false); }

TEST_F(WaitTest, ReadOnlyWaiterSeesTheChangeByPolling) { WakeAcrossProcesses(true); }

TEST_F(WaitTest, WaiterWakesWhenTheKeyIsErasedOrAppears) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  const pid_t appear = ForkChild([&]() -> int {
    absl::StatusOr<Dict> w = Reopen();
    return w.ok() && w->WaitForChange("new", 0, 20000).ok() ? 0 : 1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(d->Insert("new", "x").ok());
  int status = WaitChild(appear);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  const uint64_t v = d->Version("new");
  const pid_t erased = ForkChild([&]() -> int {
    absl::StatusOr<Dict> w = Reopen();
    if (!w.ok() || !w->WaitForChange("new", v, 20000).ok()) return 1;
    return w->Contains("new") ? 2 : 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(d->Erase("new").ok());
  status = WaitChild(erased);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A writer that dies (here: killed while the waiter sleeps, without writing the key)
// does not strand the waiter: it wakes at the next write by anyone else.
TEST_F(WaitTest, WaiterSurvivesAWritersDeath) {
  absl::StatusOr<Dict> d = Create();
  ASSERT_TRUE(d.ok());
  absl::StatusOr<uint64_t> v = d->Put("k", "old");
  ASSERT_TRUE(v.ok());
  const pid_t waiter = ForkChild([&] { return WaiterProcess(path(), *v, false); });
  const pid_t writer = ForkChild([&]() -> int {
    absl::StatusOr<Dict> w = Reopen();
    if (!w.ok()) return 1;
    for (int i = 0;; ++i) (void)w->Put("other" + std::to_string(i % 20), "busy");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(writer, SIGKILL);
  WaitChild(writer);
  int status = 0;
  ASSERT_EQ(waitpid(waiter, &status, WNOHANG), 0) << "the waiter returned early";
  ASSERT_TRUE(d->Put("k", "new").ok());  // may first repair the dead writer's bucket
  status = WaitChild(waiter);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace shmdict
