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
