#include "core/layout.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "api/errors.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {
namespace {

constexpr uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

}  // namespace

absl::StatusOr<Layout> ComputeLayout(uint64_t capacity, uint32_t max_key_size,
                                     uint32_t max_value_size) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    return MakeError(ErrorCode::kInvalid,
                     absl::StrCat("capacity must be in [1, ", kMaxCapacity, "], got ",
                                  capacity));
  }
  if (max_key_size == 0 || max_key_size > kMaxKeySizeLimit) {
    return MakeError(ErrorCode::kInvalid,
                     absl::StrCat("max_key_size must be in [1, ", kMaxKeySizeLimit,
                                  "], got ", max_key_size));
  }
  if (max_value_size == 0 || max_value_size > kMaxValueSizeLimit) {
    return MakeError(ErrorCode::kInvalid,
                     absl::StrCat("max_value_size must be in [1, ", kMaxValueSizeLimit,
                                  "], got ", max_value_size));
  }
  Layout l;
  l.capacity = capacity;
  l.max_key_size = max_key_size;
  l.max_value_size = max_value_size;
  l.key_words = static_cast<uint32_t>(RoundUp(max_key_size, 8) / 8);
  l.value_words = static_cast<uint32_t>(RoundUp(max_value_size, 8) / 8);
  // All below fit comfortably in 64 bits given the limits above; the 32-bit fields
  // are checked explicitly.
  const uint64_t copy_stride = 8 * (kCopyHeaderWords + l.key_words + l.value_words);
  const uint64_t slot_stride = 8 + 2 * copy_stride;
  const uint64_t bucket_stride =
      RoundUp(sizeof(BucketMeta) + kSlotsPerBucket * slot_stride, kCacheLine);
  if (bucket_stride > UINT32_MAX) {
    return MakeError(ErrorCode::kInvalid, "key and value maxima too large together");
  }
  l.copy_stride = static_cast<uint32_t>(copy_stride);
  l.slot_stride = static_cast<uint32_t>(slot_stride);
  l.bucket_stride = static_cast<uint32_t>(bucket_stride);
  // Slots for capacity at 80% load, in whole buckets, an even count.
  const uint64_t slots_needed = (capacity * 5 + 3) / 4;
  uint64_t buckets = (slots_needed + kSlotsPerBucket - 1) / kSlotsPerBucket;
  buckets = RoundUp(buckets < 2 ? 2 : buckets, 2);
  l.bucket_count = buckets;
  l.proc_table_offset = kHeaderSize;
  l.buckets_offset = kHeaderSize + uint64_t{kProcEntries} * sizeof(ProcEntry);
  if (buckets > (kMaxFileSize - l.buckets_offset) / bucket_stride) {
    return MakeError(ErrorCode::kInvalid,
                     absl::StrCat("table of capacity ", capacity, " with keys up to ",
                                  max_key_size, " and values up to ", max_value_size,
                                  " bytes would exceed the ", kMaxFileSize,
                                  "-byte file size limit"));
  }
  l.file_size = l.buckets_offset + buckets * bucket_stride;
  return l;
}

uint64_t HeaderChecksum(const ImmutableHeader& fixed) {
  return XXH3_64bits(&fixed, sizeof(fixed));
}

}  // namespace shmdict::internal
