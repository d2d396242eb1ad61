// The cache rules of shmdict through the C ABI (api/shmdict_c.h): expiry reads as
// absent in every call, the flags of shmdict_set, touch and ttl, fetch-add and expiry,
// clear, sweep, and the eviction policies. Time is moved forward with the engine's
// test clock (core/clock.h), except where a test needs real time to pass (a waiter
// woken by an expiry).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

// The C header's handle tag renamed, as api/shmdict_c.cc does, so that this file can
// also use api/shmdict.h (statistics).
#define shmdict shmdict_handle
#include "api/shmdict_c.h"
#undef shmdict

#include "api/shmdict.h"
#include "core/clock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict {
namespace {

using ::shmdict::testing::TempTable;

// A handle that closes itself.
struct Handle {
  shmdict_handle* d = nullptr;
  ~Handle() { shmdict_close(d); }
};

// 20 keys of capacity: 25 slots needed, 2 buckets, so every key's candidate buckets
// are the same two (32 slots): the tests can fill them exactly.
constexpr uint64_t kTinyCapacity = 20;
constexpr int kTinySlots = 32;

int Open(const std::string& path, uint32_t eviction, Handle* h, uint64_t capacity = 1000,
         int flags = SHMDICT_CREATE) {
  shmdict_options o{};
  o.capacity = capacity;
  o.max_key_size = 32;
  o.max_value_size = 64;
  o.eviction = eviction;
  return shmdict_open(path.c_str(), flags, &o, &h->d);
}

int Set(const Handle& h, const std::string& k, const std::string& v, uint64_t ttl_ms = 0,
        int flags = 0, uint64_t* version = nullptr) {
  uint64_t ignored;
  return shmdict_set(h.d, k.data(), k.size(), v.data(), v.size(), ttl_ms, flags,
                     version != nullptr ? version : &ignored);
}

// The value of k, or "<rc>" for an error code.
std::string Get(const Handle& h, const std::string& k, uint64_t* version = nullptr) {
  char buf[64];
  size_t len = 0;
  uint64_t v = 0;
  const int rc = shmdict_get(h.d, k.data(), k.size(), buf, sizeof(buf), &len, &v);
  if (rc != SHMDICT_OK) return "<" + std::to_string(rc) + ">";
  if (version != nullptr) *version = v;
  return std::string(buf, len);
}

const std::string kAbsent = "<" + std::to_string(SHMDICT_ENOTFOUND) + ">";

uint64_t Count(const Handle& h) {
  uint64_t n = ~uint64_t{0};
  EXPECT_EQ(shmdict_count(h.d, &n), SHMDICT_OK);
  return n;
}

std::set<std::string> Keys(const Handle& h) {
  std::set<std::string> keys;
  EXPECT_EQ(shmdict_foreach(
                h.d,
                [](void* ctx, const void* k, size_t kl, const void*, size_t, uint64_t) {
                  static_cast<std::set<std::string>*>(ctx)->emplace(static_cast<const char*>(k),
                                                                    kl);
                  return 0;
                },
                &keys),
            SHMDICT_OK);
  return keys;
}

int GetMany(const Handle& h, const std::string& k) {
  const void* keys[1] = {k.data()};
  size_t lens[1] = {k.size()};
  char buf[64];
  void* bufs[1] = {buf};
  size_t caps[1] = {sizeof(buf)};
  size_t vlens[1];
  uint64_t versions[1];
  int results[1] = {12345};
  EXPECT_EQ(shmdict_get_many(h.d, 1, keys, lens, bufs, caps, vlens, versions, results),
            SHMDICT_OK);
  return results[0];
}

Stats StatsOf(const std::string& path) {
  absl::StatusOr<Dict> d = Dict::Open(path, {.read_only = true});
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? d->GetStats() : Stats{};
}

// Moves this process's clocks forward by `ms` for the rest of the test.
class ClockTest : public ::testing::Test {
 protected:
  void Advance(int64_t ms) {
    internal::AdvanceClockForTesting(ms);
    moved_ += ms;
  }
  ~ClockTest() override { internal::AdvanceClockForTesting(-moved_); }

 private:
  int64_t moved_ = 0;
};

using ExpiryTest = ClockTest;

TEST_F(ExpiryTest, AnExpiredEntryReadsAsAbsentInEveryCall) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  ASSERT_EQ(Set(h, "short", "s", 1000), SHMDICT_OK);
  ASSERT_EQ(Set(h, "forever", "f"), SHMDICT_OK);
  EXPECT_EQ(Get(h, "short"), "s");
  EXPECT_EQ(GetMany(h, "short"), SHMDICT_OK);
  EXPECT_EQ(Count(h), 2u);
  EXPECT_EQ(Keys(h), (std::set<std::string>{"short", "forever"}));
  // Still there a little before its time (the coarse clock never expires early).
  Advance(990);
  EXPECT_EQ(Get(h, "short"), "s");
  Advance(20);
  EXPECT_EQ(Get(h, "short"), kAbsent);
  EXPECT_EQ(GetMany(h, "short"), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Count(h), 1u);
  EXPECT_EQ(Keys(h), (std::set<std::string>{"forever"}));
  int64_t ttl = 0;
  EXPECT_EQ(shmdict_ttl(h.d, "short", 5, &ttl), SHMDICT_ENOTFOUND);
  // wait's "absent": version 0 is what an expired key has, so the wait returns at once
  // for any other version and times out for 0.
  EXPECT_EQ(shmdict_wait(h.d, "short", 5, 0, 0), SHMDICT_ETIMEOUT);
  EXPECT_EQ(shmdict_wait(h.d, "short", 5, 1, 0), SHMDICT_OK);
  // Erase of an expired key: absent.
  EXPECT_EQ(shmdict_erase(h.d, "short", 5), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(h, "forever"), "f");
  const Stats st = StatsOf(t.path());
  EXPECT_EQ(st.count, 1u);
  EXPECT_EQ(st.expired, 0u);  // the erase freed the slot
  EXPECT_EQ(st.expired_erased, 1u);
}

TEST_F(ExpiryTest, TtlAndTouch) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  uint64_t v1 = 0, v2 = 0;
  ASSERT_EQ(Set(h, "k", "value", 0, 0, &v1), SHMDICT_OK);
  int64_t ttl = 0;
  ASSERT_EQ(shmdict_ttl(h.d, "k", 1, &ttl), SHMDICT_OK);
  EXPECT_EQ(ttl, -1);
  ASSERT_EQ(shmdict_touch(h.d, "k", 1, 5000, &v2), SHMDICT_OK);
  EXPECT_GT(v2, v1);
  EXPECT_EQ(Get(h, "k"), "value");
  ASSERT_EQ(shmdict_ttl(h.d, "k", 1, &ttl), SHMDICT_OK);
  EXPECT_GT(ttl, 4900);
  EXPECT_LE(ttl, 5000);
  Advance(3000);
  ASSERT_EQ(shmdict_ttl(h.d, "k", 1, &ttl), SHMDICT_OK);
  EXPECT_GT(ttl, 1900);
  EXPECT_LE(ttl, 2000);
  // A touch renews: 5 s from now, not from the write.
  ASSERT_EQ(shmdict_touch(h.d, "k", 1, 5000, &v1), SHMDICT_OK);
  EXPECT_GT(v1, v2);
  Advance(4000);
  EXPECT_EQ(Get(h, "k"), "value");
  // Touch with 0: never expires.
  ASSERT_EQ(shmdict_touch(h.d, "k", 1, 0, &v2), SHMDICT_OK);
  Advance(10000);
  EXPECT_EQ(Get(h, "k"), "value");
  ASSERT_EQ(shmdict_ttl(h.d, "k", 1, &ttl), SHMDICT_OK);
  EXPECT_EQ(ttl, -1);
  // Touch of an absent or expired key.
  EXPECT_EQ(shmdict_touch(h.d, "nope", 4, 100, &v1), SHMDICT_ENOTFOUND);
  ASSERT_EQ(Set(h, "e", "x", 100), SHMDICT_OK);
  Advance(200);
  EXPECT_EQ(shmdict_touch(h.d, "e", 1, 100, &v1), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(h, "e"), kAbsent);  // the failed touch did not revive it
  // Bad arguments.
  EXPECT_EQ(shmdict_ttl(h.d, "k", 1, nullptr), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_touch(h.d, "k", 1, uint64_t{1} << 50, &v1), SHMDICT_EINVAL);
  EXPECT_EQ(shmdict_touch(h.d, nullptr, 1, 100, &v1), SHMDICT_EINVAL);
}

TEST_F(ExpiryTest, SetFlags) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  uint64_t v1 = 0, v2 = 0, v3 = 0;
  // IF_PRESENT on an absent key: nothing written.
  EXPECT_EQ(Set(h, "k", "a", 0, SHMDICT_IF_PRESENT), SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(h, "k"), kAbsent);
  ASSERT_EQ(Set(h, "k", "a", 1000, SHMDICT_IF_ABSENT, &v1), SHMDICT_OK);
  EXPECT_EQ(Set(h, "k", "b", 0, SHMDICT_IF_ABSENT), SHMDICT_EEXISTS);
  EXPECT_EQ(Get(h, "k"), "a");
  ASSERT_EQ(Set(h, "k", "c", 1000, SHMDICT_IF_PRESENT, &v2), SHMDICT_OK);
  EXPECT_GT(v2, v1);
  EXPECT_EQ(Get(h, "k"), "c");
  Advance(1500);
  // Expired: absent to IF_PRESENT, and IF_ABSENT succeeds over it with a higher version.
  EXPECT_EQ(Set(h, "k", "d", 0, SHMDICT_IF_PRESENT), SHMDICT_ENOTFOUND);
  ASSERT_EQ(Set(h, "k", "e", 0, SHMDICT_IF_ABSENT, &v3), SHMDICT_OK);
  EXPECT_GT(v3, v2);
  EXPECT_EQ(Get(h, "k"), "e");
  // compare_and_swap with version 0 ("absent") over an expired key.
  ASSERT_EQ(Set(h, "c", "1", 100), SHMDICT_OK);
  Advance(200);
  uint64_t nv = 0;
  EXPECT_EQ(shmdict_compare_and_swap(h.d, "c", 1, 0, "2", 1, &nv), SHMDICT_OK);
  EXPECT_EQ(Get(h, "c"), "2");
  // Bad flags and times.
  EXPECT_EQ(Set(h, "k", "x", 0, SHMDICT_IF_ABSENT | SHMDICT_IF_PRESENT), SHMDICT_EINVAL);
  EXPECT_EQ(Set(h, "k", "x", 0, 0x4), SHMDICT_EINVAL);
  EXPECT_EQ(Set(h, "k", "x", (uint64_t{1} << 42) + 1), SHMDICT_EINVAL);
  EXPECT_EQ(Set(h, "k", "x", ~uint64_t{0}), SHMDICT_EINVAL);
  EXPECT_EQ(Set(h, "k", "x", uint64_t{1} << 42), SHMDICT_OK);  // the maximum itself
  EXPECT_EQ(Get(h, "k"), "x");
  // put is set with no expiry and no flags.
  uint64_t pv = 0;
  ASSERT_EQ(shmdict_put(h.d, "k", 1, "y", 1, &pv), SHMDICT_OK);
  int64_t ttl = 0;
  ASSERT_EQ(shmdict_ttl(h.d, "k", 1, &ttl), SHMDICT_OK);
  EXPECT_EQ(ttl, -1);
}

TEST_F(ExpiryTest, FetchAddKeepsTheExpiry) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  const int64_t five = 5;
  ASSERT_EQ(Set(h, "n", std::string(reinterpret_cast<const char*>(&five), 8), 1000),
            SHMDICT_OK);
  int64_t value = 0;
  uint64_t version = 0;
  ASSERT_EQ(shmdict_fetch_add_flags(h.d, "n", 1, 3, 0, &value, &version), SHMDICT_OK);
  EXPECT_EQ(value, 8);
  EXPECT_NE(version, 0u);
  int64_t ttl = 0;
  ASSERT_EQ(shmdict_ttl(h.d, "n", 1, &ttl), SHMDICT_OK);
  EXPECT_GT(ttl, 900);
  EXPECT_LE(ttl, 1000);
  Advance(1100);  // the counter expires with its entry
  EXPECT_EQ(Get(h, "n"), kAbsent);
  // IF_PRESENT on the expired counter: nothing written.
  EXPECT_EQ(shmdict_fetch_add_flags(h.d, "n", 1, 1, SHMDICT_IF_PRESENT, &value, nullptr),
            SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(h, "n"), kAbsent);
  // Without it: starts from 0, with no expiry.
  ASSERT_EQ(shmdict_fetch_add_flags(h.d, "n", 1, 2, 0, &value, nullptr), SHMDICT_OK);
  EXPECT_EQ(value, 2);
  ASSERT_EQ(shmdict_ttl(h.d, "n", 1, &ttl), SHMDICT_OK);
  EXPECT_EQ(ttl, -1);
  // IF_PRESENT on a present counter; on an absent key; bad flags.
  ASSERT_EQ(shmdict_fetch_add_flags(h.d, "n", 1, 2, SHMDICT_IF_PRESENT, &value, nullptr),
            SHMDICT_OK);
  EXPECT_EQ(value, 4);
  EXPECT_EQ(shmdict_fetch_add_flags(h.d, "m", 1, 1, SHMDICT_IF_PRESENT, &value, nullptr),
            SHMDICT_ENOTFOUND);
  EXPECT_EQ(Get(h, "m"), kAbsent);
  EXPECT_EQ(shmdict_fetch_add_flags(h.d, "n", 1, 1, SHMDICT_IF_ABSENT, &value, nullptr),
            SHMDICT_EINVAL);
  // An expired non-integer is absent too: the counter starts from 0, no ETYPE.
  ASSERT_EQ(Set(h, "s", "not an integer", 100), SHMDICT_OK);
  EXPECT_EQ(shmdict_fetch_add_flags(h.d, "s", 1, 1, 0, &value, nullptr), SHMDICT_ETYPE);
  Advance(200);
  ASSERT_EQ(shmdict_fetch_add_flags(h.d, "s", 1, 1, 0, &value, nullptr), SHMDICT_OK);
  EXPECT_EQ(value, 1);
}

TEST_F(ExpiryTest, ClearErasesEverythingAndVersionsKeepIncreasing) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  std::map<std::string, uint64_t> versions;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "key" + std::to_string(i);
    ASSERT_EQ(Set(h, k, "v", i % 2 == 0 ? 0 : 100000, 0, &versions[k]), SHMDICT_OK);
  }
  ASSERT_EQ(Count(h), 300u);
  ASSERT_EQ(shmdict_clear(h.d), SHMDICT_OK);
  EXPECT_EQ(Count(h), 0u);
  EXPECT_TRUE(Keys(h).empty());
  for (const auto& [k, v] : versions) {
    EXPECT_EQ(Get(h, k), kAbsent) << k;
    uint64_t again = 0;
    ASSERT_EQ(Set(h, k, "w", 0, 0, &again), SHMDICT_OK);
    EXPECT_GT(again, v) << k;
  }
  EXPECT_EQ(Count(h), 300u);
  EXPECT_EQ(shmdict_clear(h.d), SHMDICT_OK);
  EXPECT_EQ(shmdict_clear(h.d), SHMDICT_OK);  // an empty table too
  EXPECT_EQ(Count(h), 0u);
}

TEST_F(ExpiryTest, SweepErasesOnlyExpiredEntries) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Set(h, "k" + std::to_string(i), "v", i < 40 ? 500 : (i < 70 ? 5000 : 0)),
              SHMDICT_OK);
  }
  uint64_t erased = 99;
  ASSERT_EQ(shmdict_sweep(h.d, &erased), SHMDICT_OK);
  EXPECT_EQ(erased, 0u);
  Advance(1000);
  Stats st = StatsOf(t.path());
  EXPECT_EQ(st.count, 60u);
  EXPECT_EQ(st.expired, 40u);
  ASSERT_EQ(shmdict_sweep(h.d, &erased), SHMDICT_OK);
  EXPECT_EQ(erased, 40u);
  st = StatsOf(t.path());
  EXPECT_EQ(st.count, 60u);
  EXPECT_EQ(st.expired, 0u);
  EXPECT_EQ(st.expired_erased, 40u);
  ASSERT_EQ(shmdict_sweep(h.d, nullptr), SHMDICT_OK);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(Get(h, "k" + std::to_string(i)), i < 40 ? kAbsent : "v") << i;
  }
}

TEST_F(ExpiryTest, ReadOnlyHandlesCannotClearSweepOrTouch) {
  TempTable t;
  Handle w, r;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &w), SHMDICT_OK);
  ASSERT_EQ(Set(w, "k", "v", 1000), SHMDICT_OK);
  ASSERT_EQ(shmdict_open(t.path().c_str(), SHMDICT_READONLY, nullptr, &r.d), SHMDICT_OK);
  uint64_t v = 0;
  EXPECT_EQ(shmdict_clear(r.d), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_sweep(r.d, nullptr), SHMDICT_EPERM);
  EXPECT_EQ(shmdict_touch(r.d, "k", 1, 10, &v), SHMDICT_EPERM);
  EXPECT_EQ(Set(r, "k", "w", 10), SHMDICT_EPERM);
  int64_t ttl = 0;
  EXPECT_EQ(shmdict_ttl(r.d, "k", 1, &ttl), SHMDICT_OK);  // a read
  EXPECT_EQ(Get(r, "k"), "v");
}

// A waiter on a key that expires is woken by the expiry (no writer wakes it).
TEST(ExpiryWaitTest, AWaiterOnAnExpiringKeyReturnsWhenItExpires) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h), SHMDICT_OK);
  uint64_t version = 0;
  ASSERT_EQ(Set(h, "k", "v", 150, 0, &version), SHMDICT_OK);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(shmdict_wait(h.d, "k", 1, version, 10000), SHMDICT_OK);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(140));
  // Well before the 1-second re-check every waiter makes anyway (core/table.cc).
  EXPECT_LT(waited, std::chrono::milliseconds(700));
  EXPECT_EQ(Get(h, "k"), kAbsent);
}

// ---------------------------------------------------------------------------------
// Eviction

using EvictionTest = ClockTest;

// Fills the tiny table's 32 slots with keys "k0".."k31", returning their versions.
std::vector<uint64_t> Fill(const Handle& h, uint64_t ttl_ms_for_k7 = 0) {
  std::vector<uint64_t> versions(kTinySlots);
  for (int i = 0; i < kTinySlots; ++i) {
    EXPECT_EQ(Set(h, "k" + std::to_string(i), "v" + std::to_string(i),
                  i == 7 ? ttl_ms_for_k7 : 0, 0, &versions[i]),
              SHMDICT_OK)
        << i;
  }
  return versions;
}

TEST_F(EvictionTest, NoneRefusesAFullTableButReusesExpiredSlots) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &h, kTinyCapacity), SHMDICT_OK);
  Fill(h, /*ttl_ms_for_k7=*/1000);
  EXPECT_EQ(Set(h, "new", "x"), SHMDICT_EFULL);
  EXPECT_EQ(Count(h), 32u);
  Advance(2000);  // k7 expires: its slot is the room the next insert takes
  ASSERT_EQ(Set(h, "new", "x"), SHMDICT_OK);
  EXPECT_EQ(Get(h, "new"), "x");
  EXPECT_EQ(Get(h, "k7"), kAbsent);
  for (int i = 0; i < kTinySlots; ++i) {
    if (i != 7) {
      EXPECT_EQ(Get(h, "k" + std::to_string(i)), "v" + std::to_string(i)) << i;
    }
  }
  EXPECT_EQ(Set(h, "newer", "x"), SHMDICT_EFULL);
  const Stats st = StatsOf(t.path());
  EXPECT_EQ(st.eviction, Eviction::kNone);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(st.expired_erased, 1u);
}

TEST_F(EvictionTest, LrsEvictsTheLeastRecentlyStoredOnlyWhenNothingIsFree) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_LRS, &h, kTinyCapacity), SHMDICT_OK);
  // Filling never evicts: every insert finds a free slot.
  std::vector<uint64_t> versions = Fill(h, /*ttl_ms_for_k7=*/1000);
  EXPECT_EQ(Count(h), 32u);
  EXPECT_EQ(StatsOf(t.path()).evictions, 0u);
  // Rewrite k0..k3 so that k4 is the least recently stored of the unexpired entries.
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(Set(h, "k" + std::to_string(i), "again", 0, 0, &versions[i]), SHMDICT_OK);
  }
  Advance(2000);  // k7 expires: the expired entry goes before any eviction
  ASSERT_EQ(Set(h, "a", "1"), SHMDICT_OK);
  EXPECT_EQ(Get(h, "k7"), kAbsent);
  EXPECT_EQ(Get(h, "k4"), "v4");
  EXPECT_EQ(StatsOf(t.path()).evictions, 0u);
  // Now the table is full of unexpired entries: each insert evicts the entry of the
  // lowest version, which is the least recently stored one.
  for (const std::string expect_gone : {"k4", "k5", "k6", "k8"}) {
    ASSERT_EQ(Set(h, "new-" + expect_gone, "x"), SHMDICT_OK);
    EXPECT_EQ(Get(h, expect_gone), kAbsent) << expect_gone;
    EXPECT_EQ(Count(h), 32u);
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Get(h, "k" + std::to_string(i)), "again");
  EXPECT_EQ(Get(h, "k9"), "v9");
  // An update of a present key never evicts.
  ASSERT_EQ(Set(h, "k9", "updated"), SHMDICT_OK);
  const Stats st = StatsOf(t.path());
  EXPECT_EQ(st.eviction, Eviction::kLrs);
  EXPECT_EQ(st.evictions, 4u);
  EXPECT_EQ(st.expired_erased, 1u);
  EXPECT_EQ(st.count, 32u);
  // A freed slot is used before anything is evicted.
  ASSERT_EQ(shmdict_erase(h.d, "k10", 3), SHMDICT_OK);
  ASSERT_EQ(Set(h, "b", "2"), SHMDICT_OK);
  EXPECT_EQ(Get(h, "k11"), "v11");
  EXPECT_EQ(StatsOf(t.path()).evictions, 4u);
}

// An eviction is a write to the evicted key: its waiters wake.
TEST(EvictionWaitTest, EvictionWakesTheEvictedKeysWaiters) {
  TempTable t;
  Handle h;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_LRS, &h, kTinyCapacity), SHMDICT_OK);
  const std::vector<uint64_t> versions = Fill(h);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Blocks on k0 (the least recently stored) until it changes: the eviction.
    Handle c;
    if (shmdict_open(t.path().c_str(), 0, nullptr, &c.d) != SHMDICT_OK) _exit(3);
    const int rc = shmdict_wait(c.d, "k0", 2, versions[0], 20000);
    _exit(rc == SHMDICT_OK ? 0 : 1);
  }
  usleep(200 * 1000);  // let the child go to sleep on the key
  ASSERT_EQ(Set(h, "evicts-k0", "x"), SHMDICT_OK);
  EXPECT_EQ(Get(h, "k0"), kAbsent);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(EvictionOptionsTest, PolicyIsCheckedAtOpen) {
  TempTable t;
  Handle lrs;
  ASSERT_EQ(Open(t.path(), SHMDICT_EVICT_LRS, &lrs), SHMDICT_OK);
  // Opening it again: NONE (the default) accepts its policy, LRS requires it.
  Handle a, b, c;
  EXPECT_EQ(Open(t.path(), SHMDICT_EVICT_NONE, &a), SHMDICT_OK);
  EXPECT_EQ(Open(t.path(), SHMDICT_EVICT_LRS, &b), SHMDICT_OK);
  EXPECT_EQ(Open(t.path(), 2, &c), SHMDICT_EINVAL);
  TempTable t2;
  Handle none, d;
  ASSERT_EQ(Open(t2.path(), SHMDICT_EVICT_NONE, &none), SHMDICT_OK);
  EXPECT_EQ(Open(t2.path(), SHMDICT_EVICT_LRS, &d), SHMDICT_EINVAL);
  EXPECT_NE(std::string(shmdict_last_error()).find("eviction"), std::string::npos)
      << shmdict_last_error();
}

}  // namespace
}  // namespace shmdict
