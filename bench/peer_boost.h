// Boost.Interprocess as a store of the peer benchmark (bench/peer.h): a
// managed_shared_memory segment in /dev/shm holding a boost::unordered_map of
// interprocess strings (interprocess allocator, offset pointers), behind one
// interprocess_sharable_mutex in the segment: a sharable lock for every read, the
// exclusive lock for every write. This is the global-lock design of a shared map.
//
// The map hashes with XXH3-64 (a process-independent hash: every process computes the
// same buckets) and looks keys up by std::string_view without building a string.
#ifndef SHMDICT_BENCH_PEER_BOOST_H_
#define SHMDICT_BENCH_PEER_BOOST_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

class BoostPeer {
 public:
  static constexpr char kName[] = "boost_interprocess";

  static std::unique_ptr<BoostPeer> Create(const PeerConfig& config);
  ~BoostPeer();

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len);
  void Put(std::string_view key, std::string_view value);
  bool Insert(std::string_view key, std::string_view value);
  bool Erase(std::string_view key);
  void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
  std::unique_ptr<BoostPeer> OpenAgain() const;

  struct Impl;

 private:
  explicit BoostPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_BOOST_H_
