// The shmdict table: a fixed-size open-addressing hash table in a memory-mapped file,
// shared by many processes. Readers take no lock, store nothing to the mapping and
// never wait; writers lock one or two buckets; any process may die at any instruction.
//
// ---------------------------------------------------------------------------------
// The file (all offsets fixed at creation; no pointers anywhere)
//
//   struct File {
//     FileHeader header;                // 4 KiB: magic, version, layout, seed,
//                                       //   checksum of the immutable part, stats
//     ProcEntry  procs[1024];           // 64 B each: one per process that writes
//     struct Bucket {                   // bucket_count of them, bucket_stride apart
//       BucketMeta meta;                // 64 B: lock, version clock, 16 tag bytes
//       struct Slot {                   // 16 of them, slot_stride apart
//         atomic<uint64_t> seq;         // even: stable; odd: a write in progress
//         Copy copy[2];                 // {version, klen+1 | vlen<<32, expiry,
//                                       //  key, value}
//       } slots[16];
//     } buckets[bucket_count];
//   };
//
// core/layout.h has the structs; docs/file_format.md the bytes.
//
// ---------------------------------------------------------------------------------
// Where a key lives
//
// h = XXH3-64(key, seed). The key's left bucket b1 is in [0, n/2), its right bucket b2
// in [n/2, n), both from h; its tag is h's low byte (0 mapped to 1). A key lives in
// one slot of b1 or b2 and never moves. Insert puts it in the bucket with more free
// slots, the left one on a tie (Voecking's "always go left", which packs fuller
// than a random tie-break: the first "full" comes at ~88% load instead of ~85%).
// A lookup therefore inspects at most 2 buckets: 2 metadata lines and the slots whose
// tag matches (1/256 false positives per occupied slot), whatever the history.
//
// Home slots: bits 8-11 of h name the key's home slot, the same index in b1 and b2.
// An insert uses the chosen bucket's home slot if it is free, else the next free slot
// after it (cyclically), so most keys sit at home (about 63% after filling to 80%
// load, 80% at 40%). Lookups and writers fetch both home slots together with both
// tag lines and read the home slots first: a home slot that carries the key's tag and
// whose validated snapshot holds the key is a hit, found without a tag scan: the tag
// line and the slot arrive together, one memory latency instead of two in a row.
// Only the tag scan, which follows when the home slots do not hold the key, can
// conclude that a key is absent. The slots after the homes (another 16% of the keys)
// are fetched with them, so the scan finds those in the cache.
//
// ---------------------------------------------------------------------------------
// The slot: a double-buffered seqlock
//
// The copy readers use is copy[(seq >> 1) & 1]. A write, under the bucket lock:
//     s = seq (even)
//     seq = s + 1            release; then a release fence
//     write copy[((s >> 1) & 1) ^ 1]  (the one readers are NOT using)
//     seq = s + 2            release: the new copy is current (the commit point)
// A read, with no lock:
//     s1 = seq               acquire
//     copy copy[(s1 >> 1) & 1] into private memory (relaxed atomic word loads)
//     acquire fence; s2 = seq
//     valid iff s2 <= (s1 | 1) + 1 (computed as s2 - s1 <= 2 - (s1 & 1): no wrap)
// While one write is in progress (s1 odd) the reader reads the stable copy; the
// snapshot is invalid only if a second write began on the copy just read, and then
// the reader retries. So a reader never waits for a writer, not even for a dead one.
//
// A copy is either empty (no key) or one committed (key, value, version, expiry).
//
// ---------------------------------------------------------------------------------
// Expiry and eviction (a cache)
//
// A copy's expiry (ms since the Unix epoch, 0: never) is published with its value and
// version by the same seqlock write. Every reader treats an entry whose expiry is <=
// the coarse clock (core/clock.h) as absent, and reads the clock only for entries
// that have one; readers still store nothing. A writer treats an expired entry of its
// key as absent in every mode (and writes over it in its slot); a writer that needs
// room (both candidate buckets full) erases the first expired entry of the two
// buckets and takes its slot, and only if there is none either fails with kFull
// (kEvictNone) or evicts the entry of the lowest version of the two buckets
// (kEvictLrs: least recently stored) and wakes its waiters. Making room is an erase
// (an empty copy, then the tag) followed by the usual insert, so a crash between the
// two leaves a free slot and the new key absent (tests/cache_crash_test.cc).
//
// A write that depends on the entry being present (replace, touch, a version check,
// fetch-add's sum) checks the clock again just before its commit store and, if the
// entry has expired meanwhile, undoes the write (the repair's step: the odd sequence
// becomes s + 3, the old copy stays current) and starts again: readers decide expiry
// by the clock alone and may have seen the entry expired while it was being written.
// What remains is the few instructions between that check and the commit store.
//
// Versions order writes exactly within a bucket (its clock) and, since every write
// takes max(its bucket's clock, the other candidate bucket's clock) + 1, across the
// two candidate buckets of the key written: the least recently stored entry of two
// buckets written only by keys of that pair is exactly the lowest version; otherwise
// it is an approximation of it (versions are Lamport clocks over buckets).
//
// ---------------------------------------------------------------------------------
// Tags and the order of a write (what every prefix leaves behind)
//
// Tags are hints that lead readers to slots; the slot's current copy is the truth.
// Invariant: a slot whose current copy holds a key has that key's tag; a slot whose
// tag is 0 has an empty current copy. Hence:
//   insert: publish the tag (slot still empty) -> seqlock write of the key and value.
//           Commit point: the sequence store. Readers that see the tag first find an
//           empty copy, i.e. "absent", which is true until the commit.
//   update: seqlock write. Commit point: the sequence store.
//   erase:  seqlock write of an empty copy (commit point) -> clear the tag.
// A reader that matched a tag and then reads a slot that was freed and reused meanwhile
// sees a committed state of that slot (another key, empty, or this key's committed
// value), never uncommitted bytes. Versions come from the bucket's clock, advanced
// under the lock before the slot is written.
//
// ---------------------------------------------------------------------------------
// Writer locks and crashes
//
// A bucket's lock word holds (process-table index + 1) << 32 | incarnation of its
// holder, taken with a CAS. A process that writes claims a process-table entry by
// taking an OFD write lock on one byte of the file; the kernel drops it when the
// process dies. A writer that finds a lock held checks, now and then, whether the
// holder is alive (the entry's incarnation still matches, and F_OFD_GETLK finds the
// byte locked). Only a provably dead holder's lock is taken over, by CAS; a stopped
// (SIGSTOP) holder is alive and is waited for. There is no timeout.
//
// What a dead writer can leave in a bucket, and how the taker repairs it (idempotent:
// each repair step is one store, and a repairer that dies is repaired in turn):
//   - a slot with odd sequence s: store s + 3. That even value selects the copy that
//     was current before the write; the half-written copy becomes the spare.
//   - a tag on a slot whose current copy is empty (an insert that did not commit, or
//     an erase that committed but did not clear its tag): clear the tag.
//   - an advanced clock: harmless (versions need only increase).
// (Expiry needs no repair: an entry expires by the clock alone, and a dead writer's
// half-made room is a free slot, or an erased entry whose tag the repair clears.)
// Readers are never affected: they read the stable copy of an odd slot and treat
// tagged empty slots as absent.
//
// ---------------------------------------------------------------------------------
// Thread safety: every method of Table may be called concurrently from any number of
// threads and processes. Nothing returned points into the mapping.
#ifndef SHMDICT_CORE_TABLE_H_
#define SHMDICT_CORE_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/get_many.h"
#include "api/options.h"
#include "core/layout.h"
#include "core/slot.h"

namespace shmdict::internal {

// What Table::Verify found. "Damage" is a state the protocol never produces; a
// "pending" finding is what a dead writer left, which the next writer (or Repair)
// fixes automatically.
struct VerifyReport {
  uint64_t buckets_checked = 0;
  uint64_t buckets_busy = 0;  // held by a live writer during the scan: not checked
  uint64_t entries = 0;       // unexpired entries (as Count counts them)
  uint64_t expired = 0;       // expired entries still in their slots (checked alike)
  uint64_t dead_locks = 0;    // pending: locks held by dead processes
  uint64_t odd_slots = 0;     // pending: interrupted writes under dead locks
  uint64_t orphan_tags = 0;   // pending: tags of empty slots under dead locks
  uint64_t damage = 0;        // findings the protocol never produces
  uint32_t processes_live = 0;  // process-table entries held by live processes
  uint32_t processes_dead = 0;  // entries once claimed whose process is gone (free)
  std::vector<std::string> messages;  // one line per damage finding (at most 100)

  bool clean() const { return damage == 0 && dead_locks == 0; }
};

// One claimed entry of the process table (Table::Processes).
struct ProcessInfo {
  uint32_t index = 0;        // entry index in the process table
  uint32_t pid = 0;          // the last claimant's pid (as seen in its pid namespace)
  uint32_t incarnation = 0;  // claims of this entry so far
  uint64_t claimed_unix_ns = 0;
  bool live = false;         // the claimant still holds the table open for writing
  bool self = false;         // the claimant is this handle
};

// An expired entry counts as absent in every mode.
enum class WriteMode {
  kPut,      // insert or update
  kInsert,   // only if absent or expired (kExists otherwise)
  kReplace,  // only if present and unexpired (kNotFound otherwise)
  kCompareAndSwap,  // only if the current version (0: absent) equals `expected`
};

// Moves *fd to a number above 2 (closing the original) if it is 0, 1 or 2. Returns 0
// or an errno value (then *fd is -1).
int MoveAboveStdio(int* fd);

// Seqlock read retries (a slot's copy changed under a reader) by this thread so far,
// over all tables: for benchmarks and tests.
uint64_t ReadRetriesOfThisThread();

// Sleeps taken by writers of this process waiting for a bucket lock, over all tables:
// for tests.
uint64_t LockSleepsForTesting();

// What a scan of the whole table (Count, ForEach) found.
struct ScanResult {
  uint64_t entries = 0;  // entries seen (passed to the callback)
  uint64_t expired = 0;  // expired entries skipped (still in their slots)
  uint64_t corrupt = 0;  // slots skipped: their snapshot holds impossible lengths
  bool stopped = false;  // the callback returned false
};

// One entry of a scan (Table::ForEachEntry): a snapshot, valid during the callback.
struct ScanEntry {
  std::string_view key;
  std::string_view value;
  uint64_t version = 0;
  uint64_t expires = 0;  // ms since the Unix epoch; 0: never
};

class Table {
 public:
  // Opens (and with params.create, creates) the table at `path`; a name without '/'
  // is a file in /dev/shm. Errors: see api/shmdict.h (Dict::Open).
  static absl::StatusOr<std::unique_ptr<Table>> Open(std::string_view path,
                                                     const OpenOptions& options);
  // Removes the file at `path` after checking that it is a shmdict file.
  static absl::Status Unlink(std::string_view path);
  // The file path a name resolves to ("name" -> "/dev/shm/name").
  static absl::StatusOr<std::string> ResolvePath(std::string_view path);

  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // Reads. kNotFound when absent; kTooBig never (an oversized key is simply absent).
  absl::Status Get(std::string_view key, std::string* value, uint64_t* version) const;
  // Copies into buf[0, cap). kBuffer (with *value_len set to the size needed) when the
  // value does not fit.
  absl::Status GetInto(std::string_view key, char* buf, size_t cap, size_t* value_len,
                       uint64_t* version) const;
  // The key's version, 0 if absent.
  uint64_t Version(std::string_view key) const;
  // GetInto for n keys: keys[i] into bufs[i], outcome in results[i]. Overlaps the
  // keys' memory misses in blocks of 16 keys: fetches the block's tag lines, then the
  // sequence lines of their tag-matching slots, then the copies those select, then
  // reads the keys. Returns how many were found (OK or kBuffer).
  size_t GetMany(const std::string_view* keys, size_t n, const absl::Span<char>* bufs,
                 GetManyResult* results) const;
  // Returns OK as soon as the key's version differs from `version` (0: absent), or
  // kTimeout after `timeout_ms` (negative: no timeout). Sleeps on the key's left
  // bucket's futex word; writable handles are woken by writers, read-only handles
  // (which cannot announce themselves) poll every millisecond.
  // Errors: kTimeout; kTooBig for a key over the maximum (it can never change).
  absl::Status WaitForChange(std::string_view key, uint64_t version,
                             int64_t timeout_ms) const;

  // Writes. Return the key's new version. ttl_ms: the entry expires ttl_ms
  // milliseconds from now (0: never; over kMaxTtlMs: kInvalid). A write of an absent
  // key whose candidate buckets are full reuses an expired entry's slot, else evicts
  // (kEvictLrs) or fails with kFull (kEvictNone).
  absl::StatusOr<uint64_t> Write(WriteMode mode, std::string_view key,
                                 std::string_view value, uint64_t expected_version,
                                 uint64_t ttl_ms = 0);
  // kNotFound if absent (an expired entry is absent).
  absl::Status Erase(std::string_view key);
  // Adds `delta` to the 8-byte little-endian integer value of `key`, with
  // two's-complement wrap-around; a present counter keeps its expiry. Absent or
  // expired: starts from 0 with no expiry, or with if_present fails with kNotFound
  // (writing nothing). Returns the new value; *version gets the new version.
  absl::StatusOr<int64_t> FetchAdd(std::string_view key, int64_t delta,
                                   uint64_t* version, bool if_present = false);
  // Gives a present, unexpired entry a new expiry (ttl_ms from now; 0: never) and a new
  // version, keeping its value. kNotFound if absent or expired.
  absl::StatusOr<uint64_t> Touch(std::string_view key, uint64_t ttl_ms);
  // Milliseconds the entry has left (at least 1), or -1 if it never expires.
  // kNotFound if absent or expired.
  absl::StatusOr<int64_t> Ttl(std::string_view key) const;
  // Erases every entry, one bucket at a time under its lock (O(buckets)); versions go
  // on increasing. Not atomic as a whole: a write made meanwhile to a bucket already
  // cleared stays. Wakes every waiter once done.
  absl::Status Clear();
  // Erases every expired entry (their slots are reused by writers anyway; a sweep makes
  // counts and statistics exact). Returns how many it erased.
  absl::StatusOr<uint64_t> Sweep();

  // Entries, counted by scanning (O(buckets)); weakly consistent. Also counts the
  // slots skipped because their lengths are impossible (only damage makes those).
  ScanResult Count() const;
  // Calls fn(key, value, version) for each entry, each a snapshot; stops when fn
  // returns false. Weakly consistent: an entry present for the whole scan is seen
  // exactly once; one inserted or erased meanwhile may or may not be seen, and one
  // erased and re-inserted meanwhile may be seen twice (in both of its buckets).
  // Slots whose lengths are impossible are skipped and counted.
  ScanResult ForEach(absl::FunctionRef<bool(std::string_view key, std::string_view value,
                                            uint64_t version)>
                         fn) const;
  // ForEach with each entry's expiry (dump).
  ScanResult ForEachEntry(absl::FunctionRef<bool(const ScanEntry&)> fn) const;
  // Shape and counters (count by a scan, weakly consistent; live processes by asking
  // the kernel about each claimed process-table entry).
  Stats GetStats() const;
  // This handle's process-table entry; -1 until its first write, and for read-only
  // handles.
  int32_t process_index() const { return proc_index_; }
  // Every process-table entry ever claimed, live or not (an entry whose process died
  // is free for the next claimant).
  std::vector<ProcessInfo> Processes() const;
  // fill[k]: the number of buckets with k occupied slots (weakly consistent).
  std::array<uint64_t, kSlotsPerBucket + 1> BucketFill() const;

  // Scans the whole table without locking anything and reports what it finds (see
  // VerifyReport). Safe on a live table: each bucket is checked from a view in which
  // its lock word, tags and sequences did not change during the check (retried a few
  // times); a bucket that live writers hold or change throughout is counted as busy,
  // never reported as damaged.
  VerifyReport Verify() const;
  // Takes over every bucket lock held by a dead process and repairs the bucket,
  // exactly as the next writer would; then locks and repairs the same way every
  // bucket whose lock is free but which holds an odd sequence or a tag on an empty
  // slot (damage). Returns the number of buckets repaired.
  // Errors: kPermission (read-only handle), kFull (process table full), kIo and
  // kBadFile (registration; the table's descriptor lost).
  absl::StatusOr<uint64_t> RepairDeadLocks();

  const Layout& layout() const { return layout_; }
  uint32_t eviction() const { return eviction_; }
  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // Test and tool hooks (internal).
  char* MappingForTesting() const { return base_; }
  // The two candidate buckets of a key.
  void BucketsOf(std::string_view key, uint64_t* b1, uint64_t* b2) const;
  // The key's home slot index (the same in both buckets).
  uint32_t HomeSlotOf(std::string_view key) const;

 private:
  // Where a key lives (ProbeFor).
  struct Probe {
    uint64_t b1;   // left bucket, in [0, n/2)
    uint64_t b2;   // right bucket, in [n/2, n)
    uint8_t tag;   // never 0
    uint8_t home;  // the key's home slot index, the same in both buckets
  };
  struct BufferSink;
  class BucketLock;
  struct Location;
  template <typename Sink>
  int Lookup(std::string_view key, Sink& sink) const;
  template <typename Sink>
  // Reads the key's home slots first, then scans the tag-matching slots (see "Home
  // slots" above). prefetch: fetch the home slots and tag lines first (off for callers
  // that did, GetMany).
  int LookupProbed(std::string_view key, const Probe& p, Sink& sink, bool prefetch) const;
  template <typename Sink>
  int TakeIfHolds(const uint64_t* copy, std::string_view key, Sink& sink) const;
  int LookupPrefetched(std::string_view key, const Probe& p, BufferSink& sink) const;
  // Lookup's result for `key` and, when 1, the entry's expiry (Ttl).
  int LookupExpiry(std::string_view key, uint64_t* expires) const;
  template <typename Sink>
  int ReadHome(std::string_view key, uint64_t b, const Probe& p, uint64_t* seq,
               Sink& sink) const;
  // The slot's lines: its sequence and both copies.
  void PrefetchSlot(const uint64_t* seq) const { PrefetchLines(seq, layout_.slot_stride); }
  // The same lines, for writing: for a slot that a writer will most likely write (its
  // sequence and the spare copy). docs/design.md gives the measurement.
  void PrefetchSlotForWrite(const uint64_t* seq) const {
    PrefetchLines</*kWrite=*/true>(seq, layout_.slot_stride);
  }
  // One copy's lines: header, key and value.
  void PrefetchCopy(const uint64_t* copy) const { PrefetchLines(copy, layout_.copy_stride); }

  Table() = default;

  Probe ProbeFor(std::string_view key) const;
  // Addresses in the mapping (core/layout.h). Inline: every lookup makes several,
  // and libshmdict.so must inline them as the static library does.
  BucketMeta& meta(uint64_t b) const {
    return *reinterpret_cast<BucketMeta*>(base_ + BucketOffset(layout_, b));
  }
  uint64_t* slot_seq(uint64_t b, uint32_t i) const {
    return reinterpret_cast<uint64_t*>(base_ + SlotOffset(layout_, b, i));
  }
  uint64_t copy_stride_words() const { return layout_.copy_stride / 8; }
  // The current copy of slot i of bucket b, whose lock we hold.
  const uint64_t* current_copy_locked(uint64_t b, uint32_t i) const {
    const uint64_t* seq = slot_seq(b, i);
    return CopyAt(seq, SlotSeqLocked(seq), copy_stride_words());
  }

  absl::Status CheckWritable(std::string_view key, std::string_view value);
  absl::Status CheckWritableSlow(std::string_view key, std::string_view value);
  absl::Status EnsureRegistered();
  void ForgetRegistrationAfterFork();
  friend void ForgetRegistrationInChild(Table* t);
  // Leaves the fork registry and gives up the process-table entry (~Table).
  void ReleaseRegistration();
  // Process-table entries held by live processes (Stats).
  uint32_t LiveProcessCount() const;
  Location LocateAndLock(const Probe& p, std::string_view key, BucketLock& locks);
  void LookupWhere(std::string_view key, const Probe& p, uint64_t* bucket, int* slot) const;
  enum class SlotState { kEmpty, kEntry, kExpired, kCorrupt };
  // Reads slot (b, i) as one validated snapshot into the non-null outputs; an entry
  // whose expiry is <= now is kExpired.
  SlotState SnapshotSlot(uint64_t b, uint32_t i, uint64_t now, std::string* key,
                         std::string* value, uint64_t* version, uint64_t* expires) const;
  // Count and ForEach: contents=false leaves the callback's entry empty.
  ScanResult Scan(bool contents, absl::FunctionRef<bool(const ScanEntry&)> fn) const;
  // What Verify found in one bucket (CheckBucket).
  struct BucketCheck {
    bool pending = false;  // its lock is held by a dead process
    uint64_t entries = 0;
    uint64_t expired = 0;
    uint64_t odd_slots = 0;
    uint64_t orphan_tags = 0;
    std::vector<std::string> damage;
  };
  // Checks bucket b into *out; false if a live writer held or changed it meanwhile
  // (then *out means nothing).
  bool CheckBucket(uint64_t b, BucketCheck* out) const;
  // Whether bucket b seems to hold an odd sequence or a tag on an empty slot (read
  // without the lock: a hint, acted on under it).
  bool NeedsRepairHint(uint64_t b) const;
  // Takes bucket b's lock (waiting for a live holder, taking over a dead one's and
  // repairing the bucket). False only when the table's descriptor was lost and a
  // holder's liveness cannot be judged (the caller returns kBadFile).
  bool LockBucket(uint64_t b);
  bool LockBucketSlow(uint64_t b);
  void UnlockBucket(uint64_t b);
  // Whether the holder of `lock_word` is dead. False when it cannot tell, and then,
  // if the reason is that fd_ no longer is the table's file, NoteDescriptorLost.
  bool HolderIsDead(uint64_t lock_word) const;
  // Whether descriptor fd refers to the table's file (device and inode as opened).
  bool DescriptorIsTable(int fd) const;
  void NoteDescriptorLost() const;
  void RecoverBucket(uint64_t b);
  // Whether slot i of bucket b (locked by us) carries `tag` and holds `key`.
  bool HoldsKeyLocked(uint64_t b, uint32_t i, std::string_view key, uint8_t tag) const;
  // The slot of `key` in bucket b (locked by us), or -1.
  int FindLocked(uint64_t b, std::string_view key, uint8_t tag) const;
  // The seqlock write of an entry. With must_outlive (an expiry; 0: none), the write
  // is undone instead of committed if the coarse clock has reached it by then; returns
  // whether it committed.
  bool WriteCopy(uint64_t b, uint32_t i, std::string_view key, std::string_view value,
                 uint64_t version, uint64_t expires, uint64_t must_outlive = 0);
  void WriteEmptyCopy(uint64_t b, uint32_t i);
  void SetTag(uint64_t b, uint32_t i, uint8_t tag);
  void NotifyChange(uint64_t left_bucket);
  // What WriteLocked did: kOk and the new version, or the failure's code and its
  // detail (kVersion: the current version; kBadFile: the bucket with the exhausted
  // clock), made into a status by WriteError once the locks are released.
  static constexpr uint64_t kNoBucket = UINT64_MAX;
  struct WriteOutcome {
    ErrorCode code = ErrorCode::kOk;
    uint64_t value = 0;
    // The left bucket of a key this write evicted, whose waiters must be woken.
    uint64_t evicted_left = kNoBucket;
    // Nothing was written: the entry the write depended on expired meanwhile; the
    // caller unlocks and starts again (the entry is then absent).
    bool retry = false;
  };
  WriteOutcome WriteLocked(const Probe& p, Location& where, WriteMode mode,
                           std::string_view key, std::string_view value,
                           uint64_t expected_version, uint64_t expires);
  // With both candidate buckets of p locked and full: frees one slot for a new key,
  // the first expired entry's (left bucket first), else with kEvictLrs the entry of
  // the lowest version (*evicted_left: its key's left bucket). False with kEvictNone
  // and no expired entry (kFull).
  bool MakeRoomLocked(const Probe& p, uint64_t* bucket, uint32_t* slot,
                      uint64_t* evicted_left);
  // Erases slot i of bucket b (locked by us): an empty copy, then the tag.
  void EraseSlotLocked(uint64_t b, uint32_t i);
  // The expiry of an entry written now with ttl_ms: 0 (never) for ttl_ms 0; kInvalid
  // over kMaxTtlMs.
  static absl::StatusOr<uint64_t> ExpiryAfter(uint64_t ttl_ms);
  // This handle's process-table entry (registered writers only).
  ProcEntry& own_entry() const {
    return reinterpret_cast<ProcEntry*>(base_ + layout_.proc_table_offset)[proc_index_];
  }
  absl::Status WriteError(const WriteOutcome& o, uint64_t expected_version) const;
  absl::Status DescriptorLostError() const;

  std::string path_;
  Layout layout_;
  uint64_t seed_ = 0;
  uint32_t eviction_ = kEvictNone;  // kEvictNone or kEvictLrs (the header's)
  bool read_only_ = false;
  int fd_ = -1;  // never 0-2 (MoveAboveStdio); owned by this handle
  char* base_ = nullptr;
  size_t map_size_ = 0;
  uint64_t file_dev_ = 0;
  uint64_t file_ino_ = 0;
  // Process-table registration of this handle (writers only). Established lazily by
  // the first write, and again in a child after fork (the child must not use its
  // parent's entry: see the fork notes in table.cc).
  int proc_fd_ = -1;
  int32_t proc_index_ = -1;
  uint32_t proc_incarnation_ = 0;
  uint64_t lock_word_ = 0;  // this handle's lock-word value
  // True once the fields above are set. Release-stored by EnsureRegistered after it
  // set them; acquire-loaded on every write's fast path.
  std::atomic<bool> registered_{false};
  // Set once fd_ was found closed or referring to another file (the application
  // reused its number). From then on, a writer that must judge a lock holder's
  // liveness returns kBadFile instead (it cannot tell, and must not guess).
  mutable std::atomic<bool> descriptor_lost_{false};
};

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_TABLE_H_
