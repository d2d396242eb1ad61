#include "bench/peer_net.h"

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace shmdict::bench {

// ---------------------------------------------------------------------------------
// memcached

struct MemcachedPeer::Impl {
  std::string server;
  memcached_st* mc = nullptr;

  ~Impl() {
    if (mc != nullptr) memcached_free(mc);
  }

  [[noreturn]] void Fail(const std::string& what, memcached_return_t rc) const {
    Die("memcached at " + server + ": " + what + ": " + memcached_strerror(mc, rc));
  }

  void Connect(bool buffered) {
    std::string host;
    int port = 0;
    SplitHostPort(server, &host, &port);
    mc = memcached_create(nullptr);
    if (mc == nullptr) Die("memcached: memcached_create failed");
    memcached_return_t rc =
        memcached_server_add(mc, host.c_str(), static_cast<in_port_t>(port));
    if (rc != MEMCACHED_SUCCESS) Fail("memcached_server_add", rc);
    rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    if (rc != MEMCACHED_SUCCESS) Fail("TCP_NODELAY", rc);
    if (buffered) {
      rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
      if (rc != MEMCACHED_SUCCESS) Fail("NOREPLY", rc);
      rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
      if (rc != MEMCACHED_SUCCESS) Fail("BUFFER_REQUESTS", rc);
    }
  }
};

MemcachedPeer::MemcachedPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemcachedPeer::~MemcachedPeer() = default;

std::unique_ptr<MemcachedPeer> MemcachedPeer::Create(const PeerConfig& config) {
  if (config.server.empty()) Die("memcached: no server address (--memcached)");
  auto impl = std::make_unique<Impl>();
  impl->server = config.server;
  impl->Connect(/*buffered=*/false);
  const memcached_return_t rc = memcached_flush(impl->mc, 0);
  if (rc != MEMCACHED_SUCCESS) impl->Fail("flush_all", rc);
  return std::unique_ptr<MemcachedPeer>(new MemcachedPeer(std::move(impl)));
}

std::unique_ptr<MemcachedPeer> MemcachedPeer::OpenAgain() const {
  auto impl = std::make_unique<Impl>();
  impl->server = impl_->server;
  impl->Connect(/*buffered=*/false);
  return std::unique_ptr<MemcachedPeer>(new MemcachedPeer(std::move(impl)));
}

bool MemcachedPeer::Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
  size_t value_len = 0;
  uint32_t flags = 0;
  memcached_return_t rc;
  char* v = memcached_get(impl_->mc, key.data(), key.size(), &value_len, &flags, &rc);
  if (v == nullptr) {
    if (rc == MEMCACHED_NOTFOUND) return false;
    impl_->Fail("get", rc);
  }
  if (value_len > capacity) Die("memcached: value larger than the buffer");
  std::memcpy(buf, v, value_len);
  std::free(v);
  *len = value_len;
  return true;
}

void MemcachedPeer::Put(std::string_view key, std::string_view value) {
  const memcached_return_t rc =
      memcached_set(impl_->mc, key.data(), key.size(), value.data(), value.size(), 0, 0);
  if (rc != MEMCACHED_SUCCESS) impl_->Fail("set", rc);
}

bool MemcachedPeer::Insert(std::string_view key, std::string_view value) {
  const memcached_return_t rc =
      memcached_add(impl_->mc, key.data(), key.size(), value.data(), value.size(), 0, 0);
  if (rc == MEMCACHED_SUCCESS) return true;
  if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) return false;
  impl_->Fail("add", rc);
}

bool MemcachedPeer::Erase(std::string_view key) {
  const memcached_return_t rc = memcached_delete(impl_->mc, key.data(), key.size(), 0);
  if (rc == MEMCACHED_SUCCESS) return true;
  if (rc == MEMCACHED_NOTFOUND) return false;
  impl_->Fail("delete", rc);
}

void MemcachedPeer::Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
  Impl loader;
  loader.server = impl_->server;
  loader.Connect(/*buffered=*/true);
  char key[kKeySize];
  for (uint64_t id : ids) {
    MakeKey(id, key);
    const std::string_view v = values.Make(id, 0);
    const memcached_return_t rc =
        memcached_set(loader.mc, key, kKeySize, v.data(), v.size(), 0, 0);
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED) loader.Fail("loading: set", rc);
  }
  const memcached_return_t rc = memcached_flush_buffers(loader.mc);
  if (rc != MEMCACHED_SUCCESS) loader.Fail("loading: flush_buffers", rc);
  // The loader's requests had no replies: wait until the server has taken the last one
  // (requests on one connection are processed in order, and the loader's connection
  // closes only after the server read everything) by reading the last key back.
  if (!ids.empty()) {
    MakeKey(ids.back(), key);
    std::vector<char> buf(values.size());
    size_t len = 0;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      if (Get(std::string_view(key, kKeySize), buf.data(), buf.size(), &len)) return;
      usleep(1000);
    }
    Die("memcached: loading: the last key never appeared");
  }
}

// ---------------------------------------------------------------------------------
// Redis

struct RedisPeer::Impl {
  std::string server;
  redisContext* c = nullptr;

  ~Impl() {
    if (c != nullptr) redisFree(c);
  }

  void Connect() {
    std::string host;
    int port = 0;
    SplitHostPort(server, &host, &port);
    c = redisConnect(host.c_str(), port);
    if (c == nullptr) Die("redis: redisConnect failed (out of memory)");
    if (c->err != 0) Die("redis at " + server + ": connect: " + c->errstr);
  }

  // The reply of one command; dies on a connection error or an error reply.
  redisReply* Check(void* r, const char* what) const {
    if (r == nullptr) Die("redis at " + server + ": " + what + ": " + c->errstr);
    redisReply* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string message(reply->str, reply->len);
      freeReplyObject(reply);
      Die("redis at " + server + ": " + what + ": " + message);
    }
    return reply;
  }
};

RedisPeer::RedisPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisPeer::~RedisPeer() = default;

std::unique_ptr<RedisPeer> RedisPeer::Create(const PeerConfig& config) {
  if (config.server.empty()) Die("redis: no server address (--redis)");
  auto impl = std::make_unique<Impl>();
  impl->server = config.server;
  impl->Connect();
  freeReplyObject(impl->Check(redisCommand(impl->c, "FLUSHALL"), "FLUSHALL"));
  return std::unique_ptr<RedisPeer>(new RedisPeer(std::move(impl)));
}

std::unique_ptr<RedisPeer> RedisPeer::OpenAgain() const {
  auto impl = std::make_unique<Impl>();
  impl->server = impl_->server;
  impl->Connect();
  return std::unique_ptr<RedisPeer>(new RedisPeer(std::move(impl)));
}

bool RedisPeer::Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
  redisReply* r =
      impl_->Check(redisCommand(impl_->c, "GET %b", key.data(), key.size()), "GET");
  bool found = false;
  if (r->type == REDIS_REPLY_STRING) {
    if (r->len > capacity) Die("redis: value larger than the buffer");
    std::memcpy(buf, r->str, r->len);
    *len = r->len;
    found = true;
  } else if (r->type != REDIS_REPLY_NIL) {
    Die("redis: GET: unexpected reply type " + std::to_string(r->type));
  }
  freeReplyObject(r);
  return found;
}

void RedisPeer::Put(std::string_view key, std::string_view value) {
  redisReply* r = impl_->Check(redisCommand(impl_->c, "SET %b %b", key.data(), key.size(),
                                            value.data(), value.size()),
                               "SET");
  freeReplyObject(r);
}

bool RedisPeer::Insert(std::string_view key, std::string_view value) {
  redisReply* r = impl_->Check(redisCommand(impl_->c, "SET %b %b NX", key.data(),
                                            key.size(), value.data(), value.size()),
                               "SET NX");
  const bool inserted = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  return inserted;
}

bool RedisPeer::Erase(std::string_view key) {
  redisReply* r =
      impl_->Check(redisCommand(impl_->c, "DEL %b", key.data(), key.size()), "DEL");
  const bool erased = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  freeReplyObject(r);
  return erased;
}

void RedisPeer::Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
  constexpr size_t kBatch = 1000;
  char key[kKeySize];
  for (size_t base = 0; base < ids.size(); base += kBatch) {
    const size_t end = std::min(ids.size(), base + kBatch);
    for (size_t j = base; j < end; ++j) {
      MakeKey(ids[j], key);
      const std::string_view v = values.Make(ids[j], 0);
      if (redisAppendCommand(impl_->c, "SET %b %b", key, kKeySize, v.data(), v.size()) !=
          REDIS_OK) {
        Die("redis: loading: " + std::string(impl_->c->errstr));
      }
    }
    for (size_t j = base; j < end; ++j) {
      void* r = nullptr;
      if (redisGetReply(impl_->c, &r) != REDIS_OK) r = nullptr;
      freeReplyObject(impl_->Check(r, "loading: SET"));
    }
  }
}

}  // namespace shmdict::bench
