// The checker must accept every linearizable history and reject the others; these
// cases pin both directions, including killed operations.
#include "tools/lincheck.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shmdict::lincheck {
namespace {

Operation Op(Kind kind, Outcome outcome, uint64_t inv, uint64_t ret, uint64_t value = 0,
             uint64_t version = 0, uint64_t expected = 0) {
  Operation op;
  op.kind = kind;
  op.outcome = outcome;
  op.invoke_ns = inv;
  op.return_ns = outcome == Outcome::kUnknown ? kNever : ret;
  op.value = value;
  op.version = version;
  op.expected = expected;
  return op;
}

constexpr auto kOk = Outcome::kOk;

TEST(LincheckTest, SequentialHistoryIsLinearizable) {
  const std::vector<Operation> h = {
      Op(Kind::kGet, Outcome::kNotFound, 0, 1),
      Op(Kind::kInsert, kOk, 2, 3, 100, 1),
      Op(Kind::kGet, kOk, 4, 5, 100, 1),
      Op(Kind::kInsert, Outcome::kExists, 6, 7, 101),
      Op(Kind::kReplace, kOk, 8, 9, 102, 2),
      Op(Kind::kCompareAndSwap, Outcome::kVersion, 10, 11, 103, 0, 1),
      Op(Kind::kCompareAndSwap, kOk, 12, 13, 104, 3, 2),
      Op(Kind::kErase, kOk, 14, 15),
      Op(Kind::kErase, Outcome::kNotFound, 16, 17),
      Op(Kind::kReplace, Outcome::kNotFound, 18, 19, 105),
      Op(Kind::kCompareAndSwap, kOk, 20, 21, 106, 4, 0),
      Op(Kind::kGet, kOk, 22, 23, 106, 4),
  };
  Result r = CheckKey(h);
  EXPECT_TRUE(r.linearizable) << r.message;
}

TEST(LincheckTest, ConcurrentOperationsMayBeReordered) {
  // The read starts before the put and returns its value: fine, they overlap.
  const std::vector<Operation> h = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kGet, kOk, 2, 10, 101, 2),
      Op(Kind::kPut, kOk, 3, 5, 101, 2),
      Op(Kind::kGet, kOk, 4, 9, 100, 1),  // overlaps the second put: may read the first
  };
  Result r = CheckKey(h);
  EXPECT_TRUE(r.linearizable) << r.message;
}

TEST(LincheckTest, StaleReadIsRejected) {
  const std::vector<Operation> h = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, kOk, 2, 3, 101, 2),
      Op(Kind::kGet, kOk, 4, 5, 100, 1),  // after the second put returned
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
}

TEST(LincheckTest, ReadFromTheFutureIsRejected) {
  const std::vector<Operation> h = {
      Op(Kind::kGet, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, kOk, 2, 3, 100, 1),
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
}

TEST(LincheckTest, ReadsMustNotGoBackInTime) {
  // Two overlapping reads of one writer's two values, the later read older.
  const std::vector<Operation> h = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, kOk, 2, 20, 101, 2),
      Op(Kind::kGet, kOk, 3, 4, 101, 2),
      Op(Kind::kGet, kOk, 5, 6, 100, 1),
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
}

TEST(LincheckTest, VersionsMustIncrease) {
  const std::vector<Operation> h = {
      Op(Kind::kPut, kOk, 0, 1, 100, 5),
      Op(Kind::kErase, kOk, 2, 3),
      Op(Kind::kInsert, kOk, 4, 5, 101, 5),  // reused across erase and re-insert
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
  const std::vector<Operation> wrong_version_read = {
      Op(Kind::kPut, kOk, 0, 1, 100, 5),
      Op(Kind::kGet, kOk, 2, 3, 100, 6),
  };
  EXPECT_FALSE(CheckKey(wrong_version_read).linearizable);
}

TEST(LincheckTest, LostWriteIsRejected) {
  const std::vector<Operation> h = {
      Op(Kind::kInsert, kOk, 0, 1, 100, 1),
      Op(Kind::kGet, Outcome::kNotFound, 2, 3),  // acknowledged insert vanished
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
}

TEST(LincheckTest, KilledWriteMayOrMayNotHaveHappened) {
  // Killed put, never observed: fine.
  const std::vector<Operation> unobserved = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, Outcome::kUnknown, 2, 0, 101),
      Op(Kind::kGet, kOk, 5, 6, 100, 1),
  };
  EXPECT_TRUE(CheckKey(unobserved).linearizable);
  // Killed put observed by a read, with a version above the previous one: fine.
  const std::vector<Operation> observed = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, Outcome::kUnknown, 2, 0, 101),
      Op(Kind::kGet, kOk, 5, 6, 101, 7),
      Op(Kind::kPut, kOk, 7, 8, 102, 8),
  };
  EXPECT_TRUE(CheckKey(observed).linearizable);
  // ... but not observed before it was invoked,
  const std::vector<Operation> early = {
      Op(Kind::kGet, kOk, 0, 1, 101, 7),
      Op(Kind::kPut, Outcome::kUnknown, 2, 0, 101),
  };
  EXPECT_FALSE(CheckKey(early).linearizable);
  // ... nor with a version at or below the previous one,
  const std::vector<Operation> low_version = {
      Op(Kind::kPut, kOk, 0, 1, 100, 5),
      Op(Kind::kPut, Outcome::kUnknown, 2, 0, 101),
      Op(Kind::kGet, kOk, 5, 6, 101, 5),
  };
  EXPECT_FALSE(CheckKey(low_version).linearizable);
  // ... nor seen, then unseen again (it happened or it did not).
  const std::vector<Operation> flicker = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, Outcome::kUnknown, 2, 0, 101),
      Op(Kind::kGet, kOk, 5, 6, 101, 2),
      Op(Kind::kGet, kOk, 7, 8, 100, 1),
  };
  EXPECT_FALSE(CheckKey(flicker).linearizable);
}

TEST(LincheckTest, KilledInsertExplainsALaterExists) {
  const std::vector<Operation> h = {
      Op(Kind::kInsert, Outcome::kUnknown, 0, 0, 100),
      Op(Kind::kInsert, Outcome::kExists, 5, 6, 101),
  };
  EXPECT_TRUE(CheckKey(h).linearizable);
  const std::vector<Operation> without = {
      Op(Kind::kInsert, Outcome::kExists, 5, 6, 101),
  };
  EXPECT_FALSE(CheckKey(without).linearizable);
}

TEST(LincheckTest, EraseAndInsertRaceResolvesEitherWay) {
  const std::vector<Operation> h = {
      Op(Kind::kInsert, kOk, 0, 1, 100, 1),
      Op(Kind::kErase, kOk, 2, 6),
      Op(Kind::kInsert, Outcome::kExists, 3, 4, 101),  // before the erase
      Op(Kind::kGet, Outcome::kNotFound, 5, 7),         // after it
  };
  EXPECT_TRUE(CheckKey(h).linearizable);
}

// Random sequential histories, with some operations stretched to overlap later ones
// and some writes killed, are always linearizable.
TEST(LincheckTest, RandomSequentialHistoriesAreAccepted) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Operation> h;
    bool present = false;
    uint64_t value = 0, version = 0, next_value = 1, t = 0;
    for (int i = 0; i < 60; ++i) {
      const uint64_t inv = t;
      t += 10;
      const uint64_t ret = t + (rng() % 3 == 0 ? 25 : 0);  // some overlap later ops
      t += 10;
      // Killed writes are rare, as in the stress harness: each one multiplies the
      // orders the search must consider.
      const uint64_t pick = rng() % 25;
      switch (pick < 8 ? 0 : pick < 16 ? 1 : pick < 24 ? 2 : 3) {
        case 0:
          h.push_back(present ? Op(Kind::kGet, kOk, inv, ret, value, version)
                              : Op(Kind::kGet, Outcome::kNotFound, inv, ret));
          break;
        case 1:
          value = next_value++;
          version += 1 + rng() % 3;
          present = true;
          h.push_back(Op(Kind::kPut, kOk, inv, ret, value, version));
          break;
        case 2:
          h.push_back(present ? Op(Kind::kErase, kOk, inv, ret)
                              : Op(Kind::kErase, Outcome::kNotFound, inv, ret));
          present = false;
          break;
        case 3:
          h.push_back(Op(Kind::kPut, Outcome::kUnknown, inv, 0, 1000000 + i));
          break;
      }
    }
    Result r = CheckKey(h);
    ASSERT_TRUE(r.linearizable) << "trial " << trial << ": " << r.message;
  }
}

// ---- Expiry and eviction

Operation WithTtl(Operation op, uint64_t ttl_ns) {
  op.ttl_ns = ttl_ns;
  return op;
}

// Expiry bounds of the cases below: may vanish from invoke + 100 - 5, must have by
// return + 100 + 10.
constexpr uint64_t kTtl = 100;
const Options kExpiry = {.evictable = false, .early_ns = 5, .late_ns = 10};

TEST(LincheckExpiryTest, AbsentAfterTheDeadlineIsAccepted) {
  const std::vector<Operation> h = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kGet, kOk, 50, 51, 100, 1),
      Op(Kind::kGet, Outcome::kNotFound, 96, 97),  // from 95 on it may be gone
      Op(Kind::kGet, Outcome::kNotFound, 200, 201),
  };
  Result r = CheckKey(h, 0, kExpiry);
  EXPECT_TRUE(r.linearizable) << r.message;
}

TEST(LincheckExpiryTest, AbsentBeforeTheDeadlineIsRejected) {
  const std::vector<Operation> h = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kGet, Outcome::kNotFound, 50, 60),
  };
  Result r = CheckKey(h, 0, kExpiry);
  EXPECT_FALSE(r.linearizable);
}

TEST(LincheckExpiryTest, PresentAfterTheLatestDeadlineIsRejected) {
  const std::vector<Operation> h = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kGet, kOk, 112, 113, 100, 1),  // it must be gone from 2 + 100 + 10 = 112
  };
  Result r = CheckKey(h, 0, kExpiry);
  EXPECT_FALSE(r.linearizable);
  // One nanosecond earlier it may still be there.
  const std::vector<Operation> ok = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kGet, kOk, 111, 113, 100, 1),
  };
  r = CheckKey(ok, 0, kExpiry);
  EXPECT_TRUE(r.linearizable) << r.message;
}

TEST(LincheckExpiryTest, ExpiredStaysAbsentUntilTheNextWrite) {
  // Once a read saw it gone, a later read cannot see it again.
  const std::vector<Operation> h = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kGet, Outcome::kNotFound, 96, 97),
      Op(Kind::kGet, kOk, 98, 99, 100, 1),
  };
  Result r = CheckKey(h, 0, kExpiry);
  EXPECT_FALSE(r.linearizable);
}

TEST(LincheckExpiryTest, InsertOverAnExpiredEntryAndTouch) {
  const std::vector<Operation> h = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kInsert, Outcome::kExists, 10, 11, 101),
      Op(Kind::kInsert, kOk, 150, 151, 102, 2),  // expired: absent to insert
      // A touch keeps the value and renews the expiry.
      WithTtl(Op(Kind::kTouch, kOk, 160, 161, 0, 3), 1000),
      Op(Kind::kGet, kOk, 500, 501, 102, 3),
      Op(Kind::kTouch, Outcome::kNotFound, 1300, 1301),
  };
  Result r = CheckKey(h, 0, kExpiry);
  EXPECT_TRUE(r.linearizable) << r.message;
  // An insert refused before the deadline is fine; one that succeeds there is not.
  const std::vector<Operation> early = {
      WithTtl(Op(Kind::kPut, kOk, 0, 2, 100, 1), kTtl),
      Op(Kind::kInsert, kOk, 10, 11, 102, 2),
  };
  r = CheckKey(early, 0, kExpiry);
  EXPECT_FALSE(r.linearizable);
  // A touch that reports a value change is caught by the next read.
  const std::vector<Operation> touched = {
      Op(Kind::kPut, kOk, 0, 2, 100, 1),
      WithTtl(Op(Kind::kTouch, kOk, 3, 4, 0, 2), 1000),
      Op(Kind::kGet, kOk, 5, 6, 100, 1),  // the touch gave version 2
  };
  r = CheckKey(touched, 0, kExpiry);
  EXPECT_FALSE(r.linearizable);
}

TEST(LincheckExpiryTest, EvictionMayRemoveAnEntryAnyTimeButNeverRevivesOne) {
  const Options evictable = {.evictable = true};
  const std::vector<Operation> h = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kGet, Outcome::kNotFound, 2, 3),  // evicted
      Op(Kind::kGet, Outcome::kNotFound, 4, 5),
  };
  EXPECT_FALSE(CheckKey(h).linearizable);
  Result r = CheckKey(h, 0, evictable);
  EXPECT_TRUE(r.linearizable) << r.message;
  const std::vector<Operation> revived = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kGet, Outcome::kNotFound, 2, 3),
      Op(Kind::kGet, kOk, 4, 5, 100, 1),
  };
  r = CheckKey(revived, 0, evictable);
  EXPECT_FALSE(r.linearizable);
  // A stale value is still a stale value.
  const std::vector<Operation> stale = {
      Op(Kind::kPut, kOk, 0, 1, 100, 1),
      Op(Kind::kPut, kOk, 2, 3, 101, 2),
      Op(Kind::kGet, kOk, 4, 5, 100, 1),
  };
  r = CheckKey(stale, 0, evictable);
  EXPECT_FALSE(r.linearizable);
}

}  // namespace
}  // namespace shmdict::lincheck
