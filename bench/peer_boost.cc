#include "bench/peer_boost.h"

#include <cstring>
#include <exception>
#include <utility>

#include <boost/container/string.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/interprocess/sync/sharable_lock.hpp>
#include <boost/unordered_map.hpp>

#include "xxhash.h"

namespace shmdict::bench {
namespace {

namespace bip = boost::interprocess;

using Segment = bip::managed_shared_memory;
using SegmentManager = Segment::segment_manager;
using CharAllocator = bip::allocator<char, SegmentManager>;
using ShmString =
    boost::container::basic_string<char, std::char_traits<char>, CharAllocator>;

struct Hash {
  size_t operator()(const ShmString& s) const { return XXH3_64bits(s.data(), s.size()); }
  size_t operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }
};

struct Eq {
  static bool Same(const char* a, size_t an, const char* b, size_t bn) {
    return an == bn && std::memcmp(a, b, an) == 0;
  }
  bool operator()(const ShmString& a, const ShmString& b) const {
    return Same(a.data(), a.size(), b.data(), b.size());
  }
  bool operator()(std::string_view a, const ShmString& b) const {
    return Same(a.data(), a.size(), b.data(), b.size());
  }
  bool operator()(const ShmString& a, std::string_view b) const {
    return Same(a.data(), a.size(), b.data(), b.size());
  }
};

using Entry = std::pair<const ShmString, ShmString>;
using EntryAllocator = bip::allocator<Entry, SegmentManager>;
using Map = boost::unordered_map<ShmString, ShmString, Hash, Eq, EntryAllocator>;
using Mutex = bip::interprocess_sharable_mutex;

}  // namespace

struct BoostPeer::Impl {
  std::string name;  // the shared memory object's name: /dev/shm/<name>
  bool owner = false;
  Segment segment;
  Map* map = nullptr;
  Mutex* mutex = nullptr;
};

BoostPeer::BoostPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BoostPeer::~BoostPeer() {
  if (impl_->owner && !IsChildProcess()) {
    const std::string name = impl_->name;
    impl_.reset();  // unmaps the segment
    bip::shared_memory_object::remove(name.c_str());
    ForgetRemoval("/dev/shm/" + name);
  }
}

std::unique_ptr<BoostPeer> BoostPeer::Create(const PeerConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->name = config.name;
  impl->owner = true;
  // Nodes, strings and the allocator's headers take about 200 bytes per entry beyond
  // the value; the bucket array 8 more. Pages of the segment that are never touched
  // take no memory (tmpfs).
  const uint64_t size =
      config.keys * (uint64_t{config.value_size} * 3 / 2 + 384) + (uint64_t{64} << 20);
  try {
    impl->segment = Segment(bip::create_only, config.name.c_str(), size);
    RegisterForRemoval("/dev/shm/" + config.name);
    impl->mutex = impl->segment.construct<Mutex>("mutex")();
    impl->map = impl->segment.construct<Map>("map")(
        config.keys, Hash(), Eq(), impl->segment.get_allocator<Entry>());
    impl->map->reserve(config.keys);
  } catch (const std::exception& e) {
    Die("boost_interprocess: creating segment " + config.name + ": " + e.what());
  }
  return std::unique_ptr<BoostPeer>(new BoostPeer(std::move(impl)));
}

std::unique_ptr<BoostPeer> BoostPeer::OpenAgain() const {
  auto impl = std::make_unique<Impl>();
  impl->name = impl_->name;
  impl->owner = false;
  try {
    impl->segment = Segment(bip::open_only, impl->name.c_str());
    impl->map = impl->segment.find<Map>("map").first;
    impl->mutex = impl->segment.find<Mutex>("mutex").first;
  } catch (const std::exception& e) {
    Die("boost_interprocess: opening segment " + impl->name + ": " + e.what());
  }
  if (impl->map == nullptr || impl->mutex == nullptr) {
    Die("boost_interprocess: segment " + impl->name + " lacks its map or mutex");
  }
  return std::unique_ptr<BoostPeer>(new BoostPeer(std::move(impl)));
}

bool BoostPeer::Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
  bip::sharable_lock<Mutex> lock(*impl_->mutex);
  auto it = impl_->map->find(key, Hash(), Eq());
  if (it == impl_->map->end()) return false;
  const ShmString& v = it->second;
  if (v.size() > capacity) Die("boost_interprocess: value larger than the buffer");
  std::memcpy(buf, v.data(), v.size());
  *len = v.size();
  return true;
}

void BoostPeer::Put(std::string_view key, std::string_view value) {
  try {
    bip::scoped_lock<Mutex> lock(*impl_->mutex);
    auto it = impl_->map->find(key, Hash(), Eq());
    if (it != impl_->map->end()) {
      it->second.assign(value.data(), value.data() + value.size());
      return;
    }
    CharAllocator chars(impl_->segment.get_segment_manager());
    impl_->map->emplace(ShmString(key.data(), key.size(), chars),
                        ShmString(value.data(), value.size(), chars));
  } catch (const std::exception& e) {
    Die(std::string("boost_interprocess: Put: ") + e.what());
  }
}

bool BoostPeer::Insert(std::string_view key, std::string_view value) {
  try {
    bip::scoped_lock<Mutex> lock(*impl_->mutex);
    if (impl_->map->find(key, Hash(), Eq()) != impl_->map->end()) return false;
    CharAllocator chars(impl_->segment.get_segment_manager());
    return impl_->map
        ->emplace(ShmString(key.data(), key.size(), chars),
                  ShmString(value.data(), value.size(), chars))
        .second;
  } catch (const std::exception& e) {
    Die(std::string("boost_interprocess: Insert: ") + e.what());
  }
}

bool BoostPeer::Erase(std::string_view key) {
  bip::scoped_lock<Mutex> lock(*impl_->mutex);
  auto it = impl_->map->find(key, Hash(), Eq());
  if (it == impl_->map->end()) return false;
  impl_->map->erase(it);
  return true;
}

void BoostPeer::Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
  char key[kKeySize];
  for (uint64_t id : ids) {
    MakeKey(id, key);
    if (!Insert(std::string_view(key, kKeySize), values.Make(id, 0))) {
      Die("boost_interprocess: loading: key " + KeyString(id) + " inserted twice");
    }
  }
}

}  // namespace shmdict::bench
