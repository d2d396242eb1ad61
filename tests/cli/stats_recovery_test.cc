// `shmdict stats` and `verify` on a table whose writer was killed mid-write: the dead
// writer shows in the process table, verify reports its lock, and the next writer (the
// tool's put) recovers the bucket, which stats then counts. Uses the engine with its
// test-only crash points, so it talks to the table through the internal Table only.
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/crash_point.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_runner.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

namespace shmdict::cli::testing {
namespace {

using internal::Table;
using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkArmed;
using ::shmdict::testing::OpenTable;
using ::shmdict::testing::WaitChild;

// The line of the process table in `stats` output whose pid is `pid`.
std::string ProcessLine(const std::string& stats, pid_t pid) {
  std::istringstream in(stats);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string entry, p;
    fields >> entry >> p;
    if (p == std::to_string(pid)) return line;
  }
  return "";
}

TEST(StatsRecoveryTest, KilledWriterIsShownAndRecoveredByTheNextWriter) {
  TempPath t;
  std::unique_ptr<Table> table = OpenTable(t.path(), CreateOptions(100, 16, 64));
  ASSERT_NE(table, nullptr);
  ASSERT_TRUE(table->Write(internal::WriteMode::kPut, "victim", "old", 0).ok());
  const pid_t child = ForkArmed(
      t.path(), CreateOptions(100, 16, 64), internal::CrashPoint::kPayloadHalfWritten,
      internal::CrashAction::kKill,
      [](Table& w) { return w.Write(internal::WriteMode::kPut, "victim", "new", 0); });
  const int status = WaitChild(child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer was meant to die mid-write";

  CliResult r = Cli({"stats", t.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ProcessLine(r.out, getpid()).find(" live"), std::string::npos) << r.out;
  EXPECT_NE(ProcessLine(r.out, child).find(" dead"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("processes: 1 live, 1 dead"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recoveries: 0"), std::string::npos) << r.out;
  r = Cli({"verify", t.path()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("NEEDS REPAIR"), std::string::npos) << r.out;
  // The reader sees the committed value throughout.
  r = Cli({"get", t.path(), "victim"});
  EXPECT_EQ(r.out, "old");

  // The tool's put needs the dead writer's bucket: it recovers it and writes.
  r = Cli({"put", t.path(), "victim", "newer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"get", t.path(), "victim"});
  EXPECT_EQ(r.out, "newer");
  r = Cli({"stats", "--json", t.path()});
  EXPECT_NE(r.out.find("\"recoveries\":1,"), std::string::npos) << r.out;
  EXPECT_EQ(Cli({"verify", t.path()}).exit_code, 0);
}

}  // namespace
}  // namespace shmdict::cli::testing
