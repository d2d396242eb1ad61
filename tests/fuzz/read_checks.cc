#include "api/dict_access.h"
#include "tests/fuzz/read_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "tests/fuzz/fuzz_util.h"

namespace shmdict::fuzz {

uint64_t CheckKeyReads(const Dict& d, std::string_view key) {
  const internal::Layout& layout = internal::TableOf(d)->layout();
  const bool oversized = key.size() > layout.max_key_size;
  uint64_t version = 0;
  const absl::StatusOr<std::string> got = d.Get(key, &version);
  const ErrorCode code = ErrorCodeOf(got.status());
  FUZZ_CHECK(code == ErrorCode::kOk || code == ErrorCode::kNotFound || code == ErrorCode::kBadFile,
             "Get: " + Describe(got.status()));
  FUZZ_CHECK(!oversized || code == ErrorCode::kNotFound,
             "Get of an oversized key: " + Describe(got.status()));
  FUZZ_CHECK(!got.ok() || got->size() <= layout.max_value_size,
             "Get returned " + std::to_string(got.ok() ? got->size() : 0) + " bytes");
  const uint64_t found_version = got.ok() ? version : 0;
  FUZZ_CHECK(d.Version(key) == found_version, "Version disagrees with Get");
  FUZZ_CHECK(d.Contains(key) == (found_version != 0), "Contains disagrees with Get");

  // GetInto with a buffer one byte short, then with enough room.
  const size_t full = got.ok() ? got->size() : 0;
  std::vector<char> buf(full + 1);
  size_t len = 0;
  uint64_t v2 = 0;
  if (full > 0) {
    const absl::Status s = d.GetInto(key, buf.data(), full - 1, &len, &v2);
    FUZZ_CHECK(ErrorCodeOf(s) == ErrorCode::kBuffer && len == full && v2 == version,
               "GetInto into a short buffer: " + Describe(s));
  }
  const absl::Status s = d.GetInto(key, buf.data(), buf.size(), &len, &v2);
  FUZZ_CHECK(ErrorCodeOf(s) == code,
             "GetInto: " + Describe(s) + " but Get: " + Describe(got.status()));
  FUZZ_CHECK(!got.ok() ||
                 (len == full && v2 == version && std::memcmp(buf.data(), got->data(), full) == 0),
             "GetInto returned another value than Get");

  // A change from a version other than the current one is seen at once; waiting for a
  // change of the current one times out (timeout 0: no sleeping).
  const absl::Status w1 = d.WaitForChange(key, found_version + 1, 0);
  const absl::Status w0 = d.WaitForChange(key, found_version, 0);
  if (oversized) {
    FUZZ_CHECK(ErrorCodeOf(w1) == ErrorCode::kTooBig && ErrorCodeOf(w0) == ErrorCode::kTooBig,
               "WaitForChange of an oversized key: " + Describe(w0));
  } else {
    FUZZ_CHECK(w1.ok(), "WaitForChange from another version: " + Describe(w1));
    FUZZ_CHECK(ErrorCodeOf(w0) == ErrorCode::kTimeout,
               "WaitForChange from the current version: " + Describe(w0));
  }
  return found_version;
}


internal::VerifyReport CheckTableReads(const Dict& d, const std::vector<std::string>& probe_keys,
                                       const TableReadExpectations& expect) {
  internal::Table* t = internal::TableOf(d);
  const internal::Layout& layout = t->layout();

  // ForEach: every entry, kept (up to a bound) to compare the lookups with.
  constexpr size_t kMaxKept = 4096;
  const uint64_t count = d.Count();
  uint64_t visited = 0;
  std::multimap<std::string, std::pair<std::string, uint64_t>> entries;
  std::vector<std::string> sample;  // the first keys visited
  d.ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
    FUZZ_CHECK(key.size() <= layout.max_key_size && value.size() <= layout.max_value_size,
               "ForEach visited an entry over the maxima");
    ++visited;
    if (entries.size() < kMaxKept) {
      entries.emplace(std::string(key), std::make_pair(std::string(value), version));
    }
    if (sample.size() < 16) sample.emplace_back(key);
    return true;
  });
  const bool kept_all = visited <= kMaxKept;
  FUZZ_CHECK(visited == count, "ForEach visited " + std::to_string(visited) +
                                   " entries, Count says " + std::to_string(count));
  uint64_t stopped = 0;
  d.ForEach([&](std::string_view, std::string_view, uint64_t) { return ++stopped < 3; });
  FUZZ_CHECK(stopped == std::min<uint64_t>(count, 3), "ForEach did not stop when asked");

  const Stats st = d.GetStats();
  FUZZ_CHECK(st.count == count && st.bucket_count == layout.bucket_count &&
                 st.slot_count == layout.bucket_count * internal::kSlotsPerBucket &&
                 st.file_size == layout.file_size && st.live_processes == expect.live_processes,
             "GetStats: count " + std::to_string(st.count) + ", live processes " +
                 std::to_string(st.live_processes));
  const auto fill = t->BucketFill();
  uint64_t buckets = 0, tags = 0;
  for (size_t k = 0; k < fill.size(); ++k) {
    buckets += fill[k];
    tags += k * fill[k];
  }
  FUZZ_CHECK(buckets == layout.bucket_count && tags >= count,
             "BucketFill: " + std::to_string(buckets) + " buckets, " + std::to_string(tags) +
                 " tags for " + std::to_string(count) + " entries");
  uint32_t live = 0;
  for (const internal::ProcessInfo& p : t->Processes()) {
    FUZZ_CHECK(p.live == p.self, "process-table entry " + std::to_string(p.index) +
                                     (p.live ? " looks live" : " of this handle looks dead"));
    live += p.live;
  }
  FUZZ_CHECK(live == expect.live_processes, "Processes: " + std::to_string(live) + " live");

  const internal::VerifyReport r = t->Verify();
  FUZZ_CHECK(r.buckets_busy == expect.busy_buckets &&
                 r.buckets_checked == layout.bucket_count - expect.busy_buckets &&
                 r.processes_live == expect.live_processes,
             "Verify: " + std::to_string(r.buckets_busy) + " busy buckets (expected " +
                 std::to_string(expect.busy_buckets) + "), " + std::to_string(r.processes_live) +
                 " live processes");
  FUZZ_CHECK(r.damage >= r.messages.size() && r.messages.size() <= 100,
             "Verify: more messages than damage");
  if (Verbose()) {
    std::fprintf(
        stderr,
        "  %llu entries; Verify: %llu checked, %llu busy, %llu entries, %llu damage, "
        "%llu dead locks, %llu odd slots, %llu orphan tags%s%s\n",
        static_cast<unsigned long long>(count), static_cast<unsigned long long>(r.buckets_checked),
        static_cast<unsigned long long>(r.buckets_busy), static_cast<unsigned long long>(r.entries),
        static_cast<unsigned long long>(r.damage), static_cast<unsigned long long>(r.dead_locks),
        static_cast<unsigned long long>(r.odd_slots),
        static_cast<unsigned long long>(r.orphan_tags),
        r.messages.empty() ? "" : "; first: ", r.messages.empty() ? "" : r.messages[0].c_str());
  }

  // Every key a lookup finds is an entry ForEach visited, with the same contents.
  std::vector<std::string> keys = probe_keys;
  keys.insert(keys.end(), sample.begin(), sample.end());
  for (const std::string& key : keys) {
    CheckKeyReads(d, key);
    uint64_t version = 0;
    const absl::StatusOr<std::string> got = d.Get(key, &version);
    if (!got.ok() || !kept_all) continue;
    const auto [first, last] = entries.equal_range(key);
    const bool seen = std::any_of(first, last, [&](const auto& e) {
      return e.second.first == *got && e.second.second == version;
    });
    FUZZ_CHECK(seen, "Get found an entry that ForEach did not visit");
  }
  if (r.damage == 0 && expect.busy_buckets == 0) {
    // No damage: each entry sits in one of its key's buckets, under its tag, once.
    // Every lookup must find it as ForEach saw it.
    FUZZ_CHECK(r.entries == count, "Verify counted " + std::to_string(r.entries) +
                                       " entries, Count " + std::to_string(count));
    for (const auto& [key, value_version] : entries) {
      uint64_t version = 0;
      const absl::StatusOr<std::string> got = d.Get(key, &version);
      FUZZ_CHECK(got.ok() && *got == value_version.first && version == value_version.second &&
                     version != 0,
                 "entry '" + Printable(key) +
                     "' (visited by ForEach) of an undamaged table "
                     "reads back as " +
                     (got.ok() ? "another value" : Describe(got.status())));
    }
  }

  // Batched lookups agree with single ones.
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<std::vector<char>> storage(keys.size(), std::vector<char>(8));
  std::vector<absl::Span<char>> bufs;
  for (auto& s : storage) bufs.emplace_back(s.data(), s.size());
  std::vector<GetManyResult> results(keys.size());
  const absl::StatusOr<size_t> found = d.GetMany(views, bufs, absl::MakeSpan(results));
  FUZZ_CHECK(found.ok(), "GetMany: " + Describe(found.status()));
  size_t expect_found = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    uint64_t version = 0;
    const absl::StatusOr<std::string> got = d.Get(keys[i], &version);
    const GetManyResult& res = results[i];
    if (got.ok()) {
      ++expect_found;
      const ErrorCode want = got->size() <= 8 ? ErrorCode::kOk : ErrorCode::kBuffer;
      FUZZ_CHECK(ErrorCodeOf(res.status) == want && res.value_len == got->size() &&
                     res.version == version &&
                     (want != ErrorCode::kOk ||
                      std::memcmp(storage[i].data(), got->data(), got->size()) == 0),
                 "GetMany disagrees with Get: " + Describe(res.status));
    } else {
      FUZZ_CHECK(ErrorCodeOf(res.status) == ErrorCodeOf(got.status()),
                 "GetMany: " + Describe(res.status) + ", Get: " + Describe(got.status()));
    }
  }
  FUZZ_CHECK(*found == expect_found, "GetMany's found count is off");
  return r;
}

}  // namespace shmdict::fuzz
