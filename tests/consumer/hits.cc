#include "hits.h"

#include <cstring>
#include <string>

namespace consumer {

absl::StatusOr<int64_t> RecordHit(shmdict::Dict& dict, std::string_view page) {
  return dict.FetchAdd(page, 1);
}

absl::StatusOr<int64_t> Hits(const shmdict::Dict& dict, std::string_view page) {
  absl::StatusOr<std::string> value = dict.Get(page);
  if (absl::IsNotFound(value.status())) return 0;
  if (!value.ok()) return value.status();
  // FetchAdd values are 8-byte little-endian integers (x86-64 and arm64 alike).
  int64_t hits = 0;
  if (value->size() != sizeof(hits)) {
    return absl::FailedPreconditionError("not a counter: " + std::string(page));
  }
  std::memcpy(&hits, value->data(), sizeof(hits));
  return hits;
}

}  // namespace consumer
