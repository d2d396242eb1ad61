// Test-only crash points: named places in a write and in a recovery where a test can
// make the process kill (SIGKILL) or stop (SIGSTOP) itself, to check what the others
// see and what the next writer repairs.
//
// Compiled in only where SHMDICT_CRASH_POINTS is defined (the testonly target
// //core:table_crash_points); in every other build SHMDICT_CRASH_POINT expands to
// nothing.
#ifndef SHMDICT_CORE_CRASH_POINT_H_
#define SHMDICT_CORE_CRASH_POINT_H_

#include <string_view>

namespace shmdict::internal {

enum class CrashPoint : int {
  kLockTaken = 0,          // bucket lock(s) held, nothing written yet
  kClockBumped,            // the bucket's version clock advanced
  kTagPublished,           // insert: the tag of a still-empty slot published
  kWriteBegun,             // slot sequence made odd
  kPayloadHalfWritten,     // half of the new copy's words stored
  kPayloadWritten,         // the whole new copy stored, sequence still odd
  kWriteCommitted,         // sequence even again: the new copy is current
  kTagCleared,             // erase: the slot's tag cleared
  kBeforeUnlock,           // everything done, lock still held
  kRecoveryLockTaken,      // recovery: the dead owner's lock taken over
  kRecoverySlotRolledBack, // recovery: one odd slot rolled back
  kRecoveryTagFixed,       // recovery: one tag of an empty slot cleared
  kRecoveryDone,           // recovery: bucket repaired, lock still held
  kCreateBeforeLink,       // creation: the file complete, not yet given its name
  kRoomMade,               // full buckets: an expired or evicted entry erased, the new
                           // key not yet written
  kBucketCleared,          // clear: one bucket's entries erased, its lock still held
  kBucketSwept,            // sweep: one bucket's expired entries erased, lock held
  kCount,
};

std::string_view CrashPointName(CrashPoint p);

enum class CrashAction {
  kKill,  // raise(SIGKILL): the process dies on the spot
  kStop,  // raise(SIGSTOP): the process stops until someone sends SIGCONT
};

// Arms `p` in this process: the (skip + 1)-th time it is reached, `action` happens and
// the point is disarmed. Only in builds with SHMDICT_CRASH_POINTS; elsewhere returns
// false and does nothing.
bool ArmCrashPoint(CrashPoint p, int skip, CrashAction action);
void DisarmCrashPoints();

#ifdef SHMDICT_CRASH_POINTS
void CrashPointReached(CrashPoint p);
#define SHMDICT_CRASH_POINT(p) \
  ::shmdict::internal::CrashPointReached(::shmdict::internal::CrashPoint::p)
#else
#define SHMDICT_CRASH_POINT(p) \
  do {                         \
  } while (false)
#endif

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_CRASH_POINT_H_
