// The network stores of the peer benchmark (bench/peer.h), each a server on the
// loopback interface that bench/run_all.sh starts and stops:
//   MemcachedPeer  memcached through libmemcached (text protocol, TCP_NODELAY): one
//                  request and one response per operation, never pipelined
//   RedisPeer      Redis through hiredis: GET / SET / SET NX / DEL, one round trip each
// Loading pipelines (memcached: buffered requests without replies; Redis: batches of
// appended commands); no measured loop does.
#ifndef SHMDICT_BENCH_PEER_NET_H_
#define SHMDICT_BENCH_PEER_NET_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

class MemcachedPeer {
 public:
  static constexpr char kName[] = "memcached";

  // Connects to config.server and empties it (flush_all).
  static std::unique_ptr<MemcachedPeer> Create(const PeerConfig& config);
  ~MemcachedPeer();

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len);
  void Put(std::string_view key, std::string_view value);
  bool Insert(std::string_view key, std::string_view value);
  bool Erase(std::string_view key);
  void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
  std::unique_ptr<MemcachedPeer> OpenAgain() const;

  struct Impl;

 private:
  explicit MemcachedPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class RedisPeer {
 public:
  static constexpr char kName[] = "redis";

  // Connects to config.server and empties it (FLUSHALL).
  static std::unique_ptr<RedisPeer> Create(const PeerConfig& config);
  ~RedisPeer();

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len);
  void Put(std::string_view key, std::string_view value);
  bool Insert(std::string_view key, std::string_view value);
  bool Erase(std::string_view key);
  void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
  std::unique_ptr<RedisPeer> OpenAgain() const;

  struct Impl;

 private:
  explicit RedisPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_NET_H_
