#include "bench/peer_lmdb.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace shmdict::bench {
namespace {

[[noreturn]] void LmdbDie(const std::string& what, int rc) {
  Die("lmdb: " + what + ": " + mdb_strerror(rc));
}

MDB_val Val(std::string_view s) {
  MDB_val v;
  v.mv_size = s.size();
  v.mv_data = const_cast<char*>(s.data());
  return v;
}

constexpr unsigned kEnvFlags = MDB_WRITEMAP | MDB_NOSYNC;

}  // namespace

struct LmdbPeer::Impl {
  std::string dir;
  bool owner = false;
  size_t map_size = 0;
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  MDB_txn* read_txn = nullptr;  // reset between Gets

  ~Impl() {
    if (read_txn != nullptr) mdb_txn_abort(read_txn);
    if (env != nullptr) mdb_env_close(env);
  }

  void Open() {
    int rc = mdb_env_create(&env);
    if (rc != 0) LmdbDie("mdb_env_create", rc);
    rc = mdb_env_set_mapsize(env, map_size);
    if (rc != 0) LmdbDie("mdb_env_set_mapsize", rc);
    rc = mdb_env_open(env, dir.c_str(), kEnvFlags, 0600);
    if (rc != 0) LmdbDie("mdb_env_open " + dir, rc);
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env, nullptr, 0, &txn);
    if (rc != 0) LmdbDie("mdb_txn_begin", rc);
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
    if (rc != 0) LmdbDie("mdb_dbi_open", rc);
    rc = mdb_txn_commit(txn);
    if (rc != 0) LmdbDie("mdb_txn_commit", rc);
    rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &read_txn);
    if (rc != 0) LmdbDie("mdb_txn_begin (read)", rc);
    mdb_txn_reset(read_txn);
  }
};

LmdbPeer::LmdbPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LmdbPeer::~LmdbPeer() {
  if (impl_->owner && !IsChildProcess()) {
    const std::string dir = impl_->dir;
    impl_.reset();  // closes the environment
    for (const char* f : {"/data.mdb", "/lock.mdb"}) {
      unlink((dir + f).c_str());
      ForgetRemoval(dir + f);
    }
    rmdir(dir.c_str());
    ForgetRemoval(dir);
  }
}

std::unique_ptr<LmdbPeer> LmdbPeer::Create(const PeerConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->dir = "/dev/shm/" + config.name;
  impl->owner = true;
  // Leaves hold an entry in ~(key + value + 8) bytes at 50-100% fill; values over
  // ~2 KiB go to overflow pages of their own. Untouched pages of the map take no memory.
  const uint64_t entry = config.value_size > 1500
                             ? (config.value_size + 16 + 4095) / 4096 * 4096 + 64
                             : 3 * (uint64_t{config.value_size} + kKeySize + 64);
  impl->map_size = static_cast<size_t>(config.keys * entry + (uint64_t{256} << 20));
  if (mkdir(impl->dir.c_str(), 0700) != 0) {
    Die("lmdb: mkdir " + impl->dir + ": " + std::strerror(errno));
  }
  RegisterForRemoval(impl->dir, /*is_dir=*/true);
  RegisterForRemoval(impl->dir + "/data.mdb");
  RegisterForRemoval(impl->dir + "/lock.mdb");
  impl->Open();
  return std::unique_ptr<LmdbPeer>(new LmdbPeer(std::move(impl)));
}

std::unique_ptr<LmdbPeer> LmdbPeer::OpenAgain() const {
  auto impl = std::make_unique<Impl>();
  impl->dir = impl_->dir;
  impl->owner = false;
  impl->map_size = impl_->map_size;
  impl->Open();
  return std::unique_ptr<LmdbPeer>(new LmdbPeer(std::move(impl)));
}

bool LmdbPeer::Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
  int rc = mdb_txn_renew(impl_->read_txn);
  if (rc != 0) LmdbDie("mdb_txn_renew", rc);
  MDB_val k = Val(key);
  MDB_val v;
  rc = mdb_get(impl_->read_txn, impl_->dbi, &k, &v);
  bool found = false;
  if (rc == 0) {
    if (v.mv_size > capacity) Die("lmdb: value larger than the buffer");
    std::memcpy(buf, v.mv_data, v.mv_size);
    *len = v.mv_size;
    found = true;
  } else if (rc != MDB_NOTFOUND) {
    LmdbDie("mdb_get", rc);
  }
  mdb_txn_reset(impl_->read_txn);
  return found;
}

void LmdbPeer::Put(std::string_view key, std::string_view value) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(impl_->env, nullptr, 0, &txn);
  if (rc != 0) LmdbDie("mdb_txn_begin", rc);
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  rc = mdb_put(txn, impl_->dbi, &k, &v, 0);
  if (rc != 0) {
    mdb_txn_abort(txn);
    LmdbDie("mdb_put", rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) LmdbDie("mdb_txn_commit", rc);
}

bool LmdbPeer::Insert(std::string_view key, std::string_view value) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(impl_->env, nullptr, 0, &txn);
  if (rc != 0) LmdbDie("mdb_txn_begin", rc);
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  rc = mdb_put(txn, impl_->dbi, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) {
    mdb_txn_abort(txn);
    return false;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    LmdbDie("mdb_put", rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) LmdbDie("mdb_txn_commit", rc);
  return true;
}

bool LmdbPeer::Erase(std::string_view key) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(impl_->env, nullptr, 0, &txn);
  if (rc != 0) LmdbDie("mdb_txn_begin", rc);
  MDB_val k = Val(key);
  rc = mdb_del(txn, impl_->dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return false;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    LmdbDie("mdb_del", rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) LmdbDie("mdb_txn_commit", rc);
  return true;
}

void LmdbPeer::Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
  // Batches of 10000 puts per transaction; the order is the caller's (random).
  constexpr size_t kBatch = 10000;
  char key[kKeySize];
  for (size_t base = 0; base < ids.size(); base += kBatch) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(impl_->env, nullptr, 0, &txn);
    if (rc != 0) LmdbDie("mdb_txn_begin", rc);
    const size_t end = std::min(ids.size(), base + kBatch);
    for (size_t j = base; j < end; ++j) {
      MakeKey(ids[j], key);
      MDB_val k = Val(std::string_view(key, kKeySize));
      MDB_val v = Val(values.Make(ids[j], 0));
      rc = mdb_put(txn, impl_->dbi, &k, &v, MDB_NOOVERWRITE);
      if (rc != 0) {
        mdb_txn_abort(txn);
        LmdbDie("loading: mdb_put", rc);
      }
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) LmdbDie("loading: mdb_txn_commit", rc);
  }
}

}  // namespace shmdict::bench
