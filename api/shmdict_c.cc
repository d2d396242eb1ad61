// The C ABI: argument checks that need the C names, then api/c_bridge.cc.
#include "api/shmdict_c.h"

#include <type_traits>

#include "api/c_bridge.h"

namespace b = shmdict_c_bridge;

// The C handle is the bridge's handle under its C name.
static b::Handle* H(shmdict* d) { return reinterpret_cast<b::Handle*>(d); }

static_assert(sizeof(shmdict_options) == sizeof(b::Options), "layouts must agree");
static_assert(std::is_same_v<shmdict_foreach_fn, b::ForEachFn>, "callback types must agree");

// The codes are shmdict::ErrorCode's values (api/errors.h), which this translation unit
// cannot include (its `namespace shmdict` would clash with the C type); the C API test
// checks each code's name against ErrorCodeName.
static_assert(SHMDICT_ENOTFOUND == -1 && SHMDICT_EEXISTS == -2 && SHMDICT_EFULL == -3 &&
              SHMDICT_ETOOBIG == -4 && SHMDICT_EBUFFER == -5 && SHMDICT_EVERSION == -6 &&
              SHMDICT_ETYPE == -7 && SHMDICT_EINVAL == -8 && SHMDICT_EBADFILE == -9 &&
              SHMDICT_EPERM == -10 && SHMDICT_ETIMEOUT == -11 && SHMDICT_EIO == -12);

extern "C" {

int shmdict_open(const char* path, int flags, const shmdict_options* opts, shmdict** out) {
  constexpr int kKnown = SHMDICT_CREATE | SHMDICT_EXCL | SHMDICT_READONLY | SHMDICT_ALLOW_GROUP;
  if ((flags & ~kKnown) != 0) {
    if (out != nullptr) *out = nullptr;
    return b::Fail(SHMDICT_EINVAL, "unknown flags");
  }
  b::Options o{};
  if (opts != nullptr) {
    o.capacity = opts->capacity;
    o.max_key_size = opts->max_key_size;
    o.max_value_size = opts->max_value_size;
    o.mode = opts->mode;
  }
  b::Handle* h = nullptr;
  const int rc = b::Open(path, (flags & SHMDICT_CREATE) != 0, (flags & SHMDICT_EXCL) != 0,
                         (flags & SHMDICT_READONLY) != 0, (flags & SHMDICT_ALLOW_GROUP) != 0,
                         opts != nullptr ? &o : nullptr, out != nullptr ? &h : nullptr);
  if (out != nullptr) *out = reinterpret_cast<shmdict*>(h);
  return rc;
}

int shmdict_close(shmdict* d) { return b::Close(H(d)); }

int shmdict_unlink(const char* path) { return b::Unlink(path); }

int shmdict_get(shmdict* d, const void* key, size_t key_len, void* value, size_t value_cap,
                size_t* value_len, uint64_t* version) {
  return b::Get(H(d), key, key_len, value, value_cap, value_len, version);
}

int shmdict_get_many(shmdict* d, size_t n, const void* const* keys, const size_t* key_lens,
                     void* const* values, const size_t* value_caps, size_t* value_lens,
                     uint64_t* versions, int* results) {
  return b::GetMany(H(d), n, keys, key_lens, values, value_caps, value_lens, versions,
                    results);
}

int shmdict_put(shmdict* d, const void* key, size_t key_len, const void* value,
                size_t value_len, uint64_t* version) {
  return b::Put(H(d), key, key_len, value, value_len, version);
}

int shmdict_insert(shmdict* d, const void* key, size_t key_len, const void* value,
                   size_t value_len, uint64_t* version) {
  return b::Insert(H(d), key, key_len, value, value_len, version);
}

int shmdict_replace(shmdict* d, const void* key, size_t key_len, const void* value,
                    size_t value_len, uint64_t* version) {
  return b::Replace(H(d), key, key_len, value, value_len, version);
}

int shmdict_erase(shmdict* d, const void* key, size_t key_len) {
  return b::Erase(H(d), key, key_len);
}

int shmdict_compare_and_swap(shmdict* d, const void* key, size_t key_len,
                             uint64_t expected_version, const void* value,
                             size_t value_len, uint64_t* new_version) {
  return b::CompareAndSwap(H(d), key, key_len, expected_version, value, value_len,
                           new_version);
}

int shmdict_fetch_add(shmdict* d, const void* key, size_t key_len, int64_t delta,
                      int64_t* new_value) {
  return b::FetchAdd(H(d), key, key_len, delta, new_value);
}

int shmdict_wait(shmdict* d, const void* key, size_t key_len, uint64_t version,
                 int64_t timeout_ms) {
  return b::Wait(H(d), key, key_len, version, timeout_ms);
}

int shmdict_foreach(shmdict* d, shmdict_foreach_fn fn, void* ctx) {
  return b::ForEach(H(d), fn, ctx);
}

int shmdict_count(shmdict* d, uint64_t* count) { return b::Count(H(d), count); }

const char* shmdict_strerror(int code) { return b::StrError(code); }

const char* shmdict_last_error(void) { return b::LastError(); }

}  // extern "C"
