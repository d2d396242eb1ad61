// Where inserts put keys (the bucket with more free slots, the left one on a tie, and
// in it the key's home slot if free, else the next free slot cyclically), and that
// lookups find every key wherever it sits: at home, displaced from home, or at home
// again after an erase.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/layout.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict::internal {
namespace {

using ::shmdict::testing::TempTable;

std::unique_ptr<Table> Create(const std::string& path, uint64_t capacity) {
  OpenOptions p;
  p.create = true;
  p.capacity = capacity;
  p.max_key_size = 16;
  p.max_value_size = 64;
  absl::StatusOr<std::unique_ptr<Table>> t = Table::Open(path, p);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

// The occupied slots of bucket b, from its tags (bit i: slot i is tagged).
uint32_t TaggedSlots(const Table& t, uint64_t b) {
  const auto* meta = reinterpret_cast<const BucketMeta*>(
      t.MappingForTesting() + BucketOffset(t.layout(), b));
  uint32_t mask = 0;
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    const uint64_t w = meta->tags[i / 8].load();
    if (((w >> (8 * (i % 8))) & 0xFF) != 0) mask |= uint32_t{1} << i;
  }
  return mask;
}

// The smallest table: two buckets (one left, one right) of 16 slots, so that every key
// competes for the same 32 slots and most homes are taken by the end.
TEST(PlacementTest, InsertsFollowThePolicyAndEveryKeyIsFound) {
  TempTable tt;
  std::unique_ptr<Table> t = Create(tt.path(), 16);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->layout().bucket_count, 2u);
  std::vector<std::string> keys;
  uint32_t at_home = 0, displaced = 0;
  for (int k = 0; k < 32; ++k) {
    const std::string key = absl::StrCat("key-", k);
    uint64_t b1, b2;
    t->BucketsOf(key, &b1, &b2);
    const uint32_t home = t->HomeSlotOf(key);
    ASSERT_LT(home, kSlotsPerBucket);
    const uint32_t before[2] = {TaggedSlots(*t, b1), TaggedSlots(*t, b2)};
    const int free1 = kSlotsPerBucket - __builtin_popcount(before[0]);
    const int free2 = kSlotsPerBucket - __builtin_popcount(before[1]);
    // The expected place.
    const int side = free1 >= free2 ? 0 : 1;
    uint32_t slot = home;
    while ((before[side] >> slot) & 1) slot = (slot + 1) % kSlotsPerBucket;
    ASSERT_TRUE(t->Write(WriteMode::kInsert, key, absl::StrCat("value-", k), 0).ok());
    const uint32_t after[2] = {TaggedSlots(*t, b1), TaggedSlots(*t, b2)};
    EXPECT_EQ(after[side], before[side] | (uint32_t{1} << slot)) << key;
    EXPECT_EQ(after[1 - side], before[1 - side]) << key;
    (slot == home ? at_home : displaced) += 1;
    keys.push_back(key);
  }
  // Both cases happened (32 keys in 32 slots: the last ones find their homes taken).
  EXPECT_GT(at_home, 0u);
  EXPECT_GT(displaced, 0u);
  for (size_t k = 0; k < keys.size(); ++k) {
    std::string v;
    uint64_t version = 0;
    ASSERT_TRUE(t->Get(keys[k], &v, &version).ok()) << keys[k];
    EXPECT_EQ(v, absl::StrCat("value-", k));
    EXPECT_GT(version, 0u);
  }
  // Absent keys, whose home slots hold other keys, are absent.
  for (int k = 0; k < 64; ++k) {
    std::string v;
    EXPECT_FALSE(t->Get(absl::StrCat("absent-", k), &v, nullptr).ok());
  }
  // Erase every other key; the rest stay found and the erased ones are absent; each
  // erased key goes back in (perhaps at another slot) and is found again.
  for (size_t k = 0; k < keys.size(); k += 2) ASSERT_TRUE(t->Erase(keys[k]).ok());
  for (size_t k = 0; k < keys.size(); ++k) {
    std::string v;
    EXPECT_EQ(t->Get(keys[k], &v, nullptr).ok(), k % 2 == 1) << keys[k];
  }
  for (size_t k = 0; k < keys.size(); k += 2) {
    ASSERT_TRUE(t->Write(WriteMode::kInsert, keys[k], "again", 0).ok());
  }
  for (size_t k = 0; k < keys.size(); ++k) {
    std::string v;
    ASSERT_TRUE(t->Get(keys[k], &v, nullptr).ok()) << keys[k];
    EXPECT_EQ(v, k % 2 == 0 ? "again" : absl::StrCat("value-", k));
  }
  // Updates find the key wherever it is (no second copy appears).
  for (size_t k = 0; k < keys.size(); ++k) {
    ASSERT_TRUE(t->Write(WriteMode::kPut, keys[k], "updated", 0).ok());
  }
  EXPECT_EQ(t->Count().entries, keys.size());
  EXPECT_TRUE(t->Verify().clean());
}

// In a roomy table almost every key lands at home (its home slot is taken only by a
// key of the same bucket with the same home): the fast path of lookups.
TEST(PlacementTest, MostKeysOfAHalfFullTableAreAtHome) {
  TempTable tt;
  std::unique_ptr<Table> t = Create(tt.path(), 4096);
  ASSERT_NE(t, nullptr);
  int at_home = 0;
  const int n = 2048;
  for (int k = 0; k < n; ++k) {
    const std::string key = absl::StrCat("k", k);
    uint64_t b1, b2;
    t->BucketsOf(key, &b1, &b2);
    const uint32_t home = t->HomeSlotOf(key);
    const uint32_t before1 = TaggedSlots(*t, b1), before2 = TaggedSlots(*t, b2);
    ASSERT_TRUE(t->Write(WriteMode::kInsert, key, "v", 0).ok());
    const uint32_t added1 = TaggedSlots(*t, b1) & ~before1;
    const uint32_t added2 = TaggedSlots(*t, b2) & ~before2;
    if (((added1 | added2) >> home) & 1) ++at_home;
  }
  // Expected about 80% at this load (40% of the slots); a first-free policy would put
  // about 1/16 of the keys at their home slot by chance.
  EXPECT_GT(at_home, n * 7 / 10) << at_home << " of " << n;
}

}  // namespace
}  // namespace shmdict::internal
