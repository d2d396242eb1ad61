// Crash safety, process by process: a writer is killed (SIGKILL) or stopped (SIGSTOP)
// at each crash point of a write and of a recovery; the other processes must read
// exactly the old or the new value, never wait, and the next writer must repair the
// bucket automatically.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/errors.h"
#include "core/crash_point.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

namespace shmdict::internal {
namespace {

using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkArmed;
using ::shmdict::testing::ForkChild;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::ValueOf;
using ::shmdict::testing::WaitChild;

// The tests' tables: 200 keys of up to 32 bytes, values of up to 256; created if
// `create`, else the table must exist.
OpenOptions Options(bool create) {
  OpenOptions o = CreateOptions(200, 32, 256);
  o.create = create;
  return o;
}

// The table at `path`; null after a test failure if it does not open.
std::unique_ptr<Table> OpenTable(const std::string& path, bool create) {
  return ::shmdict::testing::OpenTable(path, Options(create));
}

// A value long enough that a write is many word stores.
std::string Big(char c) { return std::string(200, c); }

enum class Op { kUpdate, kInsert, kErase, kFetchAdd };

const char* OpName(Op op) {
  switch (op) {
    case Op::kUpdate:
      return "update";
    case Op::kInsert:
      return "insert";
    case Op::kErase:
      return "erase";
    case Op::kFetchAdd:
      return "fetch_add";
  }
  return "?";
}

std::string Le64(int64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// Runs `op` on "victim" in a child armed to die at `point`. Returns the child's wait
// status.
int CrashChild(const std::string& path, Op op, CrashPoint point, CrashAction action) {
  return WaitChild(ForkArmed(path, Options(false), point, action, [&](Table& t) {
    switch (op) {
      case Op::kUpdate:
        return t.Write(WriteMode::kPut, "victim", Big('N'), 0).status();
      case Op::kInsert:
        return t.Write(WriteMode::kInsert, "victim", Big('N'), 0).status();
      case Op::kErase:
        return t.Erase("victim");
      case Op::kFetchAdd:
        return t.FetchAdd("victim", 2, nullptr).status();
    }
    return absl::InternalError("unknown operation");
  }));
}

// Forks a writer of "victim" = `value` (with `mode`) that `action` stops or kills at
// `point`. Returns its pid.
pid_t ForkVictimWriter(const std::string& path, CrashPoint point, CrashAction action,
                       WriteMode mode, const std::string& value) {
  return ForkArmed(path, Options(false), point, action,
                   [&](Table& t) { return t.Write(mode, "victim", value, 0); });
}

struct Case {
  Op op;
  CrashPoint point;
  bool applied;  // the write is visible after the crash
};

// Every crash point each operation passes, and whether a crash there leaves the
// operation applied (at or after its commit point) or not.
std::vector<Case> AllCases() {
  using P = CrashPoint;
  return {
      {Op::kUpdate, P::kLockTaken, false},        {Op::kUpdate, P::kClockBumped, false},
      {Op::kUpdate, P::kWriteBegun, false},       {Op::kUpdate, P::kPayloadHalfWritten, false},
      {Op::kUpdate, P::kPayloadWritten, false},   {Op::kUpdate, P::kWriteCommitted, true},
      {Op::kUpdate, P::kBeforeUnlock, true},      {Op::kInsert, P::kLockTaken, false},
      {Op::kInsert, P::kClockBumped, false},      {Op::kInsert, P::kTagPublished, false},
      {Op::kInsert, P::kWriteBegun, false},       {Op::kInsert, P::kPayloadHalfWritten, false},
      {Op::kInsert, P::kPayloadWritten, false},   {Op::kInsert, P::kWriteCommitted, true},
      {Op::kInsert, P::kBeforeUnlock, true},      {Op::kErase, P::kLockTaken, false},
      {Op::kErase, P::kWriteBegun, false},        {Op::kErase, P::kPayloadWritten, false},
      {Op::kErase, P::kWriteCommitted, true},     {Op::kErase, P::kTagCleared, true},
      {Op::kErase, P::kBeforeUnlock, true},       {Op::kFetchAdd, P::kLockTaken, false},
      {Op::kFetchAdd, P::kClockBumped, false},    {Op::kFetchAdd, P::kWriteBegun, false},
      {Op::kFetchAdd, P::kPayloadHalfWritten, false},
      {Op::kFetchAdd, P::kPayloadWritten, false}, {Op::kFetchAdd, P::kWriteCommitted, true},
      {Op::kFetchAdd, P::kBeforeUnlock, true},
  };
}

// What "victim" reads as before `op` (Seed's value) or, if `applied`, after it.
std::string VictimValue(Op op, bool applied) {
  switch (op) {
    case Op::kUpdate:
      return Big(applied ? 'N' : 'O');
    case Op::kInsert:
      return applied ? Big('N') : "<absent>";
    case Op::kErase:
      return applied ? "<absent>" : Big('O');
    case Op::kFetchAdd:
      return Le64(applied ? 42 : 40);
  }
  return "";
}

void Seed(Table& t, Op op) {
  // Neighbours, so that the victim's buckets hold other committed entries too.
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(t.Write(WriteMode::kPut, "n" + std::to_string(i), Big('a' + i % 26), 0).ok());
  }
  if (op == Op::kUpdate || op == Op::kErase) {
    ASSERT_TRUE(t.Write(WriteMode::kPut, "victim", Big('O'), 0).ok());
  } else if (op == Op::kFetchAdd) {
    ASSERT_TRUE(t.Write(WriteMode::kPut, "victim", Le64(40), 0).ok());
  }
}

void ExpectNeighboursIntact(const Table& t) {
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(ValueOf(t, "n" + std::to_string(i)), Big('a' + i % 26)) << "neighbour " << i;
  }
}

void ExpectClean(Table& t) {
  absl::StatusOr<uint64_t> repaired = t.RepairDeadLocks();
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  const VerifyReport r = t.Verify();
  EXPECT_TRUE(r.clean()) << "damage " << r.damage << ", dead locks " << r.dead_locks
                         << (r.messages.empty() ? "" : ": " + r.messages[0]);
  EXPECT_EQ(r.buckets_busy, 0u);
}

TEST(CrashTest, KilledWriterAtEveryCrashPointIsAllOrNothing) {
  for (const Case& c : AllCases()) {
    SCOPED_TRACE(std::string(OpName(c.op)) + " killed at " +
                 std::string(CrashPointName(c.point)));
    TempTable tt(OpName(c.op));
    std::unique_ptr<Table> t = OpenTable(tt.path(), true);
    ASSERT_NE(t, nullptr);
    Seed(*t, c.op);
    const uint64_t version_before = t->Version("victim");
    const uint64_t recoveries_before = t->GetStats().recoveries;

    const int status = CrashChild(tt.path(), c.op, c.point, CrashAction::kKill);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child did not reach the crash point (status " << status << ")";

    // A reader (this process) is unaffected: it sees exactly the old or the new value.
    EXPECT_EQ(ValueOf(*t, "victim"), VictimValue(c.op, c.applied));
    ExpectNeighboursIntact(*t);
    if (!c.applied) {
      EXPECT_EQ(t->Version("victim"), version_before);
    }
    if (c.applied && c.op != Op::kErase) {
      EXPECT_GT(t->Version("victim"), version_before);
    }

    // The next writer of the key takes the dead writer's lock over and repairs.
    absl::StatusOr<uint64_t> v = t->Write(WriteMode::kPut, "victim", Big('A'), 0);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_GT(*v, version_before) << "versions never go back, even across a crash";
    EXPECT_EQ(ValueOf(*t, "victim"), Big('A'));
    EXPECT_GE(t->GetStats().recoveries, recoveries_before + 1);
    ExpectNeighboursIntact(*t);
    ExpectClean(*t);
    EXPECT_EQ(t->Count().entries, 41u);
  }
}

// A repairer that dies while repairing is repaired in turn.
TEST(CrashTest, CrashDuringRecoveryIsRecoveredAgain) {
  struct RecoveryCase {
    Op first_op;
    CrashPoint first_point;
    CrashPoint recovery_point;
  };
  const RecoveryCase cases[] = {
      {Op::kUpdate, CrashPoint::kPayloadHalfWritten, CrashPoint::kRecoveryLockTaken},
      {Op::kUpdate, CrashPoint::kPayloadHalfWritten, CrashPoint::kRecoverySlotRolledBack},
      {Op::kUpdate, CrashPoint::kPayloadHalfWritten, CrashPoint::kRecoveryDone},
      {Op::kInsert, CrashPoint::kTagPublished, CrashPoint::kRecoveryTagFixed},
      {Op::kInsert, CrashPoint::kPayloadHalfWritten, CrashPoint::kRecoverySlotRolledBack},
      {Op::kInsert, CrashPoint::kPayloadHalfWritten, CrashPoint::kRecoveryTagFixed},
      {Op::kErase, CrashPoint::kWriteCommitted, CrashPoint::kRecoveryTagFixed},
  };
  for (const RecoveryCase& c : cases) {
    SCOPED_TRACE(std::string(OpName(c.first_op)) + " killed at " +
                 std::string(CrashPointName(c.first_point)) + ", repairer killed at " +
                 std::string(CrashPointName(c.recovery_point)));
    TempTable tt(OpName(c.first_op));
    std::unique_ptr<Table> t = OpenTable(tt.path(), true);
    ASSERT_NE(t, nullptr);
    Seed(*t, c.first_op);
    const std::string before = ValueOf(*t, "victim");
    const uint64_t recoveries_before = t->GetStats().recoveries;
    int status = CrashChild(tt.path(), c.first_op, c.first_point, CrashAction::kKill);
    ASSERT_TRUE(WIFSIGNALED(status)) << "first writer did not crash";
    const std::string after_first = ValueOf(*t, "victim");

    // The repairer: a writer of the same key, killed inside the repair.
    status = WaitChild(ForkVictimWriter(tt.path(), c.recovery_point, CrashAction::kKill,
                                        WriteMode::kPut, Big('R')));
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the repairer did not reach " << CrashPointName(c.recovery_point);
    // Still the same committed state: the repairer changed nothing visible.
    EXPECT_EQ(ValueOf(*t, "victim"), after_first);
    EXPECT_TRUE(after_first == before || after_first == VictimValue(c.first_op, true));

    ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('A'), 0).ok());
    EXPECT_EQ(ValueOf(*t, "victim"), Big('A'));
    EXPECT_GE(t->GetStats().recoveries, recoveries_before + 1);
    ExpectNeighboursIntact(*t);
    ExpectClean(*t);
  }
}

// A writer stopped mid-write holds its lock: readers in other processes keep reading
// the old value without waiting, and writers of that bucket wait, for as long as it
// is stopped. A stopped process is alive and never treated as dead. When it is
// killed, the waiting writer repairs and proceeds.
void StoppedWriterScenario(bool then_kill) {
  TempTable tt;
  std::unique_ptr<Table> t = OpenTable(tt.path(), true);
  ASSERT_NE(t, nullptr);
  Seed(*t, Op::kUpdate);
  const pid_t pid = ForkVictimWriter(tt.path(), CrashPoint::kPayloadHalfWritten,
                                     CrashAction::kStop, WriteMode::kPut, Big('N'));
  // Wait until the child has stopped at the crash point.
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << "child did not stop mid-write";

  // Readers: never blocked, always the old value.
  for (int i = 0; i < 100000; ++i) {
    ASSERT_EQ(ValueOf(*t, "victim"), Big('O'));
  }
  // A writer of the key waits: the owner is stopped, not dead.
  std::unique_ptr<Table> w2 = OpenTable(tt.path(), false);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    EXPECT_TRUE(w2->Write(WriteMode::kPut, "victim", Big('W'), 0).ok());
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(done.load()) << "a stopped lock owner was treated as dead";
  EXPECT_EQ(ValueOf(*t, "victim"), Big('O'));

  if (then_kill) {
    kill(pid, SIGKILL);
  } else {
    kill(pid, SIGCONT);
  }
  writer.join();
  status = WaitChild(pid);
  if (then_kill) {
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_GE(t->GetStats().recoveries, 1u);
  } else {
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(t->GetStats().recoveries, 0u);
  }
  EXPECT_EQ(ValueOf(*t, "victim"), Big('W'));
  ExpectNeighboursIntact(*t);
  ExpectClean(*t);
}

TEST(CrashTest, StoppedWriterIsWaitedForAndReadersCarryOn) { StoppedWriterScenario(false); }

TEST(CrashTest, StoppedThenKilledWriterIsRecovered) { StoppedWriterScenario(true); }

// No global lock: while a writer is stopped holding its buckets' locks, writers of
// keys in other buckets proceed.
TEST(CrashTest, StoppedWriterDoesNotBlockOtherBuckets) {
  TempTable tt;
  std::unique_ptr<Table> t = OpenTable(tt.path(), true);
  ASSERT_NE(t, nullptr);
  uint64_t v1, v2;
  t->BucketsOf("victim", &v1, &v2);
  std::vector<std::string> others;
  for (int i = 0; others.size() < 20; ++i) {
    const std::string k = "other" + std::to_string(i);
    uint64_t b1, b2;
    t->BucketsOf(k, &b1, &b2);
    if (b1 != v1 && b1 != v2 && b2 != v1 && b2 != v2) others.push_back(k);
  }
  const pid_t pid = ForkVictimWriter(tt.path(), CrashPoint::kPayloadHalfWritten,
                                     CrashAction::kStop, WriteMode::kInsert, Big('N'));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status));
  // Runs in this thread: if it blocked, the test would hang and time out.
  for (const std::string& k : others) {
    ASSERT_TRUE(t->Write(WriteMode::kPut, k, Big('x'), 0).ok()) << k;
    ASSERT_TRUE(t->Erase(k).ok()) << k;
  }
  EXPECT_EQ(ValueOf(*t, "victim"), "<absent>");
  kill(pid, SIGCONT);
  status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(ValueOf(*t, "victim"), Big('N'));
  ExpectClean(*t);
}

// Readers in another process keep reading while writers are killed mid-write over and
// over; every value they see is one that was committed.
TEST(CrashTest, ReaderProcessNeverSeesUncommittedValues) {
  TempTable tt;
  std::unique_ptr<Table> t = OpenTable(tt.path(), true);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('0'), 0).ok());
  // Reader process: every value must be 200 copies of one digit, and the digits it
  // sees never go back (each killed write used a fresh digit, never committed).
  const pid_t reader = ForkChild([&]() -> int {
    std::unique_ptr<Table> r = OpenTable(tt.path(), false);
    char last = '0';
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string v;
      if (!r->Get("victim", &v, nullptr).ok()) return 10;
      if (v.size() != 200 || v != std::string(200, v[0])) return 11;  // torn
      if (v[0] == 'X') return 0;  // the parent's final value: done
      if (v[0] < last) return 12;
      if (v[0] != '0' && v[0] != 'c') return 13;  // only committed values
      last = v[0];
    }
    return 14;
  });
  const CrashPoint points[] = {CrashPoint::kWriteBegun, CrashPoint::kPayloadHalfWritten,
                               CrashPoint::kPayloadWritten};
  for (int round = 0; round < 30; ++round) {
    const int status = WaitChild(ForkVictimWriter(tt.path(), points[round % 3],
                                                  CrashAction::kKill, WriteMode::kPut, Big('k')));
    ASSERT_TRUE(WIFSIGNALED(status));
    if (round == 15) {
      ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('c'), 0).ok());
    }
  }
  ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", Big('X'), 0).ok());
  const int status = WaitChild(reader);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "reader failed (10 error, 11 torn, 12 went back, "
                                       "13 uncommitted value, 14 deadline)";
  ExpectClean(*t);
}

}  // namespace
}  // namespace shmdict::internal
