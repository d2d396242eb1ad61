// Fuzz target: a valid table, scribbled over after it was opened.
//
// A small table is built once (a few hundred keys, some updated, erased or counted
// with FetchAdd, so that slots hold two copies and stale spare copies). Each input
// copies it to a new file, opens it, and overwrites bytes anywhere in the mapping
// through the file: the header (which Open validated before), the process table,
// bucket metadata (lock words, clocks, tags, change counters), sequence words and
// copies. Then:
//   - Reads, by every read path, of the keys of the buckets scribbled over, a sample
//     of the other keys the table ever held, and absent and oversized keys: they must
//     stay in bounds, never hang, and agree with each other and with Verify
//     (tests/fuzz/read_checks.h). No process holds the file open, so every lock word
//     names a dead writer or none, and Verify checks every bucket.
//   - With the kWrite flag (on a read-write handle), writes too. Writes are safe
//     here only because of what core/table.cc does with a held lock: a writer waits
//     for as long as the holder lives and takes over only from a dead one. A scribbled
//     lock word may name this very handle's process-table entry, a live holder, and a
//     write of that bucket would wait forever, as documented. So the target first
//     runs RepairDeadLocks (which must take over every lock held by anyone else: all
//     dead), then writes only keys whose two buckets are unlocked, and checks that
//     each write reads back as written. Then the reads again, now expecting this
//     handle to be the one live process and its forged locks to be busy.
//
// Input format: one byte of flags (bit 0: which table; kReadOnly; kWrite), then
// scribbles until the input ends, each:
//   region byte: region = r % 5, length = ((r >> 3) & 15) + 1 bytes;
//   the region's position fields; then the bytes (8 of them for region 4).
//   region 0: the header, U16 offset (mod 4096)
//   region 1: the process table, U16 offset (mod 65536)
//   region 2: a bucket's metadata line, bucket byte, offset byte (mod 64)
//   region 3: a slot, bucket byte, slot byte, U16 offset (mod the slot size)
//   region 4: one word of a slot copy, bucket byte, slot byte, copy-and-word byte
//             (bit 0: copy; the rest: word index mod the copy's words)
// Positions past the end of the file are cut off.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/layout.h"
#include "core/table.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/read_checks.h"

namespace shmdict::fuzz {
namespace {

constexpr uint8_t kVariantBit = 1;
constexpr uint8_t kReadOnly = 2;
constexpr uint8_t kWrite = 4;
constexpr int kMaxScribbles = 64;

struct Template {
  std::string bytes;              // the table file
  std::vector<std::string> keys;  // every key ever written, present or erased
};

std::string Value(int i, size_t len) {
  std::string v(len, '\0');
  for (size_t j = 0; j < len; ++j) v[j] = static_cast<char>('a' + (i + j) % 26);
  return v;
}

// Variant 0: 24 buckets (capacity 300, keys <= 16 bytes, values <= 24 bytes), 240
// keys of which some were updated, erased, re-inserted; 10 FetchAdd counters.
// Variant 1: 4 buckets (capacity 40, keys and values <= 8 bytes) filled until the
// first "full", so buckets are full and the two-choice placement matters.
Template MakeTemplate(int variant) {
  Template t;
  if (variant == 0) {
    for (int i = 0; i < 240; ++i) t.keys.push_back("key-" + std::to_string(i));
    for (int i = 0; i < 10; ++i) t.keys.push_back("counter-" + std::to_string(i));
    t.bytes = MakeTableBytes(300, 16, 24, kFuzzSeed, [&](Dict& d) {
      for (int i = 0; i < 240; ++i) {
        FUZZ_CHECK(d.Put(t.keys[i], Value(i, (i * 7) % 25)).ok(), "template Put");
        if (i % 5 == 0) FUZZ_CHECK(d.Put(t.keys[i], Value(i + 1, i % 9)).ok(), "template update");
        if (i % 7 == 0) FUZZ_CHECK(d.Erase(t.keys[i]).ok(), "template Erase");
        if (i % 21 == 0) FUZZ_CHECK(d.Put(t.keys[i], Value(i, 3)).ok(), "template re-insert");
      }
      for (int i = 0; i < 10; ++i) {
        FUZZ_CHECK(d.FetchAdd(t.keys[240 + i], i * 1000 - 3).ok(), "template FetchAdd");
      }
    });
  } else {
    t.bytes = MakeTableBytes(40, 8, 8, kFuzzSeed, [&](Dict& d) {
      for (int i = 0; i < 200; ++i) {
        const std::string key = "k" + std::to_string(i);
        const absl::StatusOr<uint64_t> v = d.Put(key, Value(i, i % 9));
        if (!v.ok()) {
          FUZZ_CHECK(ErrorCodeOf(v.status()) == ErrorCode::kFull,
                     "template Put: " + Describe(v.status()));
          break;
        }
        t.keys.push_back(key);
      }
    });
  }
  return t;
}

const Template& GetTemplate(int variant) {
  static const Template* const templates[2] = {new Template(MakeTemplate(0)),
                                               new Template(MakeTemplate(1))};
  return *templates[variant];
}

// Applies the scribbles the input describes, through `fd` (a descriptor of the
// mapped file, so the mapping sees them at once). Sets touched[b] for each bucket
// scribbled over.
void ApplyScribbles(Input& in, int fd, const internal::Layout& l, std::vector<bool>& touched) {
  const uint64_t buckets = l.buckets_offset;
  for (int n = 0; n < kMaxScribbles && !in.empty(); ++n) {
    const uint8_t r = in.Byte();
    size_t len = ((r >> 3) & 15) + 1;
    uint64_t offset = 0;
    switch (r % 5) {
      case 0:
        offset = in.U16() % internal::kHeaderSize;
        break;
      case 1:
        offset = l.proc_table_offset + in.U16() % (l.buckets_offset - l.proc_table_offset);
        break;
      case 2: {
        const uint64_t b = in.Byte() % l.bucket_count;
        offset = internal::BucketOffset(l, b) + in.Byte() % sizeof(internal::BucketMeta);
        break;
      }
      case 3: {
        const uint64_t b = in.Byte() % l.bucket_count;
        const uint32_t i = in.Byte() % internal::kSlotsPerBucket;
        offset = internal::SlotOffset(l, b, i) + in.U16() % l.slot_stride;
        break;
      }
      default: {
        const uint64_t b = in.Byte() % l.bucket_count;
        const uint32_t i = in.Byte() % internal::kSlotsPerBucket;
        const uint8_t w = in.Byte();
        offset = CopyOffset(l, b, i, w & 1) + 8 * ((w >> 1) % (l.copy_stride / 8));
        len = 8;
        break;
      }
    }
    const std::string_view bytes = in.Bytes(len);
    if (offset >= l.file_size) continue;
    if (offset + len > buckets) {
      const uint64_t first = (std::max(offset, buckets) - buckets) / l.bucket_stride;
      const uint64_t last = (offset + len - 1 - buckets) / l.bucket_stride;
      for (uint64_t b = first; b <= last && b < l.bucket_count; ++b) touched[b] = true;
    }
    const size_t n_bytes =
        static_cast<size_t>(std::min<uint64_t>(bytes.size(), l.file_size - offset));
    FUZZ_CHECK(pwrite(fd, bytes.data(), n_bytes, static_cast<off_t>(offset)) ==
                   static_cast<ssize_t>(n_bytes),
               std::string("scribbling: ") + std::strerror(errno));
  }
}

uint64_t LockWord(const Dict& d, uint64_t b) {
  internal::Table* t = internal::TableOf(d);
  auto* meta = reinterpret_cast<internal::BucketMeta*>(t->MappingForTesting() +
                                                       internal::BucketOffset(t->layout(), b));
  // Relaxed: this thread is the only one using the table; a plain observation.
  return meta->lock.load(std::memory_order_relaxed);
}

// Whether a write of `key` would take only locks that are free now. (After
// RepairDeadLocks the only locks left are this handle's own, forged by a scribble:
// the engine rightly waits for a live holder, forever.)
bool BucketsFree(const Dict& d, std::string_view key) {
  uint64_t b1 = 0, b2 = 0;
  internal::TableOf(d)->BucketsOf(key, &b1, &b2);
  return LockWord(d, b1) == 0 && LockWord(d, b2) == 0;
}

// After a successful versioned write: the key reads back as written.
void CheckReadsBack(const Dict& d, std::string_view key, std::string_view value, uint64_t version,
                    const char* what) {
  uint64_t got_version = 0;
  const absl::StatusOr<std::string> got = d.Get(key, &got_version);
  FUZZ_CHECK(got.ok() && *got == value && got_version == version,
             std::string(what) + " of '" + std::string(key) + "' reads back as " +
                 (got.ok() ? "'" + *got + "' version " + std::to_string(got_version)
                           : Describe(got.status())) +
                 ", not version " + std::to_string(version));
}

// Returns the number of writes that succeeded.
int WritePhase(Dict& d, const Template& t) {
  internal::Table* table = internal::TableOf(d);
  const absl::StatusOr<uint64_t> repaired = table->RepairDeadLocks();
  FUZZ_CHECK(repaired.ok(), "RepairDeadLocks: " + Describe(repaired.status()));
  const int32_t self = table->process_index();
  FUZZ_CHECK(self >= 0, "a handle that repaired has no process-table entry");
  for (uint64_t b = 0; b < table->layout().bucket_count; ++b) {
    const uint64_t w = LockWord(d, b);
    FUZZ_CHECK(w == 0 || (w >> 32) == uint64_t(self) + 1,
               "after RepairDeadLocks bucket " + std::to_string(b) + " is still locked by " +
                   std::to_string(w));
  }

  int done = 0;
  const uint32_t max_value = table->layout().max_value_size;
  std::vector<std::string> keys(t.keys.begin(),
                                t.keys.begin() + std::min<size_t>(t.keys.size(), 24));
  for (int i = 0; i < 4; ++i) keys.push_back("new-" + std::to_string(i));
  for (size_t j = 0; j < keys.size(); ++j) {
    const std::string& key = keys[j];
    if (!BucketsFree(d, key)) continue;
    const std::string value = Value(static_cast<int>(j), (j * 3) % (max_value + 1));
    // A versioned write of `value` that succeeded reads back as written.
    auto read_back = [&](const absl::StatusOr<uint64_t>& v, const char* what) {
      if (!v.ok()) return;
      CheckReadsBack(d, key, value, *v, what);
      ++done;
    };
    switch (j % 5) {
      case 0:
        read_back(d.Put(key, value), "Put");
        break;
      case 1:
        read_back(d.Replace(key, value), "Replace");
        break;
      case 2:
        read_back(d.CompareAndSwap(key, d.Version(key), value), "CompareAndSwap");
        break;
      case 3: {
        uint64_t version = 0;
        const absl::StatusOr<int64_t> v = d.FetchAdd(key, 7, &version);
        if (v.ok()) {
          char bytes[8];
          std::memcpy(bytes, &*v, 8);
          CheckReadsBack(d, key, std::string_view(bytes, 8), version, "FetchAdd");
          ++done;
        }
        break;
      }
      default: {
        const absl::Status s = d.Erase(key);
        const ErrorCode code = ErrorCodeOf(s);
        FUZZ_CHECK(code == ErrorCode::kOk || code == ErrorCode::kNotFound, "Erase: " + Describe(s));
        done += s.ok();
        break;
      }
    }
  }
  if (Verbose()) {
    std::fprintf(stderr, "  repaired %llu buckets; %d writes succeeded\n",
                 static_cast<unsigned long long>(*repaired), done);
  }
  return done;
}

void FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t flags = in.Byte();
  const Template& t = GetTemplate(flags & kVariantBit);
  const bool read_only = (flags & kReadOnly) != 0;

  const std::string path = UniqueTablePath("scribble");
  WriteNewFile(path, {{0, t.bytes}}, t.bytes.size());
  absl::StatusOr<Dict> d = Dict::Open(path, {.read_only = read_only});
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  unlink(path.c_str());  // the mapping and `fd` outlive the name
  FUZZ_CHECK(d.ok(), "opening a copy of the template: " + Describe(d.status()));
  FUZZ_CHECK(fd >= 0, std::string("opening the table's file: ") + std::strerror(errno));
  const internal::Layout layout = internal::TableOf(*d)->layout();
  std::vector<bool> touched(layout.bucket_count, false);
  ApplyScribbles(in, fd, layout, touched);
  close(fd);


  // The keys to look up: those of the buckets scribbled over, every 16th other key,
  // and a few that were never written.
  std::vector<std::string> probes;
  for (size_t i = 0; i < t.keys.size(); ++i) {
    uint64_t b1 = 0, b2 = 0;
    internal::TableOf(*d)->BucketsOf(t.keys[i], &b1, &b2);
    if (touched[b1] || touched[b2] || i % 16 == 0) probes.push_back(t.keys[i]);
  }
  probes.push_back("");
  probes.push_back("absent");
  probes.push_back(std::string(layout.max_key_size, 'z'));
  probes.push_back(std::string(layout.max_key_size + 1, 'z'));
  CheckTableReads(*d, probes, TableReadExpectations{});

  if (read_only || (flags & kWrite) == 0) return;
  WritePhase(*d, t);
  TableReadExpectations after;
  after.live_processes = 1;
  for (uint64_t b = 0; b < layout.bucket_count; ++b) after.busy_buckets += LockWord(*d, b) != 0;
  CheckTableReads(*d, probes, after);
}

}  // namespace
}  // namespace shmdict::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shmdict::fuzz::FuzzOne(data, size);
  return 0;
}
