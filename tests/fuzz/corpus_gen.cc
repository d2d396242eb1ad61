// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): small
// valid tables and table descriptions that start the fuzzers off in the interesting
// places. Deterministic: the same files on every run (tables use the fixed seed and
// carry no time or pid).
//
//   tools/bazel run //tests/fuzz:corpus_gen -- $PWD/tests/fuzz/corpus
//
// The input formats are described at the top of each target's source.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "api/shmdict.h"
#include "core/layout.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ops.h"

namespace shmdict::fuzz {
namespace {

using internal::kHeaderSize;

std::string g_out;
int g_files = 0;
size_t g_bytes = 0;

void Emit(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = g_out + "/" + target;
  mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr, "cannot write " + path);
  FUZZ_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(), "writing " + path);
  std::fclose(f);
  ++g_files;
  g_bytes += bytes.size();
}

std::string U64Bytes(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

// ---------------------------------------------------------------------------------
// open_fuzz: a flags byte, then a file (or, with kCompact, 256 header bytes and the
// buckets).

constexpr uint8_t kOpenReadOnly = 1;
constexpr uint8_t kOpenCompact = 2;
constexpr uint8_t kOpenFixLayout = 4;
constexpr uint8_t kOpenFixSize = 8;
constexpr uint8_t kOpenFixChecksum = 16;

// A table of 2 buckets (capacity 4, keys and values up to 8 bytes) holding a few keys,
// one updated twice (both copies used) and one erased.
std::string SmallTable() {
  return MakeTableBytes(4, 8, 8, kFuzzSeed, [](Dict& d) {
    FUZZ_CHECK(d.Put("alpha", "1").ok(), "Put");
    FUZZ_CHECK(d.Put("beta", "22222222").ok(), "Put");
    FUZZ_CHECK(d.Put("beta", "2").ok(), "Put");
    FUZZ_CHECK(d.Put("", "empty").ok(), "Put");
    FUZZ_CHECK(d.Put("gone", "x").ok(), "Put");
    FUZZ_CHECK(d.Erase("gone").ok(), "Erase");
    FUZZ_CHECK(d.FetchAdd("n", 41).ok(), "FetchAdd");
  });
}

std::string Compact(uint8_t flags, const std::string& table) {
  const internal::Layout l = *internal::ComputeLayout(4, 8, 8);
  std::string out(1, static_cast<char>(flags));
  out += table.substr(0, 256);
  out += table.substr(l.buckets_offset);
  return out;
}

void OpenCorpus() {
  const std::string small = SmallTable();
  const internal::Layout l = *internal::ComputeLayout(4, 8, 8);
  Emit("open_fuzz", "valid-compact-read-only", Compact(kOpenCompact | kOpenReadOnly, small));
  Emit("open_fuzz", "valid-compact-with-fixups",
       Compact(kOpenCompact | kOpenFixLayout | kOpenFixSize | kOpenFixChecksum, small));

  // The header alone, extended with zeros to its size: an empty table.
  const std::string empty = MakeTableBytes(100, 16, 32, kFuzzSeed, nullptr);
  Emit("open_fuzz", "empty-table-header-only",
       std::string(1, static_cast<char>(kOpenFixSize)) + empty.substr(0, kHeaderSize));
  // The same header truncated, and with a broken magic.
  Emit("open_fuzz", "truncated-header", std::string(1, '\0') + empty.substr(0, 100));
  std::string bad_magic = empty.substr(0, kHeaderSize);
  bad_magic[0] = 'X';
  Emit("open_fuzz", "bad-magic", std::string(1, static_cast<char>(kOpenFixSize)) + bad_magic);

  // Larger parameters, set in the header with the layout, size and checksum fixed up.
  internal::ImmutableHeader f;
  std::memcpy(&f, empty.data(), sizeof(f));
  f.capacity = 1000;
  f.max_key_size = 32;
  f.max_value_size = 64;
  std::string big(
      1, static_cast<char>(kOpenCompact | kOpenFixLayout | kOpenFixSize | kOpenFixChecksum));
  big.append(reinterpret_cast<const char*>(&f), sizeof(f));
  big.append(empty, sizeof(f), 256 - sizeof(f));  // the stale checksum and padding
  Emit("open_fuzz", "other-parameters-fixed-up", big);

  // What a writer killed mid-write leaves: its lock word on bucket 0 (process-table
  // entry 0, which is not locked: dead), an odd sequence (a write in progress) and a
  // tag on an empty slot.
  std::string pending = small;
  const uint64_t b0 = internal::BucketOffset(l, 0);
  const uint64_t slot0 = internal::SlotOffset(l, 0, 0);
  pending.replace(b0, 8, U64Bytes((uint64_t{1} << 32) | 1));
  uint64_t seq;
  std::memcpy(&seq, pending.data() + slot0, 8);
  pending.replace(slot0, 8, U64Bytes(seq | 1));
  pending[b0 + offsetof(internal::BucketMeta, tags) + 15] = 0x5a;  // slot 15's tag
  Emit("open_fuzz", "dead-writer-pending-compact", Compact(kOpenCompact, pending));

  // Damage: a value length over the maximum in slot 0's current copy, and in slot 1's
  // a key that belongs in other buckets.
  std::string damaged = small;
  auto current_copy = [&](uint32_t i) {
    std::memcpy(&seq, damaged.data() + internal::SlotOffset(l, 0, i), 8);
    return CopyOffset(l, 0, i, (seq >> 1) & 1);
  };
  uint64_t w1;
  std::memcpy(&w1, damaged.data() + current_copy(0) + 8, 8);
  damaged.replace(current_copy(0) + 8, 8, U64Bytes((w1 & 0xFFFFFFFFu) | uint64_t{9} << 32));
  damaged.replace(current_copy(1) + 16, 8, U64Bytes(0x79656b7473696d));  // "mistkey"
  Emit("open_fuzz", "damaged-slots-compact", Compact(kOpenCompact | kOpenReadOnly, damaged));
}

// ---------------------------------------------------------------------------------
// scribble_fuzz: a flags byte, then scribbles.

constexpr uint8_t kScribbleVariant1 = 1;
constexpr uint8_t kScribbleReadOnly = 2;
constexpr uint8_t kScribbleWrite = 4;

// The region byte for `region` and a length of `len` bytes.
char RegionByte(int region, size_t len) {
  for (int r = 0; r < 256; ++r) {
    if (r % 5 == region && size_t((r >> 3) & 15) + 1 == len) return static_cast<char>(r);
  }
  FUZZ_CHECK(false, "no region byte for that length");
  return 0;
}

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (const int c : v) s.push_back(static_cast<char>(c));
  return s;
}

void ScribbleCorpus() {
  const std::string f0(1, '\0');
  Emit("scribble_fuzz", "none", f0);
  Emit("scribble_fuzz", "none-small-table-read-only",
       std::string(1, static_cast<char>(kScribbleVariant1 | kScribbleReadOnly)));
  Emit("scribble_fuzz", "none-write", std::string(1, static_cast<char>(kScribbleWrite)));
  Emit("scribble_fuzz", "none-small-table-write",
       std::string(1, static_cast<char>(kScribbleWrite | kScribbleVariant1)));
  // A dead writer's lock on bucket 3 and an odd sequence in its slot 2; then writes,
  // which repair it.
  Emit("scribble_fuzz", "dead-lock-odd-sequence-write",
       std::string(1, static_cast<char>(kScribbleWrite)) + RegionByte(2, 8) + Bytes({3, 0}) +
           U64Bytes((uint64_t{7} << 32) | 1) + RegionByte(3, 8) + Bytes({3, 2, 0, 0}) +
           U64Bytes(5));
  // Tags: all slots of bucket 1 tagged 0xff.
  Emit("scribble_fuzz", "tags-all-set",
       f0 + RegionByte(2, 16) + Bytes({1, 16}) + std::string(16, '\xff'));
  // A copy's length word: key length 3, value length 2^31.
  Emit("scribble_fuzz", "huge-value-length",
       f0 + RegionByte(4, 8) + Bytes({0, 0, 2}) + U64Bytes(4 | (uint64_t{1} << 63)));
  // The header's immutable part and statistics, after Open validated them.
  Emit("scribble_fuzz", "header-scribbled",
       std::string(1, static_cast<char>(kScribbleWrite)) + RegionByte(0, 16) + Bytes({40, 0}) +
           std::string(16, '\x7f') + RegionByte(0, 8) + Bytes({0, 1}) + U64Bytes(~0ull));
  // Process-table entries: incarnations and pids.
  Emit("scribble_fuzz", "process-table-scribbled",
       std::string(1, static_cast<char>(kScribbleWrite | kScribbleVariant1)) + RegionByte(1, 16) +
           Bytes({0, 0}) + std::string(16, '\x01') + RegionByte(1, 4) + Bytes({64, 0}) +
           U64Bytes(2).substr(0, 4));
  // A clock scribbled to the maximum: the next version would wrap.
  Emit("scribble_fuzz", "clock-at-maximum-write",
       std::string(1, static_cast<char>(kScribbleWrite)) + RegionByte(2, 8) + Bytes({0, 8}) +
           U64Bytes(~0ull) + RegionByte(2, 8) + Bytes({12, 8}) + U64Bytes(~0ull));
}

// ---------------------------------------------------------------------------------
// ops_fuzz: a shape byte, then operations (opcode mod kNumOps, tests/fuzz/ops.h, and
// operands).

class OpsWriter {
 public:
  explicit OpsWriter(uint8_t shape) : bytes_(1, static_cast<char>(shape)) {}
  void Write(OpCode op, uint8_t key, uint8_t value, uint8_t param) { Add({op, key, value, param}); }
  void Erase(uint8_t key) { Add({kErase, key}); }
  void FetchAdd(uint8_t key, uint8_t param) { Add({kFetchAdd, key, param}); }
  void Read(OpCode op, uint8_t key) { Add({op, key}); }
  void GetInto(uint8_t key, uint8_t cap) { Add({kGetInto, key, cap}); }
  void GetMany(const std::vector<uint8_t>& keys, uint8_t cap) {
    Add({kGetMany, static_cast<uint8_t>(keys.size())});
    for (const uint8_t k : keys) Add({k});
    Add({cap});
  }
  void Scan(OpCode op) { Add({op}); }
  const std::string& bytes() const { return bytes_; }

 private:
  void Add(std::initializer_list<uint8_t> v) {
    for (const uint8_t b : v) bytes_.push_back(static_cast<char>(b));
  }
  std::string bytes_;
};

// A random mix of every operation on keys drawn from `key_bytes`.
std::string RandomOps(uint8_t shape, uint32_t seed, int n, const std::vector<uint8_t>& key_bytes) {
  std::mt19937 rng(seed);
  auto pick = [&] { return key_bytes[rng() % key_bytes.size()]; };
  auto byte = [&] { return static_cast<uint8_t>(rng()); };
  OpsWriter w(shape);
  for (int i = 0; i < n; ++i) {
    const uint32_t r = rng() % 100;
    if (r < 30) {
      w.Write(kPut, pick(), byte(), byte());
    } else if (r < 38) {
      w.Write(kInsert, pick(), byte(), byte());
    } else if (r < 44) {
      w.Write(kReplace, pick(), byte(), byte());
    } else if (r < 54) {
      w.Erase(pick());
    } else if (r < 62) {
      w.Write(kCompareAndSwap, pick(), byte(), byte());
    } else if (r < 72) {
      w.FetchAdd(pick(), byte());
    } else if (r < 80) {
      w.Read(kGet, pick());
    } else if (r < 84) {
      w.Read(kGetReadOnly, pick());
    } else if (r < 88) {
      w.GetInto(pick(), byte());
    } else if (r < 91) {
      w.GetMany({pick(), pick(), pick(), pick(), pick()}, byte());
    } else if (r < 95) {
      w.Read(kVersion, pick());
    } else {
      static_assert(kForEach == kCount + 1 && kVerify == kCount + 2 && kStats == kCount + 3,
                    "the four scans are consecutive");
      w.Scan(static_cast<OpCode>(kCount + rng() % 4));
    }
  }
  return w.bytes();
}

void OpsCorpus() {
  // Key bytes: short keys (0x00-0x3f), full-length keys (0x40-0x7f), oversized or
  // varied (0x80-0xbf), one short of the maximum (0xc0-0xff).
  std::vector<uint8_t> few, many;
  for (int i = 0; i < 6; ++i) few.push_back(static_cast<uint8_t>(0x40 + i));
  few.push_back(0x01);
  few.push_back(0xc1);
  few.push_back(0x83);  // oversized
  for (int i = 0; i < 256; i += 3) many.push_back(static_cast<uint8_t>(i));
  for (uint8_t shape = 0; shape < 4; ++shape) {
    Emit("ops_fuzz", "random-few-keys-shape" + std::to_string(shape),
         RandomOps(shape, 100 + shape, 150, few));
    Emit("ops_fuzz", "random-many-keys-shape" + std::to_string(shape),
         RandomOps(shape, 200 + shape, 200, many));
  }
  // Fill shape 0 (2 buckets of 16 slots, 1-byte keys: 0x40-0x7f are 64 of them) past
  // full, then free a slot and insert again.
  OpsWriter fill(0);
  for (uint8_t k = 0x40; k < 0x80; ++k) fill.Write(kPut, k, 0x20, 0);
  fill.Scan(kCount);
  fill.Scan(kVerify);
  fill.Erase(0x42);
  fill.Write(kInsert, 0x7f, 0x20, 0);
  fill.Write(kInsert, 0x7e, 0x20, 0);
  fill.Scan(kForEach);
  Emit("ops_fuzz", "fill-past-full", fill.bytes());
  // Counters: FetchAdd with every kind of delta, on 8-byte and other values.
  OpsWriter counters(2);
  for (uint8_t k = 0; k < 4; ++k) {
    counters.FetchAdd(k, 0x01);  // +1
    counters.FetchAdd(k, 0x05);  // INT64_MAX
    counters.FetchAdd(k, 0x07);  // -1
    counters.FetchAdd(k, 0x06);  // INT64_MIN
  }
  counters.Write(kPut, 5, 0x20, 0);  // a 1-byte value
  counters.FetchAdd(5, 1);           // kType
  counters.Write(kCompareAndSwap, 0, 0x60, 0);
  counters.Scan(kForEach);
  Emit("ops_fuzz", "fetch-add-counters", counters.bytes());
}

}  // namespace
}  // namespace shmdict::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIRECTORY (e.g. $PWD/tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  shmdict::fuzz::g_out = argv[1];
  mkdir(argv[1], 0755);
  shmdict::fuzz::OpenCorpus();
  shmdict::fuzz::ScribbleCorpus();
  shmdict::fuzz::OpsCorpus();
  std::printf("wrote %d files, %zu bytes, under %s\n", shmdict::fuzz::g_files,
              shmdict::fuzz::g_bytes, argv[1]);
  return 0;
}
