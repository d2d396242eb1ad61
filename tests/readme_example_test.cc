// The README's C++ example, verbatim inside a function, so the README cannot drift
// from the API.
#include <unistd.h>

#include <string>

#include "api/shmdict.h"
#include "gtest/gtest.h"

namespace {

absl::Status ReadmeExample(std::string* price_out, int64_t* hits_out) {
  // --- from README.md ---
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(
      "prices", {.create = true, .capacity = 1 << 20, .max_key_size = 32,
                 .max_value_size = 64});            // /dev/shm/prices, mode 0600
  if (!d.ok()) return d.status();
  absl::StatusOr<uint64_t> version = d->Put("EURUSD", "1.0842");
  absl::StatusOr<std::string> price = d->Get("EURUSD");   // from any process
  absl::StatusOr<int64_t> hits = d->FetchAdd("hits", 1);  // atomic across processes
  // --- end ---
  if (!version.ok()) return version.status();
  if (!price.ok()) return price.status();
  if (!hits.ok()) return hits.status();
  *price_out = *price;
  *hits_out = *hits;
  return absl::OkStatus();
}

// The README's cache example, verbatim inside a function.
absl::Status ReadmeCacheExample(absl::Duration* left_out, bool* locked_out) {
  // --- from README.md ---
  absl::StatusOr<shmdict::Dict> cache = shmdict::Dict::Open(
      "sessions", {.create = true, .capacity = 100'000, .max_key_size = 64,
                   .max_value_size = 1024, .eviction = shmdict::Eviction::kLrs});
  if (!cache.ok()) return cache.status();
  absl::StatusOr<uint64_t> set =
      cache->Set("session:42", "{\"user\": 7}", {.ttl = absl::Minutes(30)});
  absl::StatusOr<uint64_t> lock =   // kExists while another process holds it
      cache->Set("lock:job7", "worker-3", {.ttl = absl::Seconds(10), .if_absent = true});
  absl::StatusOr<absl::Duration> left = cache->Ttl("session:42");  // about 30 minutes
  // --- end ---
  if (!set.ok()) return set.status();
  if (!left.ok()) return left.status();
  *left_out = *left;
  *locked_out = lock.ok();
  // A second try while the first holds the lock.
  absl::StatusOr<uint64_t> again =
      cache->Set("lock:job7", "worker-4", {.ttl = absl::Seconds(10), .if_absent = true});
  if (again.ok() || shmdict::ErrorCodeOf(again.status()) != shmdict::ErrorCode::kExists) {
    return absl::InternalError("the second lock attempt did not get kExists");
  }
  return absl::OkStatus();
}

TEST(ReadmeTest, CacheExampleWorks) {
  if (access("/dev/shm/sessions", F_OK) == 0) {
    GTEST_SKIP() << "/dev/shm/sessions exists; not touching somebody's table";
  }
  absl::Duration left;
  bool locked = false;
  absl::Status s = ReadmeCacheExample(&left, &locked);
  unlink("/dev/shm/sessions");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(locked);
  EXPECT_GT(left, absl::Minutes(29));
  EXPECT_LE(left, absl::Minutes(30));
}

TEST(ReadmeTest, CppExampleWorks) {
  if (access("/dev/shm/prices", F_OK) == 0) {
    GTEST_SKIP() << "/dev/shm/prices exists; not touching somebody's table";
  }
  std::string price;
  int64_t hits = 0;
  absl::Status s = ReadmeExample(&price, &hits);
  unlink("/dev/shm/prices");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(price, "1.0842");
  EXPECT_EQ(hits, 1);
}

}  // namespace
