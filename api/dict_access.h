// Internal: the engine (core/table.h) behind a Dict, for shmdict's own tools, tests and
// benchmarks (verify, stats, crafted-file tests). Not part of the public API; its
// target is visible to those packages only.
#ifndef SHMDICT_API_DICT_ACCESS_H_
#define SHMDICT_API_DICT_ACCESS_H_

#include "api/shmdict.h"
#include "core/table.h"

#endif  // SHMDICT_API_DICT_ACCESS_H_
