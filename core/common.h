// Small helpers shared by the engine's files (internal): statuses, clocks, hashing.
#ifndef SHMDICT_CORE_COMMON_H_
#define SHMDICT_CORE_COMMON_H_

#include <time.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "api/errors.h"

namespace shmdict::internal {

// Debian's Abseil has its own string_view type (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

inline absl::Status Err(ErrorCode code, std::string_view message) {
  return MakeError(code, message);
}

// A kIo status for errno value `err` during `what`.
inline absl::Status ErrnoError(std::string_view what, int err) {
  return MakeOsError(absl::StrCat(AV(what), ": ", strerror(err)), err);
}

inline uint64_t NowUnixNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_COMMON_H_
