// shmdict itself, through its public C++ API (api/shmdict.h), as a store of the peer
// benchmark (bench/peer.h). Reads use Dict::GetInto (no allocation), like every other
// store's Get copies into the caller's buffer.
//
// Two flavours: ShmdictPeer ("shmdict") writes entries that never expire;
// ShmdictTtlPeer ("shmdict_ttl") gives every entry a time to live of an hour (Set with
// a ttl), so that its gets measure what reading an entry's expiry costs.
#ifndef SHMDICT_BENCH_PEER_SHMDICT_H_
#define SHMDICT_BENCH_PEER_SHMDICT_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/shmdict.h"
#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

template <bool kWithTtl>
class BasicShmdictPeer {
 public:
  using Self = BasicShmdictPeer<kWithTtl>;
  static constexpr const char* kName = kWithTtl ? "shmdict_ttl" : "shmdict";

  static std::unique_ptr<Self> Create(const PeerConfig& config) {
    const std::string path = "/dev/shm/" + config.name;
    OpenOptions options;
    options.create = true;
    options.exclusive = true;
    options.capacity = config.keys;
    options.max_key_size = kKeySize;
    options.max_value_size = config.value_size;
    absl::StatusOr<Dict> d = Dict::Open(path, options);
    if (!d.ok()) Die("shmdict: creating " + path + ": " + d.status().ToString());
    RegisterForRemoval(path);
    return std::unique_ptr<Self>(new Self(std::move(*d), path, true));
  }

  ~BasicShmdictPeer() {
    if (owner_ && !IsChildProcess()) {
      (void)Dict::Unlink(path_);
      ForgetRemoval(path_);
    }
  }

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
    const absl::Status s = dict_.GetInto(key, buf, capacity, len);
    if (ABSL_PREDICT_TRUE(s.ok())) return true;
    if (ABSL_PREDICT_TRUE(absl::IsNotFound(s))) return false;
    Die("shmdict: GetInto: " + s.ToString());
  }

  void Put(std::string_view key, std::string_view value) {
    const absl::StatusOr<uint64_t> v =
        kWithTtl ? dict_.Set(key, value, {.ttl = absl::Hours(1)}) : dict_.Put(key, value);
    if (ABSL_PREDICT_FALSE(!v.ok())) Die("shmdict: Put: " + v.status().ToString());
  }

  bool Insert(std::string_view key, std::string_view value) {
    const absl::StatusOr<uint64_t> v =
        kWithTtl ? dict_.Set(key, value, {.ttl = absl::Hours(1), .if_absent = true})
                 : dict_.Insert(key, value);
    if (ABSL_PREDICT_TRUE(v.ok())) return true;
    if (ErrorCodeOf(v.status()) == ErrorCode::kExists) return false;
    Die("shmdict: Insert: " + v.status().ToString());
  }

  bool Erase(std::string_view key) {
    const absl::Status s = dict_.Erase(key);
    if (ABSL_PREDICT_TRUE(s.ok())) return true;
    if (absl::IsNotFound(s)) return false;
    Die("shmdict: Erase: " + s.ToString());
  }

  void Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
    char key[kKeySize];
    for (uint64_t id : ids) {
      MakeKey(id, key);
      if (!Insert(std::string_view(key, kKeySize), values.Make(id, 0))) {
        Die("shmdict: loading: key " + KeyString(id) + " inserted twice");
      }
    }
  }

  std::unique_ptr<Self> OpenAgain() const {
    absl::StatusOr<Dict> d = Dict::Open(path_, OpenOptions{});
    if (!d.ok()) Die("shmdict: opening " + path_ + " again: " + d.status().ToString());
    return std::unique_ptr<Self>(new Self(std::move(*d), path_, false));
  }

  const Dict& dict() const { return dict_; }

 private:
  BasicShmdictPeer(Dict dict, std::string path, bool owner)
      : dict_(std::move(dict)), path_(std::move(path)), owner_(owner) {}

  Dict dict_;
  std::string path_;
  bool owner_;
};

using ShmdictPeer = BasicShmdictPeer<false>;
using ShmdictTtlPeer = BasicShmdictPeer<true>;

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_SHMDICT_H_
