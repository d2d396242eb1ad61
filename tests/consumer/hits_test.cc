#include "hits.h"

#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace consumer {
namespace {

class HitsTest : public testing::Test {
 protected:
  void TearDown() override { (void)shmdict::Dict::Unlink(name); }

  const std::string name = "shmdict-consumer-test-" + std::to_string(getpid()) + "-" +
                           std::to_string(std::random_device{}());
};

TEST_F(HitsTest, CountsAcrossProcesses) {
  absl::StatusOr<shmdict::Dict> dict = shmdict::Dict::Open(
      name, {.create = true, .capacity = 64, .max_key_size = 32, .max_value_size = 8});
  ASSERT_TRUE(dict.ok()) << dict.status();

  EXPECT_EQ(*Hits(*dict, "/"), 0);
  EXPECT_EQ(*RecordHit(*dict, "/"), 1);

  constexpr int kChildren = 4, kHitsEach = 1000;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child opens the table by name, as another program would.
      absl::StatusOr<shmdict::Dict> mine = shmdict::Dict::Open(name, {});
      if (!mine.ok()) _exit(2);
      for (int j = 0; j < kHitsEach; ++j) {
        if (!RecordHit(*mine, "/").ok()) _exit(3);
      }
      _exit(0);
    }
  }
  for (int i = 0; i < kChildren; ++i) {
    int status = 0;
    ASSERT_GT(wait(&status), 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_EQ(*Hits(*dict, "/"), 1 + kChildren * kHitsEach);

  ASSERT_TRUE(dict->Put("text", "short").ok());  // 5 bytes: not a counter
  EXPECT_FALSE(Hits(*dict, "text").ok());
  EXPECT_FALSE(RecordHit(*dict, "text").ok());
}

}  // namespace
}  // namespace consumer
