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

}  // namespace
}  // namespace shmdict::lincheck
