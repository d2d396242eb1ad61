// Helpers for the tests of the engine itself (internal::Table, core/table.h): opening a
// table, and reaching a bucket's metadata or a slot in its mapping to inspect or damage
// it behind the engine's back.
//
// Header only, and its target does not depend on the engine: a test links either
// //core:table or //core:table_crash_points (the same headers, built with and without
// the crash points) and names that dependency itself.
#ifndef SHMDICT_TESTS_TABLE_UTIL_H_
#define SHMDICT_TESTS_TABLE_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/errors.h"
#include "api/options.h"
#include "core/crash_point.h"
#include "core/layout.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict::testing {

// The engine's table at `path`, opened (or created) with `options`; null, after
// failing the current test, when it does not open.
inline std::unique_ptr<internal::Table> OpenTable(const std::string& path,
                                                  const OpenOptions& options) {
  absl::StatusOr<std::unique_ptr<internal::Table>> t = internal::Table::Open(path, options);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

// The value of `key` in `t`: "<absent>" when the key is not there, and "<error>", after
// failing the current test, when the read fails otherwise.
inline std::string ValueOf(const internal::Table& t, std::string_view key) {
  std::string v;
  const absl::Status s = t.Get(key, &v, nullptr);
  if (s.ok()) return v;
  if (ErrorCodeOf(s) == ErrorCode::kNotFound) return "<absent>";
  ADD_FAILURE() << "reading " << key << ": " << s;
  return "<error>";
}

// Forks a child that opens the table at `path` with `options`, arms crash point `point`
// to `action` (core/crash_point.h; only a test linked with //core:table_crash_points
// has them), and runs `op(table)`, which returns a status or a status-or. The child
// exits 0 if the operation succeeded, 1 if the table did not open and 2 if the
// operation failed, unless the crash point killed or stopped it first. Returns its pid.
template <typename Op>
pid_t ForkArmed(const std::string& path, const OpenOptions& options, internal::CrashPoint point,
                internal::CrashAction action, Op op) {
  return ForkChild([&]() -> int {
    absl::StatusOr<std::unique_ptr<internal::Table>> t = internal::Table::Open(path, options);
    if (!t.ok()) return 1;
    internal::ArmCrashPoint(point, 0, action);
    return op(**t).ok() ? 0 : 2;
  });
}

// Bucket b's metadata line (lock word, clock, tags, change counter) in t's mapping.
inline internal::BucketMeta& BucketMetaOf(const internal::Table& t, uint64_t b) {
  return *reinterpret_cast<internal::BucketMeta*>(t.MappingForTesting() +
                                                  internal::BucketOffset(t.layout(), b));
}

// The sequence word of slot i of bucket b in t's mapping (its copies follow it).
inline uint64_t* SlotSeqOf(const internal::Table& t, uint64_t b, uint32_t i) {
  return reinterpret_cast<uint64_t*>(t.MappingForTesting() +
                                     internal::SlotOffset(t.layout(), b, i));
}

}  // namespace shmdict::testing

#endif  // SHMDICT_TESTS_TABLE_UTIL_H_
