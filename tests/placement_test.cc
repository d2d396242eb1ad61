// Where inserts put keys (the bucket with more free slots, the left one on a tie, and
// in it the key's home slot if free, else the next free slot cyclically), and that
// lookups find every key wherever it sits: at home, displaced from home, or at home
// again after an erase. And known answers: for a fixed seed, the buckets, tag and home
// slot of fixed keys, as numbers, so that any change to placement shows as a change of
// the file format.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/layout.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {
namespace {

using ::shmdict::testing::TempTable;

std::unique_ptr<Table> Create(const std::string& path, uint64_t capacity,
                              uint32_t max_key_size = 16, uint32_t max_value_size = 64) {
  OpenOptions p;
  p.create = true;
  p.capacity = capacity;
  p.max_key_size = max_key_size;
  p.max_value_size = max_value_size;
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

// ---------------------------------------------------------------------------------
// Known answers
//
// Where a key is stored is part of the file format: a file written by one build is
// read by another, which must look for each key where the first one put it. The
// numbers below pin it for one seed: XXH3-64 of each key, its tag and home slot, and
// its two buckets for three bucket counts. Changing h, a tag or a bucket is a file
// format change: bump kFormatVersion (core/layout.h) and update docs/file_format.md
// ("Hashing", "Known answers"). Changing a home slot leaves old files readable (the
// tag scan finds a key in any slot of its buckets) but moves where inserts put keys
// and what lookups read first: update the same places.
//
// The numbers were computed once with the engine (Table::BucketsOf and HomeSlotOf,
// and the tag an insert stored); the test checks them against the engine, and against
// the formula of docs/file_format.md ("Hashing") computed here from XXH3 directly, so
// that neither the engine nor this file can drift alone.

constexpr uint64_t kKatSeed = 0x243F6A8885A308D3ull;  // the first fraction bits of pi

// Keys of every length class of XXH3 (0, 1-3, 4-8, 9-16, 17-128, 129-240, > 240).
std::string Text(size_t n) {
  static constexpr std::string_view kFox = "The quick brown fox jumps over the lazy dog. ";
  std::string s;
  while (s.size() < n) s.append(kFox);
  s.resize(n);
  return s;
}

std::vector<std::string> KatKeys() {
  return {
      std::string(),          // the empty key
      std::string(1, '\0'),   // one zero byte
      "a",
      "abc",
      "shmdict",
      "user:1234567",
      Text(100),
      Text(200),
      Text(300),
      "tag0-208",  // its hash's low byte is 0 under kKatSeed: tag 1
  };
}
constexpr uint32_t kKatMaxKey = 300;

struct KatHash {
  uint64_t h;    // XXH3_64bits_withSeed(key, kKatSeed)
  uint8_t tag;   // low byte of h, 0 -> 1
  uint8_t home;  // bits 8-11 of h
};
constexpr KatHash kKatHash[] = {
    {0x2DDF1348E67DDACEull, 206, 10},  // ""
    {0xB17FAD8BA2F99456ull, 86, 4},  // "\0"
    {0xEFE6972B63215397ull, 151, 3},  // "a"
    {0x145FC26EAAAB9780ull, 128, 7},  // "abc"
    {0x1075F08658FA5F4Bull, 75, 15},  // "shmdict"
    {0x7DB7F8282062D6D9ull, 217, 6},  // "user:1234567"
    {0x4DDAFF13D3780DCFull, 207, 13},  // Text(100)
    {0xBB4E9E39710B4F59ull, 89, 15},  // Text(200)
    {0x3A03D227160ED1CCull, 204, 1},  // Text(300)
    {0x85E7718D417F8500ull, 1, 5},  // "tag0-208"
};

// Bucket counts 2, 80 and 1564: capacities 16, 1000 and 20000.
struct KatTable {
  uint64_t capacity;
  uint64_t bucket_count;
  uint64_t buckets[10][2];  // {b1, b2} of each key of KatKeys()
};
constexpr KatTable kKatTables[] = {
    // One bucket per half: every key's buckets are 0 and 1.
    {16, 2, {{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}}},
    {1000, 80,
     {{7, 62}, {27, 73}, {37, 47}, {3, 43}, {2, 55},
      {19, 53}, {12, 65}, {29, 75}, {9, 75}, {20, 56}}},
    {20000, 1564,
     {{140, 1226}, {542, 1437}, {732, 927}, {62, 856}, {50, 1076},
      {384, 1048}, {237, 1276}, {572, 1481}, {177, 1484}, {409, 1113}}},
};

// The placement of a key as docs/file_format.md defines it, from XXH3 and the formula,
// without the engine.
struct Place {
  uint64_t h, b1, b2;
  uint8_t tag, home;
};
Place FormulaPlace(std::string_view key, uint64_t seed, uint64_t bucket_count) {
  using u128 = unsigned __int128;
  Place p;
  p.h = XXH3_64bits_withSeed(key.data(), key.size(), seed);
  const uint64_t half = bucket_count / 2;
  p.b1 = static_cast<uint64_t>((u128{p.h} * half) >> 64);
  const uint64_t rotated = (p.h << 32) | (p.h >> 32);
  const uint64_t g = rotated * 0x9E3779B97F4A7C15ull;  // mod 2^64
  p.b2 = half + static_cast<uint64_t>((u128{g} * half) >> 64);
  p.tag = (p.h & 0xFF) == 0 ? 1 : static_cast<uint8_t>(p.h & 0xFF);
  p.home = static_cast<uint8_t>((p.h >> 8) & 0xF);
  return p;
}

// The linked xxHash is XXH3 as published: xxHash's own sanity vectors
// (cli/xsum_sanity_check.c, XSUM_XXH3_testdata) for seeds 0 and PRIME64, on its
// generated input, one length of each of XXH3's code paths.
TEST(PlacementKnownAnswerTest, Xxh3IsThePublishedAlgorithm) {
  constexpr uint64_t kPrime32 = 2654435761u;
  constexpr uint64_t kPrime64 = 0x9E3779B185EBCA8Dull;
  std::vector<uint8_t> input(2367);
  uint64_t gen = kPrime32;
  for (uint8_t& byte : input) {
    byte = static_cast<uint8_t>(gen >> 56);
    gen *= kPrime64;
  }
  const struct {
    size_t len;
    uint64_t seed;
    uint64_t h;
  } kVectors[] = {
      {0, 0, 0x2D06800538D394C2ull},       {0, kPrime64, 0xA8A6B918B2F0364Aull},
      {1, 0, 0xC44BDFF4074EECDBull},       {1, kPrime64, 0x032BE332DD766EF8ull},
      {6, 0, 0x27B56A84CD2D7325ull},       {6, kPrime64, 0x84589C116AB59AB9ull},
      {12, 0, 0xA713DAF0DFBB77E7ull},      {12, kPrime64, 0xE7303E1B2336DE0Eull},
      {24, 0, 0xA3FE70BF9D3510EBull},      {24, kPrime64, 0x850E80FC35BDD690ull},
      {48, 0, 0x397DA259ECBA1F11ull},      {48, kPrime64, 0xADC2CBAA44ACC616ull},
      {80, 0, 0xBCDEFBBB2C47C90Aull},      {80, kPrime64, 0xC6DD0CB699532E73ull},
      {195, 0, 0xCD94217EE362EC3Aull},     {195, kPrime64, 0xBA68003D370CB3D9ull},
      {403, 0, 0xCDEB804D65C6DEA4ull},     {403, kPrime64, 0x6259F6ECFD6443FDull},
      {512, 0, 0x617E49599013CB6Bull},     {512, kPrime64, 0x3CE457DE14C27708ull},
      {2048, 0, 0xDD59E2C3A5F038E0ull},    {2048, kPrime64, 0x66F81670669ABABCull},
      {2240, 0, 0x6E73A90539CF2948ull},    {2240, kPrime64, 0x757BA8487D1B5247ull},
      {2367, 0, 0xCB37AEB9E5D361EDull},    {2367, kPrime64, 0xD2DB3415B942B42Aull},
  };
  for (const auto& v : kVectors) {
    EXPECT_EQ(XXH3_64bits_withSeed(input.data(), v.len, v.seed), v.h)
        << "length " << v.len << " seed " << v.seed;
  }
}

// The pinned hashes, tags, homes and buckets follow from XXH3 and the formula.
TEST(PlacementKnownAnswerTest, KnownAnswersFollowTheFormula) {
  const std::vector<std::string> keys = KatKeys();
  ASSERT_EQ(keys.size(), std::size(kKatHash));
  for (size_t k = 0; k < keys.size(); ++k) {
    SCOPED_TRACE(::testing::Message() << "key " << k << " (" << keys[k].size() << " bytes)");
    ASSERT_LE(keys[k].size(), kKatMaxKey);
    const Place p = FormulaPlace(keys[k], kKatSeed, 2);
    EXPECT_EQ(p.h, kKatHash[k].h);
    EXPECT_EQ(p.tag, kKatHash[k].tag);
    EXPECT_EQ(p.home, kKatHash[k].home);
    for (const KatTable& t : kKatTables) {
      const Place q = FormulaPlace(keys[k], kKatSeed, t.bucket_count);
      EXPECT_EQ(q.b1, t.buckets[k][0]) << "n = " << t.bucket_count;
      EXPECT_EQ(q.b2, t.buckets[k][1]) << "n = " << t.bucket_count;
    }
  }
  // The zero-tag case is covered.
  EXPECT_EQ(kKatHash[9].h & 0xFF, 0u);
  EXPECT_EQ(kKatHash[9].tag, 1);
}

// Gives the table file at `path` (which holds no entries) the hash seed `seed`: the
// immutable header is rewritten with it and its checksum recomputed.
::testing::AssertionResult SetSeed(const std::string& path, uint64_t seed) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ::testing::AssertionFailure() << "open " << path << ": " << errno;
  ImmutableHeader fixed;
  bool ok = pread(fd, &fixed, sizeof(fixed), 0) == static_cast<ssize_t>(sizeof(fixed));
  fixed.hash_seed = seed;
  const uint64_t checksum = HeaderChecksum(fixed);
  ok = ok && pwrite(fd, &fixed, sizeof(fixed), 0) == static_cast<ssize_t>(sizeof(fixed));
  ok = ok && pwrite(fd, &checksum, sizeof(checksum), offsetof(FileHeader, checksum)) ==
                 static_cast<ssize_t>(sizeof(checksum));
  close(fd);
  if (!ok) return ::testing::AssertionFailure() << "rewriting the header of " << path;
  return ::testing::AssertionSuccess();
}

// Every tagged slot of the table: {bucket, slot, tag}.
struct Tagged {
  uint64_t b;
  uint32_t i;
  uint32_t tag;
  bool operator==(const Tagged&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Tagged& t) {
  return os << "{bucket " << t.b << ", slot " << t.i << ", tag " << t.tag << "}";
}
std::vector<Tagged> AllTagged(const Table& t) {
  std::vector<Tagged> out;
  for (uint64_t b = 0; b < t.layout().bucket_count; ++b) {
    const auto* meta = reinterpret_cast<const BucketMeta*>(t.MappingForTesting() +
                                                           BucketOffset(t.layout(), b));
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t w = meta->tags[i / 8].load();
      const uint32_t tag = static_cast<uint32_t>((w >> (8 * (i % 8))) & 0xFF);
      if (tag != 0) out.push_back({b, i, tag});
    }
  }
  return out;
}

// The engine puts each key where the known answers say: an insert into an empty table
// tags slot `home` of b1; with b1 one slot fuller (another key of the same left
// bucket inserted first), slot `home` of b2.
TEST(PlacementKnownAnswerTest, TheEngineStoresKeysWhereTheKnownAnswersSay) {
  const std::vector<std::string> keys = KatKeys();
  for (const KatTable& kt : kKatTables) {
    SCOPED_TRACE(::testing::Message() << "capacity " << kt.capacity);
    TempTable tt;
    {
      std::unique_ptr<Table> fresh = Create(tt.path(), kt.capacity, kKatMaxKey, 8);
      ASSERT_NE(fresh, nullptr);
    }
    ASSERT_TRUE(SetSeed(tt.path(), kKatSeed));
    std::unique_ptr<Table> t = Create(tt.path(), kt.capacity, kKatMaxKey, 8);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->layout().bucket_count, kt.bucket_count);
    ASSERT_TRUE(AllTagged(*t).empty());
    for (size_t k = 0; k < keys.size(); ++k) {
      SCOPED_TRACE(::testing::Message() << "key " << k << " (" << keys[k].size() << " bytes)");
      const std::string& key = keys[k];
      const uint64_t b1 = kt.buckets[k][0], b2 = kt.buckets[k][1];
      const uint32_t tag = kKatHash[k].tag, home = kKatHash[k].home;
      uint64_t got1 = 0, got2 = 0;
      t->BucketsOf(key, &got1, &got2);
      EXPECT_EQ(got1, b1);
      EXPECT_EQ(got2, b2);
      EXPECT_EQ(t->HomeSlotOf(key), home);

      // Alone in the table: the left bucket (a tie), the home slot.
      ASSERT_TRUE(t->Write(WriteMode::kInsert, key, "v", 0).ok());
      EXPECT_EQ(AllTagged(*t), (std::vector<Tagged>{{b1, home, tag}}));
      std::string v;
      EXPECT_TRUE(t->Get(key, &v, nullptr).ok());
      EXPECT_EQ(v, "v");
      ASSERT_TRUE(t->Erase(key).ok());
      ASSERT_TRUE(AllTagged(*t).empty());

      // After a filler of the same left bucket: the right bucket, the home slot.
      std::string filler;
      for (int f = 0; filler.empty() && f < 1000000; ++f) {
        const std::string candidate = absl::StrCat("filler-", f);
        if (FormulaPlace(candidate, kKatSeed, kt.bucket_count).b1 == b1) filler = candidate;
      }
      ASSERT_FALSE(filler.empty());
      const Place fp = FormulaPlace(filler, kKatSeed, kt.bucket_count);
      ASSERT_TRUE(t->Write(WriteMode::kInsert, filler, "f", 0).ok());
      ASSERT_TRUE(t->Write(WriteMode::kInsert, key, "v", 0).ok());
      std::vector<Tagged> want = {{b1, fp.home, fp.tag}, {b2, home, tag}};
      EXPECT_EQ(AllTagged(*t), want);
      v.clear();
      EXPECT_TRUE(t->Get(key, &v, nullptr).ok());
      EXPECT_EQ(v, "v");
      ASSERT_TRUE(t->Erase(key).ok());
      ASSERT_TRUE(t->Erase(filler).ok());
      ASSERT_TRUE(AllTagged(*t).empty());
    }
    EXPECT_TRUE(t->Verify().clean());
  }
}

}  // namespace
}  // namespace shmdict::internal
