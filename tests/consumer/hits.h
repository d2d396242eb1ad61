// Page-hit counting in a table that every process of the machine shares.
#ifndef SHMDICT_CONSUMER_HITS_H_
#define SHMDICT_CONSUMER_HITS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "api/shmdict.h"

namespace consumer {

// Counts one hit of `page` and returns the page's total, atomically across processes.
absl::StatusOr<int64_t> RecordHit(shmdict::Dict& dict, std::string_view page);

// The page's total (0 if never hit).
absl::StatusOr<int64_t> Hits(const shmdict::Dict& dict, std::string_view page);

}  // namespace consumer

#endif  // SHMDICT_CONSUMER_HITS_H_
