// In-process stores of the peer benchmark (bench/peer.h), the baselines shmdict is
// measured against inside one process:
//   StdMapPeer   std::unordered_map<std::string, std::string> behind a std::shared_mutex
//                (shared lock for reads, exclusive for writes): the usual thread-safe map
//   AbslMapPeer  absl::flat_hash_map<std::string, std::string> with no lock at all: the
//                yardstick of the hot path (a lookup plus the copy-out, nothing else)
#ifndef SHMDICT_BENCH_PEER_MAPS_H_
#define SHMDICT_BENCH_PEER_MAPS_H_

#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

class StdMapPeer {
 public:
  static constexpr char kName[] = "std_unordered_map";

  static std::unique_ptr<StdMapPeer> Create(const PeerConfig& config) {
    auto p = std::make_unique<StdMapPeer>();
    p->map_.reserve(config.keys);
    return p;
  }

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    const std::string& v = it->second;
    if (v.size() > capacity) Die("std_unordered_map: value larger than the buffer");
    std::memcpy(buf, v.data(), v.size());
    *len = v.size();
    return true;
  }

  void Put(std::string_view key, std::string_view value) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second.assign(value.data(), value.size());
    } else {
      map_.emplace(std::string(key), std::string(value));
    }
  }

  bool Insert(std::string_view key, std::string_view value) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    return map_.try_emplace(std::string(key), value).second;
  }

  bool Erase(std::string_view key) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    map_.erase(it);
    return true;
  }

  void Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
    for (uint64_t id : ids) {
      if (!Insert(KeyString(id), values.Make(id, 0))) {
        Die("std_unordered_map: loading: a key inserted twice");
      }
    }
  }

 private:
  // Heterogeneous lookup by std::string_view (C++20 transparent hashing).
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> map_;
  std::shared_mutex mu_;
};

class AbslMapPeer {
 public:
  static constexpr char kName[] = "absl_flat_hash_map";

  static std::unique_ptr<AbslMapPeer> Create(const PeerConfig& config) {
    auto p = std::make_unique<AbslMapPeer>();
    p->map_.reserve(config.keys);
    return p;
  }

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
    auto it = map_.find(absl::string_view(key.data(), key.size()));
    if (it == map_.end()) return false;
    const std::string& v = it->second;
    if (v.size() > capacity) Die("absl_flat_hash_map: value larger than the buffer");
    std::memcpy(buf, v.data(), v.size());
    *len = v.size();
    return true;
  }

  void Put(std::string_view key, std::string_view value) {
    auto [it, inserted] = map_.try_emplace(absl::string_view(key.data(), key.size()));
    it->second.assign(value.data(), value.size());
  }

  bool Insert(std::string_view key, std::string_view value) {
    return map_
        .try_emplace(absl::string_view(key.data(), key.size()),
                     std::string(value.data(), value.size()))
        .second;
  }

  bool Erase(std::string_view key) {
    return map_.erase(absl::string_view(key.data(), key.size())) == 1;
  }

  void Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
    for (uint64_t id : ids) {
      if (!Insert(KeyString(id), values.Make(id, 0))) {
        Die("absl_flat_hash_map: loading: a key inserted twice");
      }
    }
  }

 private:
  absl::flat_hash_map<std::string, std::string> map_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_MAPS_H_
