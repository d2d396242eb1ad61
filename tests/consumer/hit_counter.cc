// Counts hits of a few pages in /dev/shm/<name> (default: a fresh name), prints the
// totals and removes the table.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "hits.h"

int main(int argc, char** argv) {
  const std::string name =
      argc > 1 ? argv[1] : "shmdict-consumer-" + std::to_string(getpid());
  absl::StatusOr<shmdict::Dict> dict = shmdict::Dict::Open(
      name, {.create = true, .capacity = 64, .max_key_size = 32, .max_value_size = 8});
  if (!dict.ok()) {
    std::fprintf(stderr, "open %s: %s\n", name.c_str(), dict.status().ToString().c_str());
    return 1;
  }
  for (const char* page : {"/", "/about", "/", "/"}) {
    absl::StatusOr<int64_t> total = consumer::RecordHit(*dict, page);
    if (!total.ok()) {
      std::fprintf(stderr, "hit %s: %s\n", page, total.status().ToString().c_str());
      return 1;
    }
  }
  for (const char* page : {"/", "/about", "/missing"}) {
    absl::StatusOr<int64_t> hits = consumer::Hits(*dict, page);
    if (!hits.ok()) return 1;
    std::printf("%s %lld\n", page, static_cast<long long>(*hits));
  }
  return shmdict::Dict::Unlink(dict->path()).ok() ? 0 : 1;
}
