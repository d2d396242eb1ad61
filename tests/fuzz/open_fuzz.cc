// Fuzz target: arbitrary bytes as a table file, opened with Dict::Open.
//
// What it checks:
//   - Open never crashes, hangs or leaks, and refuses every file that is not a valid
//     table with kBadFile and a message. It accepts exactly the files that
//     docs/file_format.md calls valid (magic, byte order, version, checksum, constant
//     fields, layout recomputed from the parameters, exact size): the target checks
//     the specification independently and compares.
//   - On a file it accepted, whose buckets may hold anything, every read stays in
//     bounds, ends, and agrees with the other read paths and with Verify
//     (tests/fuzz/read_checks.h). Nobody else has the file open, so no process may
//     look live and Verify must check every bucket.
//
// Input format: one flags byte, then the payload.
//   kReadOnly      open read-only (else read-write; the target only reads).
//   kCompact       the payload's first 256 bytes are the header's first 256 bytes
//                  (the rest of the 4 KiB header is zero) and the rest of the payload
//                  goes at the header's buckets_offset (or at 4096 if that is out of
//                  range), so a short input can reach the buckets. Otherwise the
//                  payload is the file, byte for byte.
//   kFixLayout     rewrite the header's layout fields (bucket count, strides, offsets,
//                  file size) from its capacity and maxima, when those are valid.
//   kFixSize       set the file's size to the header's file_size (when <= 2 MiB).
//   kFixChecksum   recompute the header checksum.
// The fix-ups let the fuzzer vary a header's fields without having to forge an XXH3
// checksum or write megabytes; with none set the file is exactly the payload.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

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

using internal::ComputeLayout;
using internal::FileHeader;
using internal::ImmutableHeader;
using internal::kHeaderSize;
using internal::Layout;

constexpr uint8_t kReadOnly = 1;
constexpr uint8_t kCompact = 2;
constexpr uint8_t kFixLayout = 4;
constexpr uint8_t kFixSize = 8;
constexpr uint8_t kFixChecksum = 16;

constexpr size_t kCompactHeaderBytes = 256;
constexpr uint64_t kMaxFuzzFileSize = 2 << 20;
constexpr size_t kChecksumOffset = offsetof(FileHeader, checksum);
constexpr size_t kImmutableEnd = kChecksumOffset + sizeof(uint64_t);

// Whether docs/file_format.md calls `file` (its first bytes; `size` in all) a valid
// table: written from the specification, not from the engine's validator.
bool ValidBySpec(std::string_view head, uint64_t size) {
  if (size < kHeaderSize || head.size() < kImmutableEnd) return false;
  ImmutableHeader f;
  std::memcpy(&f, head.data(), sizeof(f));
  uint64_t checksum;
  std::memcpy(&checksum, head.data() + kChecksumOffset, sizeof(checksum));
  if (std::memcmp(f.magic, internal::kMagic, sizeof(f.magic)) != 0) return false;
  if (f.format_version != 2 || f.endian_mark != 0x01020304) return false;
  if (checksum != HeaderChecksum(&f)) return false;
  if (f.header_size != 4096 || f.hash_algorithm != 1 || f.slots_per_bucket != 16 ||
      f.proc_entries != 1024 || f.proc_entry_size != 64 || f.eviction > 1) {
    return false;
  }
  const absl::StatusOr<Layout> l = ComputeLayout(f.capacity, f.max_key_size, f.max_value_size);
  if (!l.ok()) return false;
  return f.bucket_count == l->bucket_count && f.copy_stride == l->copy_stride &&
         f.slot_stride == l->slot_stride && f.bucket_stride == l->bucket_stride &&
         f.proc_table_offset == 4096 && f.buckets_offset == 69632 && f.file_size == l->file_size &&
         size == l->file_size;
}

void FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t flags = in.Byte();
  const std::string_view payload = in.Rest();

  // The header (as much of it as there is) and the body, placed per the flags.
  std::string head;
  std::string_view body;
  uint64_t body_offset = 0;
  if ((flags & kCompact) != 0) {
    head.assign(payload.substr(0, kCompactHeaderBytes));
    head.resize(kHeaderSize, '\0');
    body = payload.size() > kCompactHeaderBytes ? payload.substr(kCompactHeaderBytes)
                                                : std::string_view();
  } else {
    head.assign(payload.substr(0, kHeaderSize));
    body = payload.size() > kHeaderSize ? payload.substr(kHeaderSize) : std::string_view();
    body_offset = kHeaderSize;
  }
  const bool has_header = head.size() >= kImmutableEnd;
  ImmutableHeader f{};
  if (has_header) std::memcpy(&f, head.data(), sizeof(f));
  if (has_header && (flags & kFixLayout) != 0) {
    const absl::StatusOr<Layout> l = ComputeLayout(f.capacity, f.max_key_size, f.max_value_size);
    if (l.ok()) {
      f.bucket_count = l->bucket_count;
      f.copy_stride = l->copy_stride;
      f.slot_stride = l->slot_stride;
      f.bucket_stride = l->bucket_stride;
      f.proc_table_offset = l->proc_table_offset;
      f.buckets_offset = l->buckets_offset;
      f.file_size = l->file_size;
    }
  }
  if ((flags & kCompact) != 0) {
    body_offset = has_header && f.buckets_offset >= kHeaderSize &&
                          body.size() <= kMaxFuzzFileSize &&
                          f.buckets_offset <= kMaxFuzzFileSize - body.size()
                      ? f.buckets_offset
                      : kHeaderSize;
  }
  uint64_t file_size = std::max<uint64_t>(head.size(), body_offset + body.size());
  if (body.empty()) file_size = head.size();
  if (has_header && (flags & kFixSize) != 0 && f.file_size <= kMaxFuzzFileSize) {
    file_size = f.file_size;
  }
  if (has_header) {
    std::memcpy(head.data(), &f, sizeof(f));
    if ((flags & kFixChecksum) != 0) {
      const uint64_t checksum = HeaderChecksum(&f);
      std::memcpy(head.data() + kChecksumOffset, &checksum, sizeof(checksum));
    }
  }

  const std::string path = UniqueTablePath("open");
  WriteNewFile(path, {{0, head}, {body_offset, body}}, file_size);
  const bool valid =
      ValidBySpec(head.substr(0, std::min<uint64_t>(head.size(), file_size)), file_size);
  OpenOptions options;
  options.read_only = (flags & kReadOnly) != 0;
  absl::StatusOr<Dict> d = Dict::Open(path, options);
  unlink(path.c_str());  // the mapping outlives the name
  if (Verbose()) {
    std::fprintf(stderr, "  %llu-byte file, %s by the specification; Open: %s\n",
                 static_cast<unsigned long long>(file_size), valid ? "valid" : "invalid",
                 d.ok() ? "OK" : Describe(d.status()).c_str());
  }
  if (!d.ok()) {
    FUZZ_CHECK(ErrorCodeOf(d.status()) == ErrorCode::kBadFile && !d.status().message().empty(),
               "Open refused a file with " + Describe(d.status()));
    FUZZ_CHECK(!valid,
               "Open refused a file the format specification calls valid: " + Describe(d.status()));
    return;
  }
  FUZZ_CHECK(valid, "Open accepted a file the format specification calls invalid");
  FUZZ_CHECK(internal::TableOf(*d)->layout().file_size == file_size,
             "the table's layout disagrees with the file's size");
  // Nobody has the file open for writing: every lock word names a dead holder (or
  // none), so Verify must check every bucket.
  const std::string oversized(internal::TableOf(*d)->layout().max_key_size + 1, 'k');
  CheckTableReads(*d, {"", "k", "key-1", oversized}, TableReadExpectations{});
}

}  // namespace
}  // namespace shmdict::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shmdict::fuzz::FuzzOne(data, size);
  return 0;
}
