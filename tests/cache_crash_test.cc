// Crash safety of the cache's write paths: a writer killed (SIGKILL) at each crash
// point of a touch, of an insert that reuses an expired entry's slot or evicts one, of
// a clear and of a sweep leaves every key with a committed state (old or new, never a
// torn one), and the next writer repairs what it left (core/table.h, "Writer locks
// and crashes"). Companion of crash_test.cc, which covers put, insert, erase and
// fetch-add.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/errors.h"
#include "core/clock.h"
#include "core/crash_point.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

namespace shmdict::internal {
namespace {

using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkArmed;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::ValueOf;
using ::shmdict::testing::WaitChild;

// 20 keys of capacity: two buckets, so every key has the same two candidate buckets
// (32 slots) and a test can fill them.
OpenOptions Tiny(bool create, Eviction eviction) {
  OpenOptions o = CreateOptions(20, 32, 256);
  o.create = create;
  o.eviction = eviction;
  return o;
}

// A value long enough that a write is many word stores.
std::string Big(char c) { return std::string(200, c); }

std::string Key(int i) { return "k" + std::to_string(i); }

// Every repair a dead writer needs done, then a clean verification.
void ExpectRepairedAndClean(Table& t) {
  absl::StatusOr<uint64_t> repaired = t.RepairDeadLocks();
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  const VerifyReport r = t.Verify();
  EXPECT_TRUE(r.clean()) << "damage " << r.damage << ", dead locks " << r.dead_locks
                         << (r.messages.empty() ? "" : ": " + r.messages[0]);
}

// Kills a child running `op` at the (skip+1)-th pass of `point`.
template <typename Op>
void KillAt(const std::string& path, const OpenOptions& options, CrashPoint point, int skip,
            Op op) {
  const pid_t pid = ForkArmed(path, options, CrashPoint::kCount, CrashAction::kKill,
                              [&](Table& t) {
                                ArmCrashPoint(point, skip, CrashAction::kKill);
                                return op(t);
                              });
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child did not reach " << CrashPointName(point) << " (status " << status << ")";
}

// Moves this process's clocks (and its children's, which inherit them) forward.
class CacheCrashTest : public ::testing::Test {
 protected:
  void Advance(int64_t ms) {
    AdvanceClockForTesting(ms);
    moved_ += ms;
  }
  ~CacheCrashTest() override { AdvanceClockForTesting(-moved_); }

 private:
  int64_t moved_ = 0;
};

TEST_F(CacheCrashTest, KilledTouchLeavesTheOldOrTheNewExpiry) {
  struct Case {
    CrashPoint point;
    bool applied;
  };
  using P = CrashPoint;
  for (const Case c : {Case{P::kLockTaken, false}, Case{P::kClockBumped, false},
                       Case{P::kWriteBegun, false}, Case{P::kPayloadHalfWritten, false},
                       Case{P::kPayloadWritten, false}, Case{P::kWriteCommitted, true},
                       Case{P::kBeforeUnlock, true}}) {
    SCOPED_TRACE(std::string(CrashPointName(c.point)));
    TempTable tt;
    std::unique_ptr<Table> t = ::shmdict::testing::OpenTable(tt.path(), Tiny(true, Eviction::kNone));
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('O'), 0).ok());
    ASSERT_TRUE(t->Write(WriteMode::kPut, "other", Big('P'), 0, 60000).ok());
    const uint64_t before = t->Version("victim");
    KillAt(tt.path(), Tiny(false, Eviction::kNone), c.point, 0,
           [](Table& w) { return w.Touch("victim", 3600 * 1000).status(); });
    // The value never changes; the expiry and the version are the old or the new ones.
    EXPECT_EQ(ValueOf(*t, "victim"), Big('O'));
    absl::StatusOr<int64_t> ttl = t->Ttl("victim");
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    if (c.applied) {
      EXPECT_GT(*ttl, 3590 * 1000);
      EXPECT_GT(t->Version("victim"), before);
    } else {
      EXPECT_EQ(*ttl, -1);
      EXPECT_EQ(t->Version("victim"), before);
    }
    EXPECT_EQ(ValueOf(*t, "other"), Big('P'));
    // The next writer of the key takes over and repairs.
    absl::StatusOr<uint64_t> v = t->Touch("victim", 1000);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_GT(*v, before);
    ExpectRepairedAndClean(*t);
  }
}

// An insert into two full buckets: the slot it takes is freed first (an expired entry
// erased, or, with lrs, the least recently stored one evicted), then the new key is
// written. A crash between the two leaves the slot free and the new key absent.
TEST_F(CacheCrashTest, KilledInsertThatMakesRoomLosesNothingElse) {
  struct Case {
    CrashPoint point;
    bool freed;     // the expired or evicted entry is gone
    bool inserted;  // the new key is there
  };
  using P = CrashPoint;
  const std::vector<Case> cases = {
      {P::kLockTaken, false, false},     {P::kWriteBegun, false, false},
      {P::kPayloadWritten, false, false}, {P::kWriteCommitted, true, false},
      {P::kTagCleared, true, false},      {P::kRoomMade, true, false},
      {P::kClockBumped, true, false},     {P::kTagPublished, true, false},
      {P::kPayloadHalfWritten, true, false}, {P::kBeforeUnlock, true, true},
  };
  for (const bool evict : {false, true}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(evict ? "evicting" : "reusing an expired slot") + " at " +
                   std::string(CrashPointName(c.point)));
      TempTable tt;
      const Eviction policy = evict ? Eviction::kLrs : Eviction::kNone;
      std::unique_ptr<Table> t = ::shmdict::testing::OpenTable(tt.path(), Tiny(true, policy));
      ASSERT_NE(t, nullptr);
      // k0 is the least recently stored; without eviction, it is the one that expires.
      for (int i = 0; i < 32; ++i) {
        ASSERT_TRUE(t->Write(WriteMode::kPut, Key(i), Big('a' + i % 26), 0,
                             !evict && i == 0 ? 1000 : 0)
                        .ok())
            << i;
      }
      if (!evict) Advance(2000);
      KillAt(tt.path(), Tiny(false, Eviction::kNone), c.point, 0, [](Table& w) {
        return w.Write(WriteMode::kInsert, "victim", Big('N'), 0);
      });
      // (An expired k0 reads as absent whether or not its slot was freed.)
      EXPECT_EQ(ValueOf(*t, Key(0)), c.freed || !evict ? "<absent>" : Big('a'));
      if (!evict) {
        EXPECT_EQ(t->Count().expired, c.freed ? 0u : 1u);
      }
      EXPECT_EQ(ValueOf(*t, "victim"), c.inserted ? Big('N') : "<absent>");
      for (int i = 1; i < 32; ++i) {
        EXPECT_EQ(ValueOf(*t, Key(i)), Big('a' + i % 26)) << Key(i);
      }
      // The next writer repairs and finishes the job.
      ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('A'), 0).ok());
      EXPECT_EQ(ValueOf(*t, "victim"), Big('A'));
      EXPECT_EQ(ValueOf(*t, Key(0)), "<absent>");
      ExpectRepairedAndClean(*t);
      EXPECT_EQ(t->Count().entries, 32u);
    }
  }
}

// A clear killed part-way: each key is present with its value or absent, and the next
// clear finishes.
TEST_F(CacheCrashTest, KilledClearIsFinishedByTheNextOne) {
  struct Case {
    CrashPoint point;
    int skip;
  };
  using P = CrashPoint;
  for (const Case c : {Case{P::kLockTaken, 0}, Case{P::kWriteBegun, 3},
                       Case{P::kWriteCommitted, 5}, Case{P::kTagCleared, 9},
                       Case{P::kBucketCleared, 0}, Case{P::kBucketCleared, 20}}) {
    SCOPED_TRACE(std::string(CrashPointName(c.point)) + " after " + std::to_string(c.skip));
    TempTable tt;
    OpenOptions o = CreateOptions(1000, 32, 256);
    std::unique_ptr<Table> t = ::shmdict::testing::OpenTable(tt.path(), o);
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(t->Write(WriteMode::kPut, Key(i), Big('a' + i % 26), 0).ok());
    }
    o.create = false;
    KillAt(tt.path(), o, c.point, c.skip, [](Table& w) { return w.Clear(); });
    int present = 0;
    for (int i = 0; i < 500; ++i) {
      const std::string v = ValueOf(*t, Key(i));
      if (v != "<absent>") {
        EXPECT_EQ(v, Big('a' + i % 26)) << Key(i);
        ++present;
      }
    }
    EXPECT_GT(present, 0) << "the clear was to be killed part-way";
    EXPECT_EQ(t->Count().entries, static_cast<uint64_t>(present));
    ASSERT_TRUE(t->Clear().ok());
    EXPECT_EQ(t->Count().entries, 0u);
    ExpectRepairedAndClean(*t);
  }
}

// A sweep killed part-way leaves unexpired entries alone; the next sweep finishes.
TEST_F(CacheCrashTest, KilledSweepIsFinishedByTheNextOne) {
  using P = CrashPoint;
  for (const CrashPoint point : {P::kLockTaken, P::kWriteBegun, P::kWriteCommitted,
                                 P::kTagCleared, P::kBucketSwept}) {
    SCOPED_TRACE(std::string(CrashPointName(point)));
    TempTable tt;
    OpenOptions o = CreateOptions(1000, 32, 256);
    std::unique_ptr<Table> t = ::shmdict::testing::OpenTable(tt.path(), o);
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(
          t->Write(WriteMode::kPut, Key(i), Big('a' + i % 26), 0, i % 2 == 0 ? 1000 : 0).ok());
    }
    Advance(2000);
    o.create = false;
    KillAt(tt.path(), o, point, 2, [](Table& w) { return w.Sweep().status(); });
    for (int i = 0; i < 500; ++i) {
      EXPECT_EQ(ValueOf(*t, Key(i)), i % 2 == 0 ? "<absent>" : Big('a' + i % 26)) << Key(i);
    }
    absl::StatusOr<uint64_t> erased = t->Sweep();
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_GT(*erased, 0u);
    EXPECT_LT(*erased, 250u);  // the killed sweep erased some
    const ScanResult scan = t->Count();
    EXPECT_EQ(scan.entries, 250u);
    EXPECT_EQ(scan.expired, 0u);
    ExpectRepairedAndClean(*t);
  }
}

// A write that depends on its entry being present (touch, replace, a version check,
// fetch-add) and is held up between its check and its commit while the entry expires
// must not commit: readers have seen the entry expired meanwhile, and the commit would
// bring it back. The writer is stopped just before its commit, the entry expires in
// real time, readers see it absent, then the writer goes on.
TEST(CacheStallTest, AWriteHeldUpPastTheExpiryOfItsEntryDoesNotBringItBack) {
  struct Case {
    const char* what;
    absl::Status (*op)(Table&);
    ErrorCode after;  // what the write reports once it finds the entry expired
  };
  const Case cases[] = {
      {"touch", [](Table& w) { return w.Touch("victim", 60000).status(); },
       ErrorCode::kNotFound},
      {"replace",
       [](Table& w) { return w.Write(WriteMode::kReplace, "victim", Big('N'), 0).status(); },
       ErrorCode::kNotFound},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TempTable tt;
    std::unique_ptr<Table> t = ::shmdict::testing::OpenTable(tt.path(), Tiny(true, Eviction::kNone));
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('O'), 0, 300).ok());
    const pid_t pid = ForkArmed(tt.path(), Tiny(false, Eviction::kNone),
                                CrashPoint::kPayloadWritten, CrashAction::kStop,
                                [&](Table& w) {
                                  const absl::Status s = c.op(w);
                                  // Exit 0 only if the write reported what it should.
                                  return ErrorCodeOf(s) == c.after
                                             ? absl::OkStatus()
                                             : absl::InternalError(s.ToString());
                                });
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFSTOPPED(status)) << "the writer did not stop before its commit";
    // The entry expires (real time; the coarse clock lags by a tick or a few).
    usleep(400 * 1000);
    EXPECT_EQ(ValueOf(*t, "victim"), "<absent>");
    kill(pid, SIGCONT);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the held-up write did not report the key absent";
    EXPECT_EQ(ValueOf(*t, "victim"), "<absent>") << "the held-up write brought it back";
    ExpectRepairedAndClean(*t);
  }
}

}  // namespace
}  // namespace shmdict::internal
