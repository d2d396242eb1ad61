// Unit tests of the slot protocol's named steps (core/slot.h), each against a plain
// reference written out here: the tag byte compares, the cyclic free-slot search, the
// copy a sequence value selects, the wrap-safe validity check of a snapshot, and the
// sequence steps of a write. Single-threaded: they pin what each helper computes; the
// concurrency tests and the Relacy model check the orderings.
#include "core/slot.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/layout.h"
#include "core/table.h"
#include "core/words.h"
#include "gtest/gtest.h"

namespace shmdict::internal {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};  // 2^64 - 1

// Reference: bit i set iff byte i of `w` (least significant first) equals `tag`.
uint32_t MatchLoop(uint64_t w, uint8_t tag) {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < 8; ++i) {
    if (static_cast<uint8_t>(w >> (8 * i)) == tag) mask |= uint32_t{1} << i;
  }
  return mask;
}

uint64_t Repeat(uint8_t a, uint8_t b) {
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i) w |= uint64_t{i % 2 == 0 ? a : b} << (8 * i);
  return w;
}

uint64_t WithByte(uint64_t w, uint32_t i, uint8_t v) {
  return (w & ~(uint64_t{0xFF} << (8 * i))) | (uint64_t{v} << (8 * i));
}

// ---------------------------------------------------------------------------------
// Tags

// Every pair of adjacent byte values, in every adjacent pair of positions (words
// abababab and babababa), against a handful of tags: this is where a "has zero byte"
// trick with borrow propagation reports a false match (a byte equal to the tag
// followed by one that differs from it in the low bit only, or by 0x80).
TEST(SlotTest, MatchBytesIsExactForEveryPairOfAdjacentBytes) {
  const uint8_t tags[] = {0x00, 0x01, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x5A};
  uint64_t mismatches = 0;
  for (uint8_t tag : tags) {
    for (uint32_t a = 0; a < 256; ++a) {
      for (uint32_t b = 0; b < 256; ++b) {
        for (uint64_t w : {Repeat(a, b), Repeat(b, a)}) {
          if (MatchBytes(w, tag) != MatchLoop(w, tag)) {
            if (++mismatches <= 5) {
              ADD_FAILURE() << std::hex << "MatchBytes(0x" << w << ", 0x" << uint32_t{tag}
                            << ") = 0x" << MatchBytes(w, tag) << ", expected 0x"
                            << MatchLoop(w, tag);
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

// For every tag value and every one of the 16 byte positions: random words with the
// tag planted at that position (and, half the time, at a few more), through both
// implementations (Tags::Match uses an SSE2 compare where available, MatchBytes the
// word trick) and the reference loop.
TEST(SlotTest, TagsMatchAgreesWithMatchBytesAndTheReference) {
  std::mt19937_64 rng(20240611);
  for (uint32_t tag = 0; tag < 256; ++tag) {
    for (uint32_t pos = 0; pos < kSlotsPerBucket; ++pos) {
      for (int round = 0; round < 8; ++round) {
        Tags t{rng(), rng()};
        uint64_t& word = pos < 8 ? t.w0 : t.w1;
        word = WithByte(word, pos % 8, static_cast<uint8_t>(tag));
        if (round % 2 == 1) {
          const uint32_t extra = static_cast<uint32_t>(rng() % kSlotsPerBucket);
          uint64_t& other = extra < 8 ? t.w0 : t.w1;
          other = WithByte(other, extra % 8, static_cast<uint8_t>(tag));
        }
        const uint8_t g = static_cast<uint8_t>(tag);
        const uint32_t want = MatchLoop(t.w0, g) | (MatchLoop(t.w1, g) << 8);
        ASSERT_NE(want & (uint32_t{1} << pos), 0u);
        ASSERT_EQ(t.Match(g), want) << "tag " << tag << " pos " << pos;
        ASSERT_EQ(MatchBytes(t.w0, g) | (MatchBytes(t.w1, g) << 8), want)
            << "tag " << tag << " pos " << pos;
        for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
          ASSERT_EQ(t.At(i), static_cast<uint8_t>((i < 8 ? t.w0 : t.w1) >> (8 * (i % 8))));
        }
      }
    }
  }
}

TEST(SlotTest, FreeMaskOccupiedAndAllFree) {
  Tags t{0, 0};
  EXPECT_TRUE(t.AllFree());
  EXPECT_EQ(t.FreeMask(), 0xFFFFu);
  EXPECT_EQ(t.Occupied(), 0u);
  // Slots 0, 7, 8 and 15 taken (the first and last byte of each word).
  t.w0 = 0x2A000000000000FFull;
  t.w1 = 0x0100000000000080ull;
  EXPECT_FALSE(t.AllFree());
  EXPECT_EQ(t.FreeMask(), 0xFFFFu & ~0x8181u);
  EXPECT_EQ(t.Occupied(), 4u);
  EXPECT_EQ(t.At(0), 0xFF);
  EXPECT_EQ(t.At(7), 0x2A);
  EXPECT_EQ(t.At(8), 0x80);
  EXPECT_EQ(t.At(15), 0x01);
  EXPECT_EQ(t.At(1), 0);
  EXPECT_EQ(t.Match(0x2A), 1u << 7);
  EXPECT_EQ(t.Match(0x01), 1u << 15);
}

// StoreTag changes exactly one byte; the three loads see it.
TEST(SlotTest, StoreTagChangesOneByte) {
  BucketMeta m{};
  std::mt19937_64 rng(7);
  m.tags[0].store(rng());
  m.tags[1].store(rng());
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    for (uint32_t tag : {0u, 1u, 0x80u, 0xFFu, static_cast<uint32_t>(rng() & 0xFF)}) {
      const Tags before = LoadTagsLocked(m);
      StoreTag(m, i, static_cast<uint8_t>(tag));
      const Tags after = LoadTags(m);
      for (uint32_t j = 0; j < kSlotsPerBucket; ++j) {
        ASSERT_EQ(after.At(j), j == i ? tag : before.At(j)) << "slot " << i << " at " << j;
      }
      EXPECT_EQ(TagLocked(m, i), tag);
      EXPECT_EQ(TagHint(m, i), tag);
      const Tags hint = LoadTagsHint(m);
      EXPECT_EQ(hint.w0, after.w0);
      EXPECT_EQ(hint.w1, after.w1);
    }
  }
  // Little-endian: slot i's tag is the byte at offset 16 + i of the metadata line
  // (docs/file_format.md).
  StoreTag(m, 9, 0xC3);
  unsigned char bytes[sizeof(BucketMeta)];
  std::memcpy(bytes, static_cast<const void*>(&m), sizeof(bytes));
  EXPECT_EQ(bytes[16 + 9], 0xC3);
}

// Every nonzero 16-bit mask, every start.
TEST(SlotTest, FirstFreeFromIsTheFirstFreeSlotCyclically) {
  for (uint32_t mask = 1; mask <= 0xFFFF; ++mask) {
    for (uint32_t from = 0; from < kSlotsPerBucket; ++from) {
      uint32_t want = from;
      while (((mask >> want) & 1) == 0) want = (want + 1) % kSlotsPerBucket;
      if (FirstFreeFrom(mask, from) != want) {
        FAIL() << std::hex << "FirstFreeFrom(0x" << mask << ", " << std::dec << from
               << ") = " << FirstFreeFrom(mask, from) << ", expected " << want;
      }
    }
  }
  // Pinned: the home itself when free; the wrap from 15 to 0.
  EXPECT_EQ(FirstFreeFrom(0x0010, 4), 4u);
  EXPECT_EQ(FirstFreeFrom(0x0003, 15), 0u);
  EXPECT_EQ(FirstFreeFrom(0x8000, 0), 15u);
}

// ---------------------------------------------------------------------------------
// Copies

// A slot in ordinary memory: the sequence word and two copies of `stride` words.
struct FakeSlot {
  explicit FakeSlot(uint64_t stride) : stride_words(stride), words(1 + 2 * stride, 0) {}
  uint64_t* seq() { return words.data(); }
  uint64_t* copy(int k) { return words.data() + 1 + k * stride_words; }
  uint64_t stride_words;
  std::vector<uint64_t> words;
};

TEST(SlotTest, CopyAtSelectsCopyBitOneOfTheSequence) {
  FakeSlot slot(5);
  // s = 0, 1: copy 0 (1: a write of copy 1 in progress); 2, 3: copy 1; 4, 5: copy 0 ...
  const int want[] = {0, 0, 1, 1, 0, 0, 1, 1, 0, 0};
  for (uint64_t s = 0; s < 10; ++s) {
    EXPECT_EQ(CopyAt(slot.seq(), s, slot.stride_words), slot.copy(want[s])) << s;
  }
  // The same near 2^64.
  EXPECT_EQ(CopyAt(slot.seq(), kMax - 3, slot.stride_words), slot.copy(0));
  EXPECT_EQ(CopyAt(slot.seq(), kMax - 2, slot.stride_words), slot.copy(0));
  EXPECT_EQ(CopyAt(slot.seq(), kMax - 1, slot.stride_words), slot.copy(1));
  EXPECT_EQ(CopyAt(slot.seq(), kMax, slot.stride_words), slot.copy(1));
  // Const and non-const both.
  const uint64_t* cseq = slot.seq();
  EXPECT_EQ(CopyAt(cseq, 2, slot.stride_words), slot.copy(1));
}

// Through a write: the spare copy of an even s is the one readers do not use; while
// the write is in progress (s + 1) readers keep the old copy; the commit (s + 2)
// switches them to the spare. A roll-forward of an odd s (s + 3) keeps the copy that
// was current before the interrupted write.
TEST(SlotTest, WriteStepsSwitchCopiesAtTheCommitOnly) {
  FakeSlot slot(3);
  for (uint64_t s : {uint64_t{0}, uint64_t{2}, uint64_t{40}, kMax - 3, kMax - 1}) {
    uint64_t* seq = slot.seq();
    const uint64_t* current = CopyAt(seq, s, slot.stride_words);
    uint64_t* spare = SpareCopyAt(seq, s, slot.stride_words);
    EXPECT_NE(spare, current) << s;
    EXPECT_EQ(CopyAt(seq, s + 1, slot.stride_words), current) << s;
    EXPECT_EQ(CopyAt(seq, s + 2, slot.stride_words), spare) << s;
    // An interrupted write at s + 1, rolled forward to s + 4.
    EXPECT_EQ(CopyAt(seq, s + 1 + 3, slot.stride_words), current) << s;
  }
}

TEST(SlotTest, CopyLengthsAndKeyCompare) {
  EXPECT_EQ(CopyLengths(0, 0), 1u);
  EXPECT_EQ(CopyLengths(5, 7), 6u | (uint64_t{7} << 32));
  EXPECT_EQ(CopyValueLength(CopyLengths(5, 7)), 7u);
  EXPECT_EQ(CopyValueLength(CopyLengths(1, 0xFFFFFFFFu)), 0xFFFFFFFFu);

  const uint32_t key_words = 3;  // room for 24-byte keys
  std::vector<uint64_t> copy(kCopyHeaderWords + key_words + 2, 0);
  const uint64_t* c = copy.data();
  auto write = [&](std::string_view key) {
    std::fill(copy.begin(), copy.end(), 0);
    copy[1] = CopyLengths(key.size(), 0);
    CopyToWords(copy.data() + kCopyHeaderWords, key.data(), key.size());
  };
  // An empty copy (word 1 = 0) holds no key, not even the empty one.
  EXPECT_FALSE(CopyHoldsKey(c, ""));
  EXPECT_FALSE(CopyHoldsKey(c, "a"));
  write("");
  EXPECT_TRUE(CopyHoldsKey(c, ""));
  EXPECT_FALSE(CopyHoldsKey(c, std::string_view("\0", 1)));
  write("hello, world");
  EXPECT_TRUE(CopyHoldsKey(c, "hello, world"));
  EXPECT_TRUE(CopyKeyIs(c, copy[1], "hello, world"));
  EXPECT_FALSE(CopyHoldsKey(c, "hello, worle"));
  EXPECT_FALSE(CopyHoldsKey(c, "hello, worl"));   // a prefix: the length differs
  EXPECT_FALSE(CopyHoldsKey(c, "hello, world!"));
  EXPECT_FALSE(CopyKeyIs(c, CopyLengths(11, 0), "hello, world"));
  // Only the key's bytes of its last word compare (bytes 12..15 are padding).
  copy[kCopyHeaderWords + 1] |= uint64_t{0xAB} << 56;
  EXPECT_TRUE(CopyHoldsKey(c, "hello, world"));
  // A key of exactly key_words words.
  const std::string full(8 * key_words, 'k');
  write(full);
  EXPECT_TRUE(CopyHoldsKey(c, full));
  EXPECT_FALSE(CopyHoldsKey(c, full.substr(1) + "j"));
}

// ---------------------------------------------------------------------------------
// The validated read

// Reference for the validity of a snapshot taken at s1 and checked at s2: the copy s1
// selects is rewritten only by a write that begins after the one in progress at s1
// (if any) committed. Counted in steps from s1 (wrapping at 2^64 as the word does):
// from an even s1, s1 + 1 (a write began, on the other copy) and s1 + 2 (it
// committed) are harmless and s1 + 3 begins a write on the copy read; from an odd s1,
// s1 + 1 (the commit) is harmless and s1 + 2 begins one. A sequence below s1 (steps
// "backwards", >= 2^63) never comes from the protocol: invalid.
bool ValidReference(uint64_t s1, uint64_t s2) {
  const uint64_t steps = s2 - s1;  // mod 2^64
  const uint64_t harmless = (s1 % 2 == 0) ? 2 : 1;
  return steps <= harmless;
}

TEST(SlotTest, SlotReadValidNearTheTopOfTheSequence) {
  uint64_t seq = 0;
  auto valid = [&seq](uint64_t s1, uint64_t s2) {
    seq = s2;
    return SlotReadValid(&seq, s1);
  };
  // The cases that a non-wrapping check `s2 <= (s1 | 1) + 1` gets wrong.
  const uint64_t s1 = kMax - 1;  // 2^64 - 2, even
  EXPECT_TRUE(valid(s1, s1));
  EXPECT_TRUE(valid(s1, s1 + 1));      // 2^64 - 1: a write began on the other copy
  EXPECT_TRUE(valid(s1, s1 + 2));      // 0: and committed
  EXPECT_FALSE(valid(s1, s1 + 3));     // 1: the next write began, on the copy read
  EXPECT_FALSE(valid(s1, s1 + 4));     // 2
  EXPECT_FALSE(valid(s1, s1 - 2));     // backwards
  EXPECT_TRUE(valid(kMax, kMax));      // odd: a write in progress
  EXPECT_TRUE(valid(kMax, 0));         // it committed
  EXPECT_FALSE(valid(kMax, 1));        // the next began
  EXPECT_FALSE(valid(kMax, kMax - 1));
  // Low values, as most tables see them.
  EXPECT_TRUE(valid(0, 0));
  EXPECT_TRUE(valid(0, 2));
  EXPECT_FALSE(valid(0, 3));
  EXPECT_TRUE(valid(5, 6));
  EXPECT_FALSE(valid(5, 7));
  EXPECT_FALSE(valid(6, 5));

  // Around 0, 2^63 and 2^64: every s1 in a window, s2 from s1 - 8 to s1 + 8.
  for (uint64_t base : {uint64_t{0}, uint64_t{1} << 63, uint64_t{0} - 16}) {
    for (uint64_t i = 0; i < 32; ++i) {
      const uint64_t a = base + i;
      for (uint64_t d = 0; d <= 16; ++d) {
        const uint64_t b = a - 8 + d;
        ASSERT_EQ(valid(a, b), ValidReference(a, b)) << "s1 " << a << " s2 " << b;
      }
    }
  }
}

TEST(SlotTest, ReadSlotReadsTheSelectedCopyAndRetriesATornSnapshot) {
  FakeSlot slot(2);
  slot.copy(0)[0] = 100;
  slot.copy(1)[0] = 101;
  *slot.seq() = 6;  // copy 1
  int calls = 0;
  uint64_t got = ReadSlot(slot.seq(), slot.stride_words, [&](const uint64_t* c) {
    ++calls;
    return LoadWord(c);
  });
  EXPECT_EQ(got, 101u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(SlotReadBegin(slot.seq()), 6u);

  // The first attempt's snapshot is torn: while it reads, a write commits (7, 8: the
  // reader's copy becomes the spare) and the next begins (9, on the copy being read).
  // The retry reads the copy that 9 selects: the stable one.
  calls = 0;
  const uint64_t retries_before = ReadRetriesOfThisThread();
  got = ReadSlot(slot.seq(), slot.stride_words, [&](const uint64_t* c) {
    if (++calls == 1) {
      EXPECT_EQ(c, slot.copy(1));
      slot.copy(0)[0] = 200;
      *slot.seq() = 9;
    }
    return LoadWord(c);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(got, 200u);
  EXPECT_EQ(ReadRetriesOfThisThread(), retries_before + 1);

  // A write that only begins (7) while the reader reads does not tear it.
  *slot.seq() = 6;
  calls = 0;
  got = ReadSlot(slot.seq(), slot.stride_words, [&](const uint64_t* c) {
    ++calls;
    *slot.seq() = 7;
    return LoadWord(c);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, 101u);
}

// ---------------------------------------------------------------------------------
// The write's sequence steps

TEST(SlotTest, SlotWriteBeginOnAnEvenSequence) {
  uint64_t seq = 4;
  EXPECT_EQ(SlotSeqLocked(&seq), 4u);
  const uint64_t s = SlotWriteBegin(&seq);
  EXPECT_EQ(s, 4u);
  EXPECT_EQ(seq, 5u);
  SlotWriteCommit(&seq, s);
  EXPECT_EQ(seq, 6u);
}

// An odd sequence under a held lock (damage) is rolled forward (s + 3) before the
// write begins, so that the copy the write fills is not the one readers use.
TEST(SlotTest, SlotWriteBeginRollsAnOddSequenceForward) {
  for (uint64_t odd : {uint64_t{1}, uint64_t{5}, uint64_t{7}, kMax - 2, kMax}) {
    FakeSlot slot(2);
    uint64_t* seq = slot.seq();
    *seq = odd;
    const uint64_t* readers_copy = CopyAt(seq, odd, slot.stride_words);
    const uint64_t s = SlotWriteBegin(seq);
    EXPECT_EQ(s, odd + 3) << odd;  // wraps: kMax rolls forward to 2
    EXPECT_EQ(s % 2, 0u) << odd;
    EXPECT_EQ(*seq, odd + 4) << odd;
    // Readers still read the copy they read before; the write fills the other one.
    EXPECT_EQ(CopyAt(seq, *seq, slot.stride_words), readers_copy) << odd;
    EXPECT_NE(SpareCopyAt(seq, s, slot.stride_words), readers_copy) << odd;
    SlotWriteCommit(seq, s);
    EXPECT_EQ(*seq, odd + 5) << odd;
    EXPECT_NE(CopyAt(seq, *seq, slot.stride_words), readers_copy) << odd;
  }
}

TEST(SlotTest, RollForwardSlotAddsThree) {
  uint64_t seq = 9;
  RollForwardSlot(&seq, 9);
  EXPECT_EQ(seq, 12u);
  seq = kMax;
  RollForwardSlot(&seq, kMax);
  EXPECT_EQ(seq, 2u);
}

}  // namespace
}  // namespace shmdict::internal
