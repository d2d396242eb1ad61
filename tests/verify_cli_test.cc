// `shmdict verify` and `--repair`, run as a user would, on tables left in each state:
// clean, with a dead writer's lock and half-written slot, damaged, and not a table.
#include <sys/wait.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "core/crash_point.h"
#include "core/layout.h"
#include "core/slot.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_runner.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

namespace shmdict::internal {
namespace {

using ::shmdict::cli::testing::Cli;
using ::shmdict::cli::testing::CliResult;
using ::shmdict::testing::BucketMetaOf;
using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkArmed;
using ::shmdict::testing::SlotSeqOf;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::ValueOf;
using ::shmdict::testing::WaitChild;

// The tests' tables: 100 keys of up to 16 bytes, values of up to 64.
OpenOptions Options() { return CreateOptions(100, 16, 64); }

// Each test's table file, at a path of its own, removed after the test.
class VerifyCliTest : public ::testing::Test {
 protected:
  // The table, created if it does not exist yet; null after a test failure if it does
  // not open.
  std::unique_ptr<Table> Create() { return ::shmdict::testing::OpenTable(path(), Options()); }
  const std::string& path() const { return file_.path(); }

 private:
  TempTable file_;
};

TEST_F(VerifyCliTest, CleanTablePasses) {
  std::unique_ptr<Table> t = Create();
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(t->Write(WriteMode::kPut, "k" + std::to_string(i), "v", 0).ok());
  }
  CliResult r = Cli({"verify", path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("entries: 50"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
  r = Cli({"verify", "--json", path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"entries\":50"), std::string::npos) << r.out;
}

TEST_F(VerifyCliTest, DeadWritersWorkIsReportedAndRepaired) {
  std::unique_ptr<Table> t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "victim", "old", 0).ok());
  const int status = WaitChild(
      ForkArmed(path(), Options(), CrashPoint::kPayloadHalfWritten, CrashAction::kKill,
                [](Table& w) { return w.Write(WriteMode::kPut, "victim", "new", 0); }));
  ASSERT_TRUE(WIFSIGNALED(status));
  CliResult r = Cli({"verify", path()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("NEEDS REPAIR"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 lock(s), 1 interrupted write(s)"), std::string::npos) << r.out;
  r = Cli({"verify", "--repair", path()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("repaired: 1 bucket(s)"), std::string::npos) << r.out;
  EXPECT_EQ(ValueOf(*t, "victim"), "old");
  EXPECT_EQ(Cli({"verify", path()}).exit_code, 0);
}

TEST_F(VerifyCliTest, DamageIsReportedAndNotTouched) {
  std::unique_ptr<Table> t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "key", "value", 0).ok());
  uint64_t b1, b2;
  t->BucketsOf("key", &b1, &b2);
  // Scribble: flip the tag of every occupied slot of the key's buckets.
  for (uint64_t b : {b1, b2}) {
    for (auto& word : BucketMetaOf(*t, b).tags) {
      uint64_t w = word.load();
      for (int i = 0; i < 8; ++i) {
        const uint64_t byte = (w >> (8 * i)) & 0xFF;
        if (byte != 0) w ^= uint64_t{byte == 0x55 ? 0x0F : 0x55 ^ byte} << (8 * i);
      }
      word.store(w);
    }
  }
  CliResult r = Cli({"verify", "--repair", path()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("DAMAGED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("but the key's is"), std::string::npos) << r.out;
}

// ls and dump list every readable entry, then say how many corrupt slots they skipped
// and exit 1 (they used to skip them silently and exit 0).
TEST_F(VerifyCliTest, ScansReportCorruptSlotsTheySkipped) {
  std::unique_ptr<Table> t = Create();
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Write(WriteMode::kPut, "good", "1", 0).ok());
  ASSERT_TRUE(t->Write(WriteMode::kPut, "bad", "2", 0).ok());
  // The slot of "bad": its current copy claims a value longer than the maximum.
  uint64_t b1, b2;
  t->BucketsOf("bad", &b1, &b2);
  bool done = false;
  for (uint64_t b : {b1, b2}) {
    for (uint32_t i = 0; i < kSlotsPerBucket && !done; ++i) {
      uint64_t* seq = SlotSeqOf(*t, b, i);
      uint64_t* c = CopyAt(seq, *seq, t->layout().copy_stride / 8);
      if ((c[1] & 0xFFFFFFFFu) == 4 && std::memcmp(c + kCopyHeaderWords, "bad", 3) == 0) {
        c[1] = 4 | (uint64_t{1000} << 32);
        done = true;
      }
    }
  }
  ASSERT_TRUE(done);
  for (const std::string cmd : {"ls", "dump"}) {
    const CliResult r = Cli({cmd, path()});
    EXPECT_EQ(r.exit_code, 1) << cmd << r.out << r.err;
    EXPECT_NE(r.err.find("1 corrupt slot skipped"), std::string::npos) << cmd << r.err;
    EXPECT_NE(r.out.find("good"), std::string::npos) << cmd << r.out;
  }
}

TEST_F(VerifyCliTest, BadFilesAndBadUsage) {
  ASSERT_TRUE(::shmdict::testing::WriteFile(
      path(), "not a table at all, just some bytes that are long enough.........."));
  CliResult r = Cli({"verify", path()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("NOT A VALID TABLE"), std::string::npos) << r.out;
  EXPECT_EQ(Cli({"verify", "/dev/shm/shmdict-no-such-table-xyz"}).exit_code, 2);
  EXPECT_EQ(Cli({"verify"}).exit_code, 2);
  EXPECT_EQ(Cli({"frobnicate", "x"}).exit_code, 2);
  r = Cli({"verify", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("usage: shmdict verify"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace shmdict::internal
