#include "bench/peer_seqlock.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

namespace shmdict::bench {
namespace {

[[noreturn]] void SysDie(const std::string& what) {
  Die("naive_seqlock: " + what + ": " + std::strerror(errno));
}

}  // namespace

NaiveSeqlockPeer::NaiveSeqlockPeer(char* base, size_t bytes, std::string path, bool owner)
    : base_(base), bytes_(bytes), path_(std::move(path)), owner_(owner) {
  const Header* h = header();
  slots_ = reinterpret_cast<uint64_t*>(base_ + kHeaderBytes);
  mask_ = h->slots - 1;
  slot_words_ = h->slot_words;
  key_words_ = h->key_words;
  value_size_ = h->value_size;
}

NaiveSeqlockPeer::~NaiveSeqlockPeer() {
  munmap(base_, bytes_);
  if (owner_ && !IsChildProcess()) {
    unlink(path_.c_str());
    ForgetRemoval(path_);
  }
}

std::unique_ptr<NaiveSeqlockPeer> NaiveSeqlockPeer::Create(const PeerConfig& config) {
  const uint64_t key_words = (kKeySize + 7) / 8;
  static_assert((kKeySize + 7) / 8 <= kMaxKeyWords);
  const uint64_t value_words = (config.value_size + 7) / 8;
  uint64_t slots = 2;
  while (slots * 3 < config.keys * 4) slots *= 2;  // load factor <= 0.75
  const uint64_t slot_words = (2 + key_words + value_words + 7) / 8 * 8;  // whole lines
  const uint64_t bytes = kHeaderBytes + slots * slot_words * 8;
  const std::string path = "/dev/shm/" + config.name;
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) SysDie("creating " + path);
  RegisterForRemoval(path);
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) SysDie("sizing " + path);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) SysDie("mapping " + path);
  close(fd);
  // Nobody else maps the file yet: plain initialization. The slots are zero (empty,
  // sequence 0) as ftruncate made them.
  Header* h = new (p) Header{};
  h->magic = kMagic;
  h->slots = slots;
  h->slot_words = slot_words;
  h->key_words = key_words;
  h->value_size = config.value_size;
  return std::unique_ptr<NaiveSeqlockPeer>(
      new NaiveSeqlockPeer(static_cast<char*>(p), bytes, path, true));
}

std::unique_ptr<NaiveSeqlockPeer> NaiveSeqlockPeer::OpenAgain() const {
  const int fd = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) SysDie("opening " + path_ + " again");
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) SysDie("mapping " + path_ + " again");
  close(fd);
  if (static_cast<Header*>(p)->magic != kMagic) Die("naive_seqlock: " + path_ + " changed");
  return std::unique_ptr<NaiveSeqlockPeer>(
      new NaiveSeqlockPeer(static_cast<char*>(p), bytes_, path_, false));
}

void NaiveSeqlockPeer::Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
  char key[kKeySize];
  for (uint64_t id : ids) {
    MakeKey(id, key);
    if (!Insert(std::string_view(key, kKeySize), values.Make(id, 0))) {
      Die("naive_seqlock: loading: key " + KeyString(id) + " inserted twice");
    }
  }
}

void NaiveSeqlockPeer::WriteSlot(uint64_t* slot, uint64_t meta, const uint64_t* kw, size_t nkw,
                                 std::string_view value) {
  // Relaxed: only writers store the sequence, one at a time (the writer lock).
  const uint64_t s = Seq(slot).load(std::memory_order_relaxed);
  // Begin: an odd sequence. Relaxed store, ordered before the payload stores by the
  // release fence after it, which pairs with the readers' acquire fence.
  Seq(slot).store(s + 1, std::memory_order_relaxed);
  WriterFence();
  Store(slot + 1, meta);
  for (size_t w = 0; w < nkw; ++w) Store(slot + 2 + w, kw[w]);
  uint64_t* v = slot + 2 + key_words_;
  size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, value.data() + i, 8);
    Store(v + i / 8, w);
  }
  if (i < value.size()) {
    uint64_t w = 0;
    std::memcpy(&w, value.data() + i, value.size() - i);
    Store(v + i / 8, w);
  }
  // Commit: release, publishes the payload stores to a reader whose first (acquire)
  // sequence load sees s + 2.
  Seq(slot).store(s + 2, std::memory_order_release);
}

bool NaiveSeqlockPeer::Write(std::string_view key, std::string_view value, WriteOp op) {
  if (value.size() > value_size_) Die("naive_seqlock: value larger than the table's values");
  uint64_t kw[kMaxKeyWords];
  const size_t nkw = KeyWords(key, kw);
  std::atomic<uint32_t>& lock = header()->writer_lock;
  // Acquire: pairs with the previous holder's release store below; its slot writes are
  // visible to this writer's lookups.
  while (lock.exchange(1, std::memory_order_acquire) != 0) _mm_pause();
  uint64_t* found = nullptr;
  uint64_t* free_slot = nullptr;  // the first erased or empty slot on the probe path
  uint64_t i = XXH3_64bits(key.data(), key.size()) & mask_;
  for (uint64_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    uint64_t* slot = Slot(i);
    // Relaxed: under the lock nothing else writes the slots.
    const uint64_t meta = Load(slot + 1);
    const uint64_t state = meta & 3;
    if (state == kLive && ((meta >> 8) & 0xFFFFFF) == key.size()) {
      bool match = true;
      for (size_t w = 0; w < nkw; ++w) match &= Load(slot + 2 + w) == kw[w];
      if (match) {
        found = slot;
        break;
      }
    }
    if (state != kLive && free_slot == nullptr) free_slot = slot;
    if (state == kEmpty) break;
  }
  bool done = false;
  if (op == kErase) {
    if (found != nullptr) {
      WriteSlot(found, kErased | (uint64_t{key.size()} << 8), kw, nkw, std::string_view());
      done = true;
    }
  } else if (found != nullptr) {
    if (op == kPut) {
      WriteSlot(found, kLive | (uint64_t{key.size()} << 8) | (uint64_t{value.size()} << 32), kw,
                nkw, value);
      done = true;
    }
  } else {
    if (free_slot == nullptr) {
      lock.store(0, std::memory_order_release);
      Die("naive_seqlock: the table is full");
    }
    WriteSlot(free_slot, kLive | (uint64_t{key.size()} << 8) | (uint64_t{value.size()} << 32),
              kw, nkw, value);
    done = true;
  }
  // Release: publishes this writer's slot writes to the next writer (its acquire
  // exchange above).
  lock.store(0, std::memory_order_release);
  return done;
}

}  // namespace shmdict::bench
