#include "api/shmdict.h"

#include <utility>

#include "core/clock.h"
#include "core/table.h"

namespace shmdict {

using internal::Table;
using internal::WriteMode;

Dict::Dict(std::unique_ptr<Table> table) : table_(std::move(table)) {}
Dict::Dict(Dict&&) noexcept = default;
Dict& Dict::operator=(Dict&&) noexcept = default;
Dict::~Dict() = default;

absl::StatusOr<Dict> Dict::Open(std::string_view path, const OpenOptions& options) {
  absl::StatusOr<std::unique_ptr<Table>> t = Table::Open(path, options);
  if (!t.ok()) return t.status();
  return Dict(std::move(*t));
}

absl::Status Dict::Unlink(std::string_view path) { return Table::Unlink(path); }

absl::StatusOr<std::string> Dict::Get(std::string_view key, uint64_t* version) const {
  std::string value;
  if (absl::Status s = table_->Get(key, &value, version); !s.ok()) return s;
  return value;
}

absl::Status Dict::GetInto(std::string_view key, char* buf, size_t capacity,
                           size_t* value_len, uint64_t* version) const {
  return table_->GetInto(key, buf, capacity, value_len, version);
}

absl::StatusOr<size_t> Dict::GetMany(absl::Span<const std::string_view> keys,
                                     absl::Span<const absl::Span<char>> buffers,
                                     absl::Span<GetManyResult> results) const {
  if (buffers.size() != keys.size() || results.size() != keys.size()) {
    return MakeError(ErrorCode::kInvalid,
                     "GetMany: keys, buffers and results differ in length");
  }
  return table_->GetMany(keys.data(), keys.size(), buffers.data(), results.data());
}

bool Dict::Contains(std::string_view key) const { return table_->Version(key) != 0; }

uint64_t Dict::Version(std::string_view key) const { return table_->Version(key); }

absl::Status Dict::WaitForChange(std::string_view key, uint64_t version,
                                 int64_t timeout_ms) const {
  return table_->WaitForChange(key, version, timeout_ms);
}

absl::StatusOr<uint64_t> Dict::Put(std::string_view key, std::string_view value) {
  return table_->Write(WriteMode::kPut, key, value, 0);
}

absl::StatusOr<uint64_t> Dict::Insert(std::string_view key, std::string_view value) {
  return table_->Write(WriteMode::kInsert, key, value, 0);
}

absl::StatusOr<uint64_t> Dict::Replace(std::string_view key, std::string_view value) {
  return table_->Write(WriteMode::kReplace, key, value, 0);
}

absl::StatusOr<uint64_t> Dict::CompareAndSwap(std::string_view key,
                                              uint64_t expected_version,
                                              std::string_view value) {
  return table_->Write(WriteMode::kCompareAndSwap, key, value, expected_version);
}

absl::Status Dict::Erase(std::string_view key) { return table_->Erase(key); }

namespace {

// A Duration as the engine's ttl_ms: 0 for InfiniteDuration (never), else whole
// milliseconds rounded up; kInvalid for zero or negative.
absl::StatusOr<uint64_t> TtlMs(absl::Duration ttl) {
  if (ttl == absl::InfiniteDuration()) return 0;
  if (ttl <= absl::ZeroDuration()) {
    return MakeError(ErrorCode::kInvalid,
                     "time to live must be positive (InfiniteDuration: never expires)");
  }
  const absl::Duration ms = absl::Ceil(ttl, absl::Milliseconds(1));
  if (ms > absl::Milliseconds(internal::kMaxTtlMs)) {
    return MakeError(ErrorCode::kInvalid,
                     "time to live is over the maximum of 2^42 ms (about 139 years)");
  }
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(ms));
}

}  // namespace

absl::StatusOr<uint64_t> Dict::Set(std::string_view key, std::string_view value,
                                   const SetOptions& options) {
  if (options.if_absent && options.if_present) {
    return MakeError(ErrorCode::kInvalid, "if_absent and if_present exclude each other");
  }
  absl::StatusOr<uint64_t> ttl_ms = TtlMs(options.ttl);
  if (!ttl_ms.ok()) return ttl_ms.status();
  const WriteMode mode = options.if_absent    ? WriteMode::kInsert
                         : options.if_present ? WriteMode::kReplace
                                              : WriteMode::kPut;
  return table_->Write(mode, key, value, 0, *ttl_ms);
}

absl::StatusOr<uint64_t> Dict::Touch(std::string_view key, absl::Duration ttl) {
  absl::StatusOr<uint64_t> ttl_ms = TtlMs(ttl);
  if (!ttl_ms.ok()) return ttl_ms.status();
  return table_->Touch(key, *ttl_ms);
}

absl::StatusOr<absl::Duration> Dict::Ttl(std::string_view key) const {
  absl::StatusOr<int64_t> ms = table_->Ttl(key);
  if (!ms.ok()) return ms.status();
  if (*ms < 0) return absl::InfiniteDuration();
  return absl::Milliseconds(*ms);
}

absl::Status Dict::Clear() { return table_->Clear(); }

absl::StatusOr<uint64_t> Dict::Sweep() { return table_->Sweep(); }

absl::StatusOr<int64_t> Dict::FetchAdd(std::string_view key, int64_t delta,
                                       uint64_t* version, bool if_present) {
  return table_->FetchAdd(key, delta, version, if_present);
}

uint64_t Dict::Count(uint64_t* corrupt) const {
  const internal::ScanResult r = table_->Count();
  if (corrupt != nullptr) *corrupt = r.corrupt;
  return r.entries;
}

uint64_t Dict::ForEach(
    absl::FunctionRef<bool(std::string_view, std::string_view, uint64_t)> fn) const {
  return table_->ForEach(fn).corrupt;
}

Stats Dict::GetStats() const { return table_->GetStats(); }

internal::Table* internal::TableOf(const Dict& d) { return d.table_.get(); }

const std::string& Dict::path() const { return table_->path(); }

}  // namespace shmdict
