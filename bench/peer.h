// The interface every store in the peer benchmark implements (a compile-time concept:
// the timed loops are templates over the store, so no virtual call sits on the
// measured path).
//
//   static constexpr char kName[];
//   static std::unique_ptr<P> Create(const PeerConfig& config);
//       An empty store sized for config.keys keys of config.value_size bytes. Network
//       stores connect to config.server and empty it.
//   bool Get(std::string_view key, char* buf, size_t capacity, size_t* len);
//       Copies the value into buf (capacity >= the value size) and returns true, or
//       returns false when the key is absent. What the caller gets is a private copy:
//       no store hands out pointers into its memory.
//   void Put(std::string_view key, std::string_view value);      insert or update
//   bool Insert(std::string_view key, std::string_view value);   false if present
//   bool Erase(std::string_view key);                             false if absent
//   void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
//       Inserts the keys `ids` (revision 0), as fast as the store allows (network
//       stores pipeline; measured loops never do).
// Stores shared between processes also have
//   std::unique_ptr<P> OpenAgain() const;
//       A new handle on the same store, for a forked child (it opens the table, maps
//       the segment or connects anew; it never uses its parent's handle).
// Every store dies (Die) with a message naming the store on any unexpected error.
#ifndef SHMDICT_BENCH_PEER_H_
#define SHMDICT_BENCH_PEER_H_

#include <cstdint>
#include <cstdlib>
#include <string>

#include "bench/workload.h"

namespace shmdict::bench {

struct PeerConfig {
  // A name unique to this run and store instance, for files in /dev/shm.
  std::string name;
  uint64_t keys = 0;
  uint32_t value_size = 0;
  // host:port, for memcached and Redis.
  std::string server;
};

// Splits "host:port"; dies on a malformed address.
inline void SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  char* end = nullptr;
  const long p = colon == std::string::npos
                     ? 0
                     : std::strtol(address.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || colon == 0 || end == nullptr || *end != '\0' ||
      p <= 0 || p > 65535) {
    Die("bad server address \"" + address + "\": expected host:port");
  }
  *host = address.substr(0, colon);
  *port = static_cast<int>(p);
}

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_H_
