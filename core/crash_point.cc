#include "core/crash_point.h"

#include <signal.h>

#include <atomic>

namespace shmdict::internal {
namespace {

constexpr std::string_view kNames[] = {
    "lock_taken",     "clock_bumped",     "tag_published",
    "write_begun",    "payload_half",     "payload_written",
    "write_committed", "tag_cleared",     "before_unlock",
    "recovery_lock_taken", "recovery_slot_rolled_back", "recovery_tag_fixed",
    "recovery_done",  "create_before_link", "room_made",
    "bucket_cleared", "bucket_swept",
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<int>(CrashPoint::kCount));

#ifdef SHMDICT_CRASH_POINTS
// Process-local test state. Relaxed throughout: a test arms a point before starting
// the operation in the same thread (or before fork), so program order suffices.
std::atomic<int> armed_point{-1};
std::atomic<int> armed_skip{0};
std::atomic<int> armed_action{0};
#endif

}  // namespace

std::string_view CrashPointName(CrashPoint p) {
  const int i = static_cast<int>(p);
  if (i < 0 || i >= static_cast<int>(CrashPoint::kCount)) return "unknown";
  return kNames[i];
}

#ifdef SHMDICT_CRASH_POINTS
bool ArmCrashPoint(CrashPoint p, int skip, CrashAction action) {
  armed_skip.store(skip, std::memory_order_relaxed);
  armed_action.store(static_cast<int>(action), std::memory_order_relaxed);
  armed_point.store(static_cast<int>(p), std::memory_order_relaxed);
  return true;
}

void DisarmCrashPoints() { armed_point.store(-1, std::memory_order_relaxed); }

void CrashPointReached(CrashPoint p) {
  if (armed_point.load(std::memory_order_relaxed) != static_cast<int>(p)) return;
  if (armed_skip.fetch_sub(1, std::memory_order_relaxed) > 0) return;
  armed_point.store(-1, std::memory_order_relaxed);
  raise(armed_action.load(std::memory_order_relaxed) ==
                static_cast<int>(CrashAction::kKill)
            ? SIGKILL
            : SIGSTOP);
}
#else
bool ArmCrashPoint(CrashPoint, int, CrashAction) { return false; }
void DisarmCrashPoints() {}
#endif

}  // namespace shmdict::internal
