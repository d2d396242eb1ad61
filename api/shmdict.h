// shmdict: a dictionary that many processes on one machine share through a
// memory-mapped file. Lookups take no lock and never wait; writers lock only the
// key's buckets; a process killed at any instruction loses nothing and blocks no one.
//
//   absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(
//       "prices", {.create = true, .capacity = 1 << 20, .max_key_size = 32,
//                  .max_value_size = 64});
//   if (!d.ok()) return d.status();
//   absl::StatusOr<uint64_t> version = d->Put("EURUSD", "1.0842");
//   absl::StatusOr<std::string> price = d->Get("EURUSD");      // from any process
//
// Guarantees
//   - Get, Contains, Version, ForEach, Count and Stats take no lock, store nothing to
//     the file and never wait for a writer, not even for one that is stopped or was
//     killed mid-write. Each returns a snapshot of committed writes, never a torn mix.
//   - Writes to one key are linearizable; writes to keys in different buckets run in
//     parallel. There is no table-wide lock or counter.
//   - A process killed at any instruction (kill -9): every committed write stays; an
//     interrupted write is applied entirely or not at all; the next writer that needs
//     the dead writer's bucket lock repairs the bucket and takes it over, automatically.
//     A stopped (SIGSTOP) writer is alive: writers of its buckets wait for it.
//   - Every versioned write returns the key's new version: versions strictly increase
//     per key, are never 0, and never repeat across erase and re-insert.
//
// Caveats
//   - Fixed size: capacity, key and value maxima are set at creation. The table is
//     sized so `capacity` keys fit at 80% load; inserting beyond that fails with kFull
//     when both of a key's buckets are full (first seen at about 88% of the slots).
//   - Crash safety covers processes dying, not the machine losing power: a table in
//     /dev/shm is gone after a reboot, and one on disk is not flushed by shmdict.
//   - All processes must run on machines of one byte order and one format version
//     (checked at open). Values of FetchAdd are 8-byte little-endian integers.
//   - The file must not be truncated or unmapped behind shmdict's back while open: the
//     kernel then delivers SIGBUS on access, which no library can intercept safely.
//   - Each handle that has written holds one of the table's 1024 process-table entries
//     until it is closed or its process dies: at most 1024 such handles at a time, in
//     all processes together (read-only handles and handles that only read take none).
//   - After fork(), the child may keep using a Dict it inherited: its first write
//     claims its own process-table entry. Threads: a Dict may be used from any number
//     of threads at once.
//
// Errors: every function returns absl::Status / absl::StatusOr; the codes are tabled in
// api/errors.h (ErrorCodeOf gives the exact shmdict code). Nothing returned points into
// the mapping: values are copied out before a call returns.
//
// Corrupt slots: a slot whose key or value length is impossible (over the table's
// maxima) can only come from damage to the file (`shmdict verify` reports it). Get,
// GetInto and GetMany return kBadFile for such a slot holding the looked-up key;
// Contains, Version and WaitForChange see that key as absent; Count, ForEach and
// GetStats skip such slots and say how many they skipped (Count's out-parameter,
// ForEach's result); a write to the key overwrites its slot.
//
// Registration: the first write through a handle (Put, Insert, Replace,
// CompareAndSwap, Erase or FetchAdd; again in a forked child) claims an entry of the
// table's process table for it. That can fail, and the write with it: kFull (all 1024
// entries are held by other handles of live processes), kIo (reopening the file or
// locking the entry failed; the message names the OS error), kBadFile (the file could
// not be reopened as the same file: it was replaced, and /proc is not mounted).
#ifndef SHMDICT_API_SHMDICT_H_
#define SHMDICT_API_SHMDICT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/get_many.h"
#include "api/options.h"

namespace shmdict {

// How Dict::Set writes.
struct SetOptions {
  // The entry expires this long after the write (rounded up to a millisecond); from
  // then on it reads as absent everywhere. InfiniteDuration: never. Zero or negative,
  // or over about 139 years (2^42 ms): kInvalid.
  absl::Duration ttl = absl::InfiniteDuration();
  // Only if absent (an expired entry is absent): kExists otherwise.
  bool if_absent = false;
  // Only if present and unexpired: kNotFound otherwise. Not with if_absent (kInvalid).
  bool if_present = false;
};

class Dict;

namespace internal {
class Table;
// Internal code's way to the engine behind a Dict (api/dict_access.h).
Table* TableOf(const Dict& d);
}  // namespace internal

// A handle on one table. Movable, not copyable. Thread-safe: any number of threads may
// call any method at once.
// REQUIRES (every method): the Dict is not moved from, and is not moved or destroyed
// while a call on it runs (in any thread, or up the stack, as in a ForEach callback).
class Dict {
 public:
  // Opens the table at `path`, a file path; a name without '/' is a file in /dev/shm.
  // Validates the file completely before mapping it: regular file (symbolic links are
  // not followed), owner and mode, magic, format version, byte order, header checksum,
  // layout, and file size against the layout.
  // Errors: kNotFound (no file and !create), kExists (exclusive and the file exists),
  // kInvalid (bad options, or an existing file's layout differs from nonzero options),
  // kBadFile (not a valid shmdict file: every reason is named in the message),
  // kPermission (access denied; world- or group-writable file; foreign owner),
  // kIo (other OS error, such as no space left to create the file).
  static absl::StatusOr<Dict> Open(std::string_view path, const OpenOptions& options);

  // Removes the table file at `path` after checking that it is a shmdict file. Open
  // handles stay valid (the memory lives until the last one closes).
  // Errors: kNotFound, kBadFile (not a shmdict file: left in place), kPermission, kIo.
  static absl::Status Unlink(std::string_view path);

  Dict(Dict&&) noexcept;
  Dict& operator=(Dict&&) noexcept;
  ~Dict();

  // The value of `key` (a copy) and, if `version` is not null, its version.
  // Errors: kNotFound (also for a key longer than the maximum: it cannot be present);
  // kBadFile if the slot holding the key is corrupt (see "Corrupt slots" above).
  [[nodiscard]] absl::StatusOr<std::string> Get(std::string_view key,
                                                uint64_t* version = nullptr) const;
  // Zero-allocation read: copies the value into buf[0, capacity), sets *value_len to
  // its length and *version to its version (either may be null).
  // Errors: kNotFound (as Get); kBuffer when the value is longer than `capacity` (then
  // *value_len and *version are set, and buf is unspecified); kBadFile (as Get);
  // kInvalid for a null buffer with nonzero capacity.
  // REQUIRES: buf points to `capacity` writable bytes (or capacity is 0).
  [[nodiscard]] absl::Status GetInto(std::string_view key, char* buf, size_t capacity,
                                     size_t* value_len, uint64_t* version = nullptr) const;
  // Looks up keys[i] into buffers[i] for every i, as GetInto would, with the outcome
  // in results[i] (status OK, kNotFound, kBuffer with value_len the size needed,
  // kBadFile as Get, or kInvalid for a null buffer with nonzero size; value_len;
  // version). Faster per key than GetInto one key at a time on tables larger than the
  // CPU caches: it overlaps the keys' memory misses (hashes a group of keys and
  // prefetches their buckets and candidate slots before reading them). Each key is
  // read atomically; the batch as a whole is not a snapshot.
  // Returns the number of keys found (OK or kBuffer).
  // Errors: kInvalid when the three spans differ in length.
  // REQUIRES: each buffers[i] is writable.
  [[nodiscard]] absl::StatusOr<size_t> GetMany(absl::Span<const std::string_view> keys,
                                               absl::Span<const absl::Span<char>> buffers,
                                               absl::Span<GetManyResult> results) const;
  // Whether `key` is present. No errors: false for a key longer than the maximum, and
  // for one whose slot is corrupt (where Get says kBadFile).
  [[nodiscard]] bool Contains(std::string_view key) const;
  // The version of `key`; 0 if absent, longer than the maximum, or in a corrupt slot
  // (where Get says kBadFile). No errors.
  [[nodiscard]] uint64_t Version(std::string_view key) const;
  // Blocks until the version of `key` differs from `version` (0 meaning absent: so a
  // waiter with version 0 wakes when the key appears), or until `timeout_ms` passes
  // (negative: no timeout). Returns OK at once if it already differs. Wakes within a
  // millisecond of a write from any process (a futex in the shared file, woken only
  // when someone waits: writers make no system call otherwise). On a read_only handle,
  // which cannot announce its waiting, it polls every millisecond instead. A writer
  // killed between its commit and its wake delays the wake-up to at most a second
  // (the waiter re-checks that often). The key's version is read as Version reads it:
  // a corrupt slot counts as absent.
  // Errors: kTimeout; kTooBig (key over the maximum size).
  [[nodiscard]] absl::Status WaitForChange(std::string_view key, uint64_t version,
                                           int64_t timeout_ms = -1) const;

  // Sets `key` to `value`, inserting it if absent. Returns the new version.
  // Errors: kTooBig (key or value over the maxima); kFull (inserting, both of the
  // key's buckets full); kPermission (read-only handle); from the handle's first
  // write (see "Registration" above): kFull (process table full), kIo, kBadFile.
  [[nodiscard]] absl::StatusOr<uint64_t> Put(std::string_view key, std::string_view value);
  // Inserts only if absent. Errors: as Put, plus kExists.
  [[nodiscard]] absl::StatusOr<uint64_t> Insert(std::string_view key, std::string_view value);
  // Replaces only if present. Errors: as Put, plus kNotFound.
  [[nodiscard]] absl::StatusOr<uint64_t> Replace(std::string_view key,
                                                 std::string_view value);
  // Writes `value` only if the key's current version is `expected_version` (0: the key
  // must be absent, i.e. insert-if-absent). Returns the new version.
  // Errors: as Put, plus kVersion when the current version differs.
  [[nodiscard]] absl::StatusOr<uint64_t> CompareAndSwap(std::string_view key,
                                                        uint64_t expected_version,
                                                        std::string_view value);
  // Sets `key` to `value` as options say (expiry; only if absent, or only if present).
  // Returns the new version. A write of an absent key whose two candidate buckets are
  // full reuses an expired entry's slot, else evicts the least recently stored entry of
  // the two buckets (a table created with Eviction::kLrs) or fails with kFull.
  // Errors: as Put, plus kExists (if_absent), kNotFound (if_present), kInvalid (ttl, or
  // both flags).
  [[nodiscard]] absl::StatusOr<uint64_t> Set(std::string_view key, std::string_view value,
                                             const SetOptions& options = {});
  // Gives a present, unexpired entry a new expiry (`ttl` from now; InfiniteDuration:
  // never) and a new version, keeping its value. Returns the new version.
  // Errors: kNotFound (absent or expired); kInvalid (ttl as in SetOptions); kPermission
  // and the first write's errors as Put.
  [[nodiscard]] absl::StatusOr<uint64_t> Touch(std::string_view key,
                                               absl::Duration ttl = absl::InfiniteDuration());
  // The time `key` has left: InfiniteDuration if it never expires, else at least a
  // millisecond. Errors: kNotFound (absent, expired, or longer than the maximum);
  // kBadFile (as Get).
  [[nodiscard]] absl::StatusOr<absl::Duration> Ttl(std::string_view key) const;
  // Erases every entry, one bucket at a time (O(buckets); not atomic as a whole: a
  // write made during the clear to a bucket already cleared stays). Versions keep
  // increasing: a key written again gets a version above any it had. Wakes every
  // waiter. Errors: kPermission and the first write's errors as Put.
  [[nodiscard]] absl::Status Clear();
  // Erases every expired entry, so that Count and GetStats are exact (writers reuse
  // expired entries' slots without it). Returns how many it erased.
  // Errors: as Clear.
  [[nodiscard]] absl::StatusOr<uint64_t> Sweep();
  // Removes `key` (an expired entry is absent: kNotFound, and its slot is freed).
  // Errors: kNotFound; kTooBig (key over the maximum); kPermission (read-only handle);
  // from the handle's first write (see "Registration" above): kFull (process table
  // full), kIo, kBadFile.
  [[nodiscard]] absl::Status Erase(std::string_view key);
  // Adds `delta` to the key's value, an 8-byte little-endian signed integer, wrapping
  // around on overflow; the entry keeps its expiry. An absent or expired key starts at
  // 0 with no expiry, or, with if_present, fails with kNotFound (nothing written).
  // Returns the new value; *version (if not null) gets the new version.
  // Errors: kNotFound (if_present); kType (the value is not 8 bytes long); kTooBig (the table's values are
  // shorter than 8 bytes, or the key is too long); kFull (inserting, both buckets
  // full); kPermission (read-only handle); from the handle's first write (see
  // "Registration" above): kFull (process table full), kIo, kBadFile.
  [[nodiscard]] absl::StatusOr<int64_t> FetchAdd(std::string_view key, int64_t delta,
                                                 uint64_t* version = nullptr,
                                                 bool if_present = false);

  // The number of entries, counted by scanning the table (O(capacity)); weakly
  // consistent while writers run. Corrupt slots are not counted; *corrupt (if not
  // null) gets how many were skipped (0 on a sound table; see "Corrupt slots").
  [[nodiscard]] uint64_t Count(uint64_t* corrupt = nullptr) const;
  // Calls fn(key, value, version) for each entry, each a snapshot (the views are valid
  // during the call only); stops early when fn returns false. Weakly consistent: an
  // entry present for the whole iteration is visited exactly once; one inserted or
  // erased meanwhile may or may not be, and one erased and re-inserted meanwhile may
  // be visited twice. Takes no lock: fn may call any method of this Dict, writes
  // included. Returns the number of corrupt slots skipped (0 on a sound table; see
  // "Corrupt slots"): callers that must not miss entries silently (dump, iteration)
  // report a nonzero count.
  uint64_t ForEach(absl::FunctionRef<bool(std::string_view key, std::string_view value,
                                          uint64_t version)>
                       fn) const;
  // The table's shape and counters (see Stats); `count` as Count gives it. No errors.
  [[nodiscard]] Stats GetStats() const;

  // The file path the table was opened at.
  [[nodiscard]] const std::string& path() const;

  // For tools and tests in this repository only.
  friend internal::Table* internal::TableOf(const Dict& d);

 private:
  explicit Dict(std::unique_ptr<internal::Table> table);
  std::unique_ptr<internal::Table> table_;
};

}  // namespace shmdict

#endif  // SHMDICT_API_SHMDICT_H_
