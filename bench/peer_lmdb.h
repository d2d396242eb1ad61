// LMDB as a store of the peer benchmark (bench/peer.h): an environment in a directory
// of /dev/shm opened with MDB_WRITEMAP | MDB_NOSYNC (writes go straight to the shared
// map, commits never flush), one unnamed database.
//
// Every Get is its own read transaction, made the cheap way LMDB offers: one read
// transaction per handle, mdb_txn_renew before the lookup and mdb_txn_reset after it
// (so each Get sees the latest commit, as shmdict's does). Every Put, Insert and Erase
// is its own write transaction (begin, put, commit).
#ifndef SHMDICT_BENCH_PEER_LMDB_H_
#define SHMDICT_BENCH_PEER_LMDB_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

class LmdbPeer {
 public:
  static constexpr char kName[] = "lmdb";

  static std::unique_ptr<LmdbPeer> Create(const PeerConfig& config);
  ~LmdbPeer();

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len);
  void Put(std::string_view key, std::string_view value);
  bool Insert(std::string_view key, std::string_view value);
  bool Erase(std::string_view key);
  void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
  std::unique_ptr<LmdbPeer> OpenAgain() const;

  struct Impl;

 private:
  explicit LmdbPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_LMDB_H_
