// The outcome of one key of a batched lookup (Dict::GetMany in api/shmdict.h). Its own
// header so that the engine (core/) fills the caller's results in place.
#ifndef SHMDICT_API_GET_MANY_H_
#define SHMDICT_API_GET_MANY_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace shmdict {

struct GetManyResult {
  absl::Status status;   // OK, kNotFound, kBuffer (value_len is the size needed), kBadFile
  size_t value_len = 0;  // the value's length, when found
  uint64_t version = 0;  // the value's version, when found
};

}  // namespace shmdict

#endif  // SHMDICT_API_GET_MANY_H_
