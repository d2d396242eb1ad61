// Read-side checks shared by the fuzz targets that open tables they did not write
// (open_fuzz: arbitrary files; scribble_fuzz: valid tables scribbled over). On such a
// table the contents may be anything; what must hold is that reads stay in bounds,
// never hang, and agree with each other.
#ifndef SHMDICT_TESTS_FUZZ_READ_CHECKS_H_
#define SHMDICT_TESTS_FUZZ_READ_CHECKS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/shmdict.h"
#include "core/table.h"

namespace shmdict::fuzz {

// Reads `key` every way there is (Get, GetInto with a short and a large enough buffer,
// Version, Contains, WaitForChange with timeout 0) and checks that they agree and
// respect the table's maxima. Returns the version found (0: absent or unreadable).
uint64_t CheckKeyReads(const Dict& d, std::string_view key);

struct TableReadExpectations {
  // Processes holding the table open for writing: 0, or 1 when `d` itself wrote.
  uint32_t live_processes = 0;
  // Buckets whose lock a live writer holds (Verify skips them).
  uint64_t busy_buckets = 0;
};

// Checks a quiescent table through every read path: Count equals the entries ForEach
// visits, which respect the maxima; GetStats, BucketFill and Processes agree with
// `expect`; Verify checks every bucket not busy; every key a lookup finds is an entry
// ForEach visited, with the same value and version; and when Verify finds no damage,
// every visited entry is found by every lookup path with the value and version
// ForEach saw. Looks up `probe_keys` and the first entries ForEach visits. Returns
// Verify's report.
internal::VerifyReport CheckTableReads(const Dict& d, const std::vector<std::string>& probe_keys,
                                       const TableReadExpectations& expect);


}  // namespace shmdict::fuzz

#endif  // SHMDICT_TESTS_FUZZ_READ_CHECKS_H_
