// Fuzz target: a sequence of operations on a small table, checked against a model.
//
// The input picks one of four table shapes, then a sequence of operations (Put,
// Insert, Replace, Erase, CompareAndSwap, FetchAdd, Get, GetInto, GetMany, Version,
// Contains, WaitForChange with timeout 0, Count, ForEach, Verify, GetStats) on keys and
// values of lengths around the table's maxima. Each is applied to the table and to a
// model (a std::unordered_map), and the outcomes must agree exactly:
//   - values and versions read back (through the writing handle and through a second,
//     read-only handle on the same file);
//   - error codes: kExists, kNotFound, kVersion, kTooBig, kType, kFull and nothing
//     else; a failed operation changes nothing;
//   - versions are never 0 and strictly increase per key, across erase and re-insert;
//   - kFull exactly when both of the key's buckets are full. The model places keys as
//     core/table.h says the engine does: a new key goes to the candidate bucket with
//     more free slots, the left one on a tie, and never moves; buckets hold 16 slots;
//   - Count and ForEach equal the model; at the end Verify finds the table clean and
//     BucketFill equals the model's bucket occupancy.
// Tables are tiny (2 to 16 buckets) so that full buckets are common.
//
// Input format: byte 0 picks the shape (mod 4); then operations, each an opcode byte
// (mod kNumOps; the numbers are in tests/fuzz/ops.h) followed by its operand bytes (key
// byte, value byte, a parameter byte).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/layout.h"
#include "core/table.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ops.h"

namespace shmdict::fuzz {
namespace {

using internal::kSlotsPerBucket;

struct Shape {
  uint64_t capacity;
  uint32_t max_key_size;
  uint32_t max_value_size;
};

// 2 buckets with 1-byte keys (257 keys for 32 slots); 2 buckets; 6 buckets; 16
// buckets with values too short for FetchAdd.
constexpr std::array<Shape, 4> kShapes = {{{1, 1, 16}, {1, 4, 8}, {60, 8, 16}, {200, 16, 4}}};

// The file of each shape: a header with the fixed seed, then zeros (an empty table).
const std::string& ShapeHeader(size_t shape, uint64_t* file_size) {
  static const std::array<std::pair<std::string, uint64_t>, kShapes.size()>* const headers = [] {
    auto* h = new std::array<std::pair<std::string, uint64_t>, kShapes.size()>();
    for (size_t i = 0; i < kShapes.size(); ++i) {
      const std::string bytes = MakeTableBytes(kShapes[i].capacity, kShapes[i].max_key_size,
                                               kShapes[i].max_value_size, kFuzzSeed, nullptr);
      (*h)[i] = {bytes.substr(0, internal::kHeaderSize), bytes.size()};
    }
    return h;
  }();
  *file_size = (*headers)[shape].second;
  return (*headers)[shape].first;
}

struct ModelEntry {
  std::string value;
  uint64_t version = 0;
  uint64_t bucket = 0;
};

class Checker {
 public:
  Checker(Dict& d, const Dict& ro) : d_(d), ro_(ro), t_(*internal::TableOf(d)) {
    occupancy_.assign(t_.layout().bucket_count, 0);
  }

  void Run(Input& in) {
    constexpr int kMaxOps = 2000;
    for (step_ = 0; step_ < kMaxOps && !in.empty(); ++step_) {
      const uint8_t op = in.Byte() % kNumOps;
      op_ = op;
      switch (op) {
        case kPut:
        case kInsert:
        case kReplace:
        case kCompareAndSwap: {
          const std::string key = Key(in.Byte());
          const std::string value = Value(in.Byte());
          Write(static_cast<OpCode>(op), key, value, in.Byte());
          CheckKey(key);
          break;
        }
        case kErase: {
          const std::string key = Key(in.Byte());
          Erase(key);
          CheckKey(key);
          break;
        }
        case kFetchAdd: {
          const std::string key = Key(in.Byte());
          FetchAdd(key, in.Byte());
          CheckKey(key);
          break;
        }
        case kGet:
          CheckKey(Key(in.Byte()));
          break;
        case kGetReadOnly:
          CheckGet(ro_, Key(in.Byte()), "read-only handle");
          break;
        case kGetInto:
          CheckGetInto(Key(in.Byte()), in.Byte());
          break;
        case kGetMany:
          CheckGetMany(in);
          break;
        case kVersion:
          CheckVersion(Key(in.Byte()));
          break;
        case kCount:
          Expect(
              d_.Count() == model_.size() && ro_.Count() == model_.size(),
              "Count " + std::to_string(d_.Count()) + ", model " + std::to_string(model_.size()));
          break;
        case kForEach:
          CheckForEach(d_);
          break;
        case kVerify:
          CheckVerify();
          break;
        case kStats:
          CheckStats();
          break;
        default:  // op < kNumOps, and every opcode has its case above
          FUZZ_CHECK(false, "opcode without a case: " + std::to_string(op));
      }
    }
    op_ = kNumOps;
    CheckForEach(d_);
    CheckForEach(ro_);
    CheckVerify();
    CheckStats();
    if (Verbose()) {
      std::string tally;
      for (size_t c = 0; c < outcomes_.size(); ++c) {
        if (outcomes_[c] == 0) continue;
        tally += " " + std::string(ErrorCodeName(static_cast<ErrorCode>(-static_cast<int>(c)))) +
                 "=" + std::to_string(outcomes_[c]);
      }
      std::fprintf(stderr, "  %d operations, %zu keys at the end; outcomes:%s\n", step_,
                   model_.size(), tally.c_str());
    }
  }

 private:
  const internal::Layout& layout() const { return t_.layout(); }

  // The context of a failure: the operation's index and name.
  void Expect(bool ok, const std::string& what) {
    FUZZ_CHECK(ok, "operation " + std::to_string(step_) + " (" + OpName(op_) + "): " + what);
  }

  // Keys: byte >> 6 picks the length (1-3 bytes; the maximum; the maximum + 1 or,
  // for most of the byte's values, 0 to the maximum; the maximum - 1); the low 6 bits
  // pick the bytes, so short keys collide often.
  std::string Key(uint8_t b) const {
    const uint32_t id = b & 0x3F;
    const uint32_t max = layout().max_key_size;
    size_t len = 0;
    switch (b >> 6) {
      case 0:
        len = 1 + id % 3;
        break;
      case 1:
        len = max;
        break;
      case 2:
        len = id < 8 ? max + 1 : id % (max + 1);
        break;
      default:
        len = max > 0 ? max - 1 : 0;
        break;
    }
    std::string k(len, '\0');
    for (size_t j = 0; j < len; ++j) k[j] = static_cast<char>(id * 3 + j * 29);
    return k;
  }

  // Values: byte >> 5 picks the length (0, 1, 7, 8, 8, the maximum - 1, the maximum,
  // the maximum + 1), the low bits and a running counter the bytes.
  std::string Value(uint8_t b) {
    const uint32_t max = layout().max_value_size;
    const size_t lens[8] = {0, 1, 7, 8, 8, max - 1, max, size_t{max} + 1};
    std::string v(lens[b >> 5], '\0');
    ++counter_;
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((b & 31) + j + counter_);
    return v;
  }

  const ModelEntry* Find(const std::string& key) const {
    const auto it = model_.find(key);
    return it == model_.end() ? nullptr : &it->second;
  }

  // Where a new key goes: the candidate bucket with more free slots, the left one on a
  // tie; -1 when both are full.
  int64_t Placement(const std::string& key) const {
    uint64_t b1 = 0, b2 = 0;
    t_.BucketsOf(key, &b1, &b2);
    const uint32_t free1 = kSlotsPerBucket - occupancy_[b1];
    const uint32_t free2 = kSlotsPerBucket - occupancy_[b2];
    if (free1 == 0 && free2 == 0) return -1;
    return static_cast<int64_t>(free1 >= free2 ? b1 : b2);
  }

  void ExpectCode(const absl::Status& s, ErrorCode want) {
    ++outcomes_[-static_cast<int>(want)];
    Expect(ErrorCodeOf(s) == want,
           "got " + Describe(s) + ", the model expects " + std::string(ErrorCodeName(want)));
  }

  // Records a successful write of `key` in the model. `bucket` is where a new key went.
  void Commit(const std::string& key, const std::string& value, uint64_t version, int64_t bucket) {
    Expect(version != 0, "a write returned version 0");
    uint64_t& last = last_version_[key];
    Expect(version > last, "version " + std::to_string(version) + " after version " +
                               std::to_string(last) + " of the same key");
    last = version;
    auto it = model_.find(key);
    if (it == model_.end()) {
      Expect(bucket >= 0, "inserted a key the model says does not fit");
      ++occupancy_[static_cast<uint64_t>(bucket)];
      model_[key] = {value, version, static_cast<uint64_t>(bucket)};
    } else {
      it->second.value = value;
      it->second.version = version;
    }
  }

  void Write(OpCode op, const std::string& key, const std::string& value, uint8_t param) {
    const ModelEntry* e = Find(key);
    const uint64_t current = e != nullptr ? e->version : 0;
    uint64_t expected = 0;
    absl::StatusOr<uint64_t> v = 0;
    switch (op) {
      case kPut:
        v = d_.Put(key, value);
        break;
      case kInsert:
        v = d_.Insert(key, value);
        break;
      case kReplace:
        v = d_.Replace(key, value);
        break;
      default: {
        // The current version, 0, one past the current, or the key's last version
        // ever (stale after an erase).
        const uint64_t last = last_version_.count(key) ? last_version_.at(key) : 0;
        const uint64_t choices[4] = {current, 0, current + 1, last};
        expected = choices[param % 4];
        v = d_.CompareAndSwap(key, expected, value);
        break;
      }
    }
    if (key.size() > layout().max_key_size || value.size() > layout().max_value_size) {
      return ExpectCode(v.status(), ErrorCode::kTooBig);
    }
    if (op == kInsert && e != nullptr) return ExpectCode(v.status(), ErrorCode::kExists);
    if (op == kReplace && e == nullptr) return ExpectCode(v.status(), ErrorCode::kNotFound);
    if (op == kCompareAndSwap && expected != current) {
      return ExpectCode(v.status(), ErrorCode::kVersion);
    }
    const int64_t bucket = e != nullptr ? 0 : Placement(key);
    if (bucket < 0) return ExpectCode(v.status(), ErrorCode::kFull);
    ExpectCode(v.status(), ErrorCode::kOk);
    Commit(key, value, *v, bucket);
  }

  void Erase(const std::string& key) {
    const absl::Status s = d_.Erase(key);
    if (key.size() > layout().max_key_size) return ExpectCode(s, ErrorCode::kTooBig);
    const auto it = model_.find(key);
    if (it == model_.end()) return ExpectCode(s, ErrorCode::kNotFound);
    ExpectCode(s, ErrorCode::kOk);
    --occupancy_[it->second.bucket];
    model_.erase(it);
  }

  void FetchAdd(const std::string& key, uint8_t param) {
    const int64_t deltas[4] = {static_cast<int8_t>(param), std::numeric_limits<int64_t>::max(),
                               std::numeric_limits<int64_t>::min(), -1};
    const int64_t delta = param % 8 < 4 ? static_cast<int8_t>(param) : deltas[param % 4];
    uint64_t version = 0;
    const absl::StatusOr<int64_t> r = d_.FetchAdd(key, delta, &version);
    if (key.size() > layout().max_key_size || layout().max_value_size < 8) {
      return ExpectCode(r.status(), ErrorCode::kTooBig);
    }
    const ModelEntry* e = Find(key);
    uint64_t old = 0;
    if (e != nullptr) {
      if (e->value.size() != 8) return ExpectCode(r.status(), ErrorCode::kType);
      std::memcpy(&old, e->value.data(), 8);
    }
    const int64_t bucket = e != nullptr ? 0 : Placement(key);
    if (bucket < 0) return ExpectCode(r.status(), ErrorCode::kFull);
    ExpectCode(r.status(), ErrorCode::kOk);
    const uint64_t sum = old + static_cast<uint64_t>(delta);  // wraps, as documented
    Expect(static_cast<uint64_t>(*r) == sum,
           "FetchAdd returned " + std::to_string(*r) + ", the model " + std::to_string(sum));
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &sum, 8);
    Commit(key, bytes, version, bucket);
  }

  void CheckGet(const Dict& d, const std::string& key, const char* how) {
    const ModelEntry* e = Find(key);
    uint64_t version = 0;
    const absl::StatusOr<std::string> got = d.Get(key, &version);
    if (e == nullptr) {
      Expect(ErrorCodeOf(got.status()) == ErrorCode::kNotFound,
             std::string("Get through the ") + how +
                 " of an absent key: " + (got.ok() ? "found" : Describe(got.status())));
      return;
    }
    Expect(got.ok() && *got == e->value && version == e->version,
           std::string("Get through the ") + how + ": " +
               (got.ok() ? "version " + std::to_string(version) + " and " +
                               std::to_string(got->size()) + " bytes"
                         : Describe(got.status())) +
               ", the model has version " + std::to_string(e->version) + " and " +
               std::to_string(e->value.size()) + " bytes");
  }

  void CheckKey(const std::string& key) { CheckGet(d_, key, "writing handle"); }

  void CheckGetInto(const std::string& key, uint8_t cap_byte) {
    const size_t cap = cap_byte % (layout().max_value_size + 2);
    std::vector<char> buf(cap + 1, '\x5a');
    size_t len = 0;
    uint64_t version = 0;
    const absl::Status s = d_.GetInto(key, buf.data(), cap, &len, &version);
    const ModelEntry* e = Find(key);
    if (e == nullptr) return ExpectCode(s, ErrorCode::kNotFound);
    Expect(len == e->value.size() && version == e->version, "GetInto's length or version");
    if (e->value.size() > cap) return ExpectCode(s, ErrorCode::kBuffer);
    ExpectCode(s, ErrorCode::kOk);
    Expect(std::memcmp(buf.data(), e->value.data(), e->value.size()) == 0 && buf[cap] == '\x5a',
           "GetInto's bytes");
  }

  void CheckGetMany(Input& in) {
    const size_t n = in.Byte() % 20;
    std::vector<std::string> keys;
    for (size_t i = 0; i < n; ++i) keys.push_back(Key(in.Byte()));
    const size_t cap = in.Byte() % (layout().max_value_size + 2);
    std::vector<std::string_view> views(keys.begin(), keys.end());
    std::vector<std::vector<char>> storage(n, std::vector<char>(cap));
    std::vector<absl::Span<char>> bufs;
    for (auto& s : storage) bufs.emplace_back(s.data(), s.size());
    std::vector<GetManyResult> results(n);
    const absl::StatusOr<size_t> found = d_.GetMany(views, bufs, absl::MakeSpan(results));
    ExpectCode(found.status(), ErrorCode::kOk);
    size_t expect_found = 0;
    for (size_t i = 0; i < n; ++i) {
      const ModelEntry* e = Find(keys[i]);
      if (e == nullptr) {
        ExpectCode(results[i].status, ErrorCode::kNotFound);
        continue;
      }
      ++expect_found;
      Expect(results[i].value_len == e->value.size() && results[i].version == e->version,
             "GetMany's length or version");
      if (e->value.size() > cap) {
        ExpectCode(results[i].status, ErrorCode::kBuffer);
      } else {
        ExpectCode(results[i].status, ErrorCode::kOk);
        Expect(e->value.empty() ||
                   std::memcmp(storage[i].data(), e->value.data(), e->value.size()) == 0,
               "GetMany's bytes");
      }
    }
    Expect(*found == expect_found, "GetMany found " + std::to_string(*found) + " keys");
  }

  void CheckVersion(const std::string& key) {
    const ModelEntry* e = Find(key);
    const uint64_t want = e != nullptr ? e->version : 0;
    Expect(d_.Version(key) == want && ro_.Version(key) == want, "Version");
    Expect(d_.Contains(key) == (e != nullptr) && ro_.Contains(key) == (e != nullptr), "Contains");
    const bool oversized = key.size() > layout().max_key_size;
    for (const Dict* d : {static_cast<const Dict*>(&d_), &ro_}) {
      ExpectCode(d->WaitForChange(key, want, 0),
                 oversized ? ErrorCode::kTooBig : ErrorCode::kTimeout);
      ExpectCode(d->WaitForChange(key, want + 1, 0),
                 oversized ? ErrorCode::kTooBig : ErrorCode::kOk);
    }
  }

  void CheckForEach(const Dict& d) {
    std::unordered_map<std::string, int> seen;
    d.ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
      const std::string k(key);
      const ModelEntry* e = Find(k);
      Expect(e != nullptr && e->value == value && e->version == version,
             "ForEach visited an entry the model does not have");
      Expect(++seen[k] == 1, "ForEach visited a key twice");
      return true;
    });
    Expect(seen.size() == model_.size(), "ForEach visited " + std::to_string(seen.size()) +
                                             " keys, the model has " +
                                             std::to_string(model_.size()));
  }

  void CheckVerify() {
    const internal::VerifyReport r = t_.Verify();
    Expect(r.clean() && r.damage == 0 && r.buckets_busy == 0 &&
               r.buckets_checked == layout().bucket_count && r.entries == model_.size() &&
               r.odd_slots == 0 && r.orphan_tags == 0 && r.processes_live <= 1,
           "Verify: damage " + std::to_string(r.damage) + ", entries " + std::to_string(r.entries) +
               (r.messages.empty() ? "" : ": " + r.messages[0]));
    const auto fill = t_.BucketFill();
    std::array<uint64_t, kSlotsPerBucket + 1> want{};
    for (const uint32_t occ : occupancy_) ++want[occ];
    Expect(fill == want, "BucketFill differs from the model's placement");
  }

  void CheckStats() {
    const Stats st = d_.GetStats();
    Expect(st.count == model_.size() && st.bucket_count == layout().bucket_count &&
               st.recoveries == 0 && st.live_processes <= 1,
           "GetStats: count " + std::to_string(st.count));
  }

  Dict& d_;
  const Dict& ro_;
  const internal::Table& t_;
  std::unordered_map<std::string, ModelEntry> model_;
  std::unordered_map<std::string, uint64_t> last_version_;  // ever, across erases
  std::vector<uint32_t> occupancy_;                         // keys per bucket
  std::array<uint64_t, 13> outcomes_{};                     // by -ErrorCode
  uint8_t counter_ = 0;
  int step_ = 0;
  uint8_t op_ = kNumOps;
};

void FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  const size_t shape = in.Byte() % kShapes.size();
  uint64_t file_size = 0;
  const std::string& header = ShapeHeader(shape, &file_size);
  const std::string path = UniqueTablePath("ops");
  WriteNewFile(path, {{0, header}}, file_size);
  absl::StatusOr<Dict> d = Dict::Open(path, OpenOptions());
  OpenOptions read_only;
  read_only.read_only = true;
  absl::StatusOr<Dict> ro = Dict::Open(path, read_only);
  unlink(path.c_str());  // the mappings outlive the name
  FUZZ_CHECK(d.ok() && ro.ok(),
             "opening a new table: " + Describe(d.status()) + ", " + Describe(ro.status()));
  Checker checker(*d, *ro);
  checker.Run(in);
}

}  // namespace
}  // namespace shmdict::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shmdict::fuzz::FuzzOne(data, size);
  return 0;
}
