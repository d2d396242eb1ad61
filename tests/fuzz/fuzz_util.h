// Helpers shared by shmdict's fuzz targets (tests/fuzz/*_fuzz.cc) and by the seed
// corpus generator: checks that abort (a fuzz target reports a finding by crashing),
// an input decoder, unique table paths, and table files with a fixed hash seed so that
// an input always lands its keys in the same buckets (fuzzing and replaying a finding
// must be deterministic; a created table's seed is random).
#ifndef SHMDICT_TESTS_FUZZ_FUZZ_UTIL_H_
#define SHMDICT_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "core/layout.h"

namespace shmdict::fuzz {

// Prints "file:line: check failed: what (detail)" and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, const char* what,
                              const std::string& detail);

// FUZZ_CHECK(cond, detail): a finding when `cond` is false. `detail` is evaluated only
// then, so it may build a message.
#define FUZZ_CHECK(cond, detail)                                         \
  do {                                                                   \
    if (!(cond)) {                                                       \
      ::shmdict::fuzz::CheckFailed(__FILE__, __LINE__, #cond, (detail)); \
    }                                                                    \
  } while (false)

// Whether SHMDICT_FUZZ_VERBOSE is set: the targets then describe each input's run on
// stderr (for replaying a corpus file or a finding by hand).
bool Verbose();

// "SHMDICT_ENOTFOUND: key not found" for messages.
std::string Describe(const absl::Status& status);

// `bytes` with every byte that is not printable ASCII, and the backslash, as \xNN.
std::string Printable(std::string_view bytes);

// Reads an input front to back. Past the end every read returns zeros (and empty
// byte strings), so a decoder never needs to check the length before each field.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  uint8_t Byte() { return empty() ? 0 : data_[pos_++]; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() | Byte() << 8); }
  uint32_t U32() { return static_cast<uint32_t>(U16() | uint32_t{U16()} << 16); }
  uint64_t U64() { return U32() | uint64_t{U32()} << 32; }
  // Up to `n` bytes (fewer at the end of the input).
  std::string_view Bytes(size_t n);
  // Everything not read yet.
  std::string_view Rest() { return Bytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A path /dev/shm/shmdict-fuzz-<pid>-<random>-<counter>-<tag>, unique to this call.
std::string UniqueTablePath(std::string_view tag);

// One run of bytes of a new file, at an offset.
struct FilePiece {
  uint64_t offset;
  std::string_view bytes;
};

// Creates `path` (which must not exist) with mode 0600, writes the pieces and sets the
// file's size to `size` (cutting pieces that reach beyond it; gaps read as zeros).
// Aborts on failure: the fuzz targets need a working /dev/shm.
void WriteNewFile(const std::string& path, std::initializer_list<FilePiece> pieces, uint64_t size);

// The whole content of `path`. Aborts on failure.
std::string ReadWholeFile(const std::string& path);

// XXH3-64 of the header's immutable part: the value Open expects at byte 192.
uint64_t HeaderChecksum(const void* immutable_header);

// Makes the file at `path` (a table no handle has open) deterministic: sets the hash
// seed to `seed`, zeroes the informational creation fields (time, pid, uid) and
// recomputes the checksum. Aborts on failure.
void SetHeaderSeed(const std::string& path, uint64_t seed);

// The bytes of a table created with these parameters, hash seed `seed`, and the
// writes `fill` made through a handle on it (nullptr: none). The process-table entry
// the writes claimed is left as a dead process leaves it, with its informational
// fields (pid, time) zeroed. Deterministic for a deterministic `fill`.
std::string MakeTableBytes(uint64_t capacity, uint32_t max_key_size, uint32_t max_value_size,
                           uint64_t seed, const std::function<void(Dict&)>& fill);

// Byte offset in a table file of copy `copy` (0 or 1) of slot i of bucket b: the copies
// follow the slot's 8-byte sequence word (core/layout.h).
inline uint64_t CopyOffset(const internal::Layout& l, uint64_t b, uint32_t i, uint64_t copy) {
  return internal::SlotOffset(l, b, i) + sizeof(uint64_t) + copy * l.copy_stride;
}

// The fixed hash seed of the fuzz targets' tables.
inline constexpr uint64_t kFuzzSeed = 0x5eed5eed5eed5eedull;

}  // namespace shmdict::fuzz

#endif  // SHMDICT_TESTS_FUZZ_FUZZ_UTIL_H_
