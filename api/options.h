// The options of Dict::Open and the statistics of Dict::GetStats (api/shmdict.h). Their
// own header, depending on nothing else in shmdict, so that the engine (core/) takes and
// fills them as they are.
#ifndef SHMDICT_API_OPTIONS_H_
#define SHMDICT_API_OPTIONS_H_

#include <cstdint>

namespace shmdict {

// What a write of an absent key does when both of its candidate buckets are full of
// unexpired entries (expired entries' slots are always reused first).
enum class Eviction : uint32_t {
  kNone = 0,  // fail with kFull: a dictionary never loses an entry it did not erase
  kLrs = 1,   // least recently stored: erase the entry of the lowest version among the
              // key's two candidate buckets and take its slot (a cache)
};

struct OpenOptions {
  // Create the table if the file does not exist, with the fields below. When the file
  // exists, every nonzero field below must match it (else kInvalid).
  bool create = false;
  // With create: fail with kExists if the file exists.
  bool exclusive = false;
  // Map the file read-only: reads only, writes fail with kPermission. Needs only read
  // permission on the file; the process takes no process-table entry.
  bool read_only = false;
  // Accept a group-writable file, or one owned by another user (for tables shared by
  // the users of one group), and allow creating one with a group-writable mode.
  // World-writable files are always refused.
  bool allow_group = false;
  uint64_t capacity = 0;        // keys the table must hold, in [1, 2^36]
  uint32_t max_key_size = 0;    // bytes, in [1, 65536]
  uint32_t max_value_size = 0;  // bytes, in [1, 64 MiB]
  uint32_t mode = 0600;         // file mode on creation (owner must have rw)
  // The eviction policy of a table created by this call. Opening an existing table,
  // kNone accepts the table's policy and kLrs requires it.
  Eviction eviction = Eviction::kNone;
};

struct Stats {
  uint64_t capacity = 0;        // as requested at creation
  uint64_t bucket_count = 0;
  uint64_t slot_count = 0;      // bucket_count * 16
  uint64_t count = 0;           // unexpired entries, counted now (weakly consistent)
  double load_factor = 0;       // count / slot_count
  uint32_t max_key_size = 0;
  uint32_t max_value_size = 0;
  uint64_t file_size = 0;       // bytes
  uint64_t recoveries = 0;      // bucket repairs after dead writers, ever
  uint32_t live_processes = 0;  // processes holding the table open for writing
  Eviction eviction = Eviction::kNone;
  uint64_t expired = 0;         // expired entries still in their slots, counted now
  uint64_t evictions = 0;       // unexpired entries evicted (kLrs), ever
  uint64_t expired_erased = 0;  // expired entries erased by writes and sweeps, ever
};

}  // namespace shmdict

#endif  // SHMDICT_API_OPTIONS_H_
