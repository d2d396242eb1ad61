// Unit tests of core/layout.h: the limits ComputeLayout enforces, the layouts it
// computes (the numbers below are worked out by hand from docs/file_format.md, not
// taken from the code), the offsets of the structs that live in the mapping, bucket
// and slot addresses, and the header checksum. Any change to an expected number here
// is a change of the file format (kFormatVersion).
#include "core/layout.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/errors.h"
#include "gtest/gtest.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {
namespace {

void ExpectInvalid(uint64_t capacity, uint32_t key, uint32_t value) {
  const absl::StatusOr<Layout> l = ComputeLayout(capacity, key, value);
  ASSERT_FALSE(l.ok()) << capacity << "/" << key << "/" << value;
  EXPECT_EQ(ErrorCodeOf(l.status()), ErrorCode::kInvalid) << l.status();
  EXPECT_FALSE(l.status().message().empty());
}

TEST(LayoutTest, ParametersOutsideTheLimitsAreInvalid) {
  ExpectInvalid(0, 16, 64);
  ExpectInvalid(kMaxCapacity + 1, 1, 1);
  ExpectInvalid(16, 0, 64);
  ExpectInvalid(16, kMaxKeySizeLimit + 1, 64);
  ExpectInvalid(16, 16, 0);
  ExpectInvalid(16, 16, kMaxValueSizeLimit + 1);
  // Each limit itself is accepted.
  EXPECT_TRUE(ComputeLayout(kMaxCapacity, 1, 1).ok());
  EXPECT_TRUE(ComputeLayout(1, kMaxKeySizeLimit, kMaxValueSizeLimit).ok());
  EXPECT_EQ(kMaxCapacity, uint64_t{1} << 36);
  EXPECT_EQ(kMaxKeySizeLimit, 65536u);
  EXPECT_EQ(kMaxValueSizeLimit, 67108864u);
  EXPECT_EQ(kMaxFileSize, uint64_t{1} << 44);
}

// A file over 2^44 bytes: 2^36 keys of 8 + 128 bytes (bucket_stride 5312, 5 * 2^30
// buckets: 2.9e13 bytes). With 8 + 64 bytes (bucket_stride 3264: 1.75e13) it fits.
TEST(LayoutTest, FileSizeLimit) {
  ExpectInvalid(kMaxCapacity, 8, 128);
  const absl::StatusOr<Layout> l = ComputeLayout(kMaxCapacity, 8, 64);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->bucket_stride, 3264u);
  EXPECT_EQ(l->bucket_count, uint64_t{5} << 30);
  EXPECT_EQ(l->file_size, 69632u + (uint64_t{5} << 30) * 3264);
  EXPECT_LE(l->file_size, kMaxFileSize);
}

struct Known {
  uint64_t capacity;
  uint32_t max_key_size, max_value_size;
  // Expected:
  uint32_t key_words, value_words, copy_stride, slot_stride, bucket_stride;
  uint64_t bucket_count, file_size;
};

// copy = 8 * (2 + kw + vw); slot = 8 + 2 * copy; bucket = roundup(64 + 16 * slot, 64);
// buckets = roundup(max(2, ceil(floor((5c + 3) / 4) / 16)), 2);
// file = 69632 + buckets * bucket.
constexpr Known kKnown[] = {
    // The smallest table: (5 + 3) / 4 = 2 slots, 1 bucket, made 2.
    {1, 1, 1, 1, 1, 40, 88, 1472, 2, 69632 + 2 * 1472},
    // 1250 slots -> 79 buckets -> 80; 100 bytes -> 13 words.
    {1000, 32, 100, 4, 13, 160, 328, 5312, 80, 494592},
    // The worked example of docs/file_format.md.
    {1048576, 16, 64, 2, 8, 104, 216, 3520, 81920, 288428032},
    // The largest key and value: copy 8 * (3 + 8192 + 8388608) = 67174424 bytes; the
    // bucket stride still fits in 32 bits.
    {1, 65536, 67108864, 8192, 8388608, 67174424, 134348856, 2149581760, 2,
     69632 + uint64_t{2} * 2149581760},
    // 2^36 keys of 1 + 1 bytes: 5 * 2^34 slots.
    {uint64_t{1} << 36, 1, 1, 1, 1, 40, 88, 1472, uint64_t{5} << 30,
     69632 + (uint64_t{5} << 30) * 1472},
};

TEST(LayoutTest, KnownLayouts) {
  for (const Known& k : kKnown) {
    SCOPED_TRACE(::testing::Message() << k.capacity << "/" << k.max_key_size << "/"
                                      << k.max_value_size);
    const absl::StatusOr<Layout> l = ComputeLayout(k.capacity, k.max_key_size, k.max_value_size);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->capacity, k.capacity);
    EXPECT_EQ(l->max_key_size, k.max_key_size);
    EXPECT_EQ(l->max_value_size, k.max_value_size);
    EXPECT_EQ(l->key_words, k.key_words);
    EXPECT_EQ(l->value_words, k.value_words);
    EXPECT_EQ(l->copy_stride, k.copy_stride);
    EXPECT_EQ(l->slot_stride, k.slot_stride);
    EXPECT_EQ(l->bucket_stride, k.bucket_stride);
    EXPECT_EQ(l->bucket_count, k.bucket_count);
    EXPECT_EQ(l->proc_table_offset, 4096u);
    EXPECT_EQ(l->buckets_offset, 69632u);
    EXPECT_EQ(l->file_size, k.file_size);
  }
}

// For every capacity up to 20,000: the bucket count is even, at least 2, gives
// `capacity` keys at most 80% of the slots, and is the least such count.
TEST(LayoutTest, BucketCountIsTheLeastEvenCountAtEightyPercent) {
  for (uint64_t c = 1; c <= 20000; ++c) {
    const absl::StatusOr<Layout> l = ComputeLayout(c, 8, 8);
    ASSERT_TRUE(l.ok()) << l.status();
    const uint64_t n = l->bucket_count;
    ASSERT_EQ(n % 2, 0u) << c;
    ASSERT_GE(n, 2u) << c;
    // c <= 0.8 * 16 * n, in integers.
    ASSERT_LE(5 * c, 4 * kSlotsPerBucket * n) << c;
    if (n > 2) {
      ASSERT_GT(5 * c, 4 * kSlotsPerBucket * (n - 2)) << c;
    }
  }
}

// Every bucket line and every slot sits where docs/file_format.md says; the last slot
// of the last bucket ends the file (no trailing padding); alignment as promised.
TEST(LayoutTest, BucketAndSlotOffsets) {
  const absl::StatusOr<Layout> l = ComputeLayout(1048576, 16, 64);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(BucketOffset(*l, 0), 69632u);
  EXPECT_EQ(BucketOffset(*l, 1), 69632u + 3520);
  EXPECT_EQ(BucketOffset(*l, 40960), 69632u + 3520u * 40960);
  EXPECT_EQ(SlotOffset(*l, 0, 0), 69632u + 64);
  EXPECT_EQ(SlotOffset(*l, 1, 3), 69632u + 3520 + 64 + 3 * 216);
  EXPECT_EQ(SlotOffset(*l, 81919, 15) + l->slot_stride, l->file_size);
  for (const Known& k : kKnown) {
    const absl::StatusOr<Layout> m = ComputeLayout(k.capacity, k.max_key_size, k.max_value_size);
    ASSERT_TRUE(m.ok());
    const uint64_t last = m->bucket_count - 1;
    EXPECT_EQ(SlotOffset(*m, last, kSlotsPerBucket - 1) + m->slot_stride, m->file_size);
    for (uint64_t b : {uint64_t{0}, uint64_t{1}, last}) {
      EXPECT_EQ(BucketOffset(*m, b) % kCacheLine, 0u);
      for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
        EXPECT_EQ(SlotOffset(*m, b, i) % 8, 0u);
        EXPECT_EQ(SlotOffset(*m, b, i), BucketOffset(*m, b) + 64 + uint64_t{i} * k.slot_stride);
      }
    }
  }
}

// The structs in the mapping, field by field as docs/file_format.md lists them.
TEST(LayoutTest, FieldOffsets) {
  EXPECT_EQ(offsetof(ImmutableHeader, magic), 0u);
  EXPECT_EQ(offsetof(ImmutableHeader, format_version), 8u);
  EXPECT_EQ(offsetof(ImmutableHeader, endian_mark), 12u);
  EXPECT_EQ(offsetof(ImmutableHeader, header_size), 16u);
  EXPECT_EQ(offsetof(ImmutableHeader, hash_algorithm), 20u);
  EXPECT_EQ(offsetof(ImmutableHeader, hash_seed), 24u);
  EXPECT_EQ(offsetof(ImmutableHeader, capacity), 32u);
  EXPECT_EQ(offsetof(ImmutableHeader, bucket_count), 40u);
  EXPECT_EQ(offsetof(ImmutableHeader, slots_per_bucket), 48u);
  EXPECT_EQ(offsetof(ImmutableHeader, max_key_size), 52u);
  EXPECT_EQ(offsetof(ImmutableHeader, max_value_size), 56u);
  EXPECT_EQ(offsetof(ImmutableHeader, copy_stride), 60u);
  EXPECT_EQ(offsetof(ImmutableHeader, slot_stride), 64u);
  EXPECT_EQ(offsetof(ImmutableHeader, bucket_stride), 68u);
  EXPECT_EQ(offsetof(ImmutableHeader, proc_entries), 72u);
  EXPECT_EQ(offsetof(ImmutableHeader, proc_entry_size), 76u);
  EXPECT_EQ(offsetof(ImmutableHeader, proc_table_offset), 80u);
  EXPECT_EQ(offsetof(ImmutableHeader, buckets_offset), 88u);
  EXPECT_EQ(offsetof(ImmutableHeader, file_size), 96u);
  EXPECT_EQ(offsetof(ImmutableHeader, created_unix_ns), 104u);
  EXPECT_EQ(offsetof(ImmutableHeader, creator_pid), 112u);
  EXPECT_EQ(offsetof(ImmutableHeader, creator_uid), 116u);
  EXPECT_EQ(offsetof(ImmutableHeader, eviction), 120u);
  EXPECT_EQ(offsetof(ImmutableHeader, reserved), 124u);
  EXPECT_EQ(offsetof(FileHeader, checksum), 192u);
  EXPECT_EQ(offsetof(FileHeader, live), 256u);
  EXPECT_EQ(offsetof(ProcEntry, incarnation), 0u);
  EXPECT_EQ(offsetof(ProcEntry, pid), 4u);
  EXPECT_EQ(offsetof(ProcEntry, claimed_unix_ns), 8u);
  EXPECT_EQ(offsetof(ProcEntry, evictions), 16u);
  EXPECT_EQ(offsetof(ProcEntry, expired_erased), 24u);
  EXPECT_EQ(offsetof(BucketMeta, lock), 0u);
  EXPECT_EQ(offsetof(BucketMeta, clock), 8u);
  EXPECT_EQ(offsetof(BucketMeta, tags), 16u);
  EXPECT_EQ(offsetof(BucketMeta, change_seq), 32u);
  EXPECT_EQ(std::memcmp(kMagic, "SHMDICT1", 8), 0);
  EXPECT_EQ(kFormatVersion, 2u);
  EXPECT_EQ(kCopyHeaderWords, 3u);
  EXPECT_EQ(kCopyExpiryWord, 2u);
  EXPECT_EQ(kEvictNone, 0u);
  EXPECT_EQ(kEvictLrs, 1u);
  EXPECT_EQ(kHashXxh3_64, 1u);
}

// XXH3-64, seed 0, over the 192 bytes of the immutable part, and nothing else: every
// byte of it counts.
TEST(LayoutTest, HeaderChecksumCoversTheImmutablePart) {
  ImmutableHeader h;
  std::memset(&h, 0, sizeof(h));
  // XXH3-64 of 192 zero bytes, seed 0: a property of XXH3 itself (that the linked
  // xxHash is XXH3 as published is checked by tests/placement_test.cc).
  EXPECT_EQ(HeaderChecksum(h), 0x0C2722AA3370CD20ull);
  const unsigned char zeros[sizeof(ImmutableHeader)] = {};
  EXPECT_EQ(HeaderChecksum(h), XXH3_64bits(zeros, sizeof(zeros)));
  unsigned char bytes[sizeof(ImmutableHeader)];
  for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<unsigned char>(i * 7 + 1);
  std::memcpy(&h, bytes, sizeof(h));
  const uint64_t sum = HeaderChecksum(h);
  EXPECT_EQ(sum, XXH3_64bits(bytes, sizeof(bytes)));
  for (size_t i = 0; i < sizeof(bytes); ++i) {
    unsigned char flipped[sizeof(bytes)];
    std::memcpy(flipped, bytes, sizeof(bytes));
    flipped[i] ^= 0x10;
    ImmutableHeader g;
    std::memcpy(&g, flipped, sizeof(g));
    EXPECT_NE(HeaderChecksum(g), sum) << "byte " << i;
  }
}

}  // namespace
}  // namespace shmdict::internal
