// The opcodes of ops_fuzz's input (the format is described atop ops_fuzz.cc), shared by
// the target and by corpus_gen.cc, which writes its seed corpus.
//
// The numbers are part of the committed corpus (tests/fuzz/corpus/ops_fuzz/): each seed
// file is a sequence of these bytes, so renumbering an opcode silently changes what
// every seed means. Hence each is written out, and the switch in ops_fuzz.cc rejects
// duplicates. A new opcode takes the next number, before kNumOps: the target reads an
// opcode byte mod kNumOps, and every seed's opcodes are below the old kNumOps, so they
// keep their meaning.
#ifndef SHMDICT_TESTS_FUZZ_OPS_H_
#define SHMDICT_TESTS_FUZZ_OPS_H_

#include <cstdint>
#include <iterator>

namespace shmdict::fuzz {

enum OpCode : uint8_t {
  kPut = 0,
  kInsert = 1,
  kReplace = 2,
  kErase = 3,
  kCompareAndSwap = 4,
  kFetchAdd = 5,
  kGet = 6,
  kGetReadOnly = 7,
  kGetInto = 8,
  kGetMany = 9,
  kVersion = 10,
  kCount = 11,
  kForEach = 12,
  kVerify = 13,
  kStats = 14,
  kNumOps = 15,
};

// For messages: the operation an opcode stands for.
inline const char* OpName(uint8_t op) {
  static constexpr const char* kNames[] = {"Put",
                                           "Insert",
                                           "Replace",
                                           "Erase",
                                           "CompareAndSwap",
                                           "FetchAdd",
                                           "Get",
                                           "Get (read-only handle)",
                                           "GetInto",
                                           "GetMany",
                                           "Version",
                                           "Count",
                                           "ForEach",
                                           "Verify",
                                           "GetStats"};
  static_assert(std::size(kNames) == kNumOps, "one name per opcode");
  return op < kNumOps ? kNames[op] : "?";
}

}  // namespace shmdict::fuzz

#endif  // SHMDICT_TESTS_FUZZ_OPS_H_
