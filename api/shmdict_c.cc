// The C API (api/shmdict_c.h): argument checks, then shmdict::Dict (api/shmdict.h).
//
// One name, two meanings. The C handle type is `struct shmdict`, and C++ code has
// `namespace shmdict`; a class and a namespace cannot share a name in one scope, so no
// translation unit can see both. This one reads the C header with the handle's tag
// renamed to `shmdict_handle` (the macro below, undefined at once), and defines that
// struct as the real handle. Sound because:
//   - every definition below is still checked against the header's declaration: a C
//     function defined with another signature than the one declared does not compile;
//   - symbols of C functions carry no parameter types, so the exported names are the
//     header's (tests/libshmdict_symbols_test.py);
//   - callers only ever hold the handle as a pointer to an incomplete struct, which the
//     C ABI passes as it passes any object pointer; no object is accessed through a
//     type other than its own.
#include <stddef.h>
#include <stdint.h>

#define shmdict shmdict_handle
#include "api/shmdict_c.h"
#undef shmdict

#include <errno.h>

#include <algorithm>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/get_many.h"
#include "api/shmdict.h"

// The handle behind `shmdict *`.
struct shmdict_handle {
  ::shmdict::Dict dict;
};

namespace {

namespace sd = ::shmdict;
using sd::ErrorCode;

static_assert(SHMDICT_OK == static_cast<int>(ErrorCode::kOk));
static_assert(SHMDICT_ENOTFOUND == static_cast<int>(ErrorCode::kNotFound));
static_assert(SHMDICT_EEXISTS == static_cast<int>(ErrorCode::kExists));
static_assert(SHMDICT_EFULL == static_cast<int>(ErrorCode::kFull));
static_assert(SHMDICT_ETOOBIG == static_cast<int>(ErrorCode::kTooBig));
static_assert(SHMDICT_EBUFFER == static_cast<int>(ErrorCode::kBuffer));
static_assert(SHMDICT_EVERSION == static_cast<int>(ErrorCode::kVersion));
static_assert(SHMDICT_ETYPE == static_cast<int>(ErrorCode::kType));
static_assert(SHMDICT_EINVAL == static_cast<int>(ErrorCode::kInvalid));
static_assert(SHMDICT_EBADFILE == static_cast<int>(ErrorCode::kBadFile));
static_assert(SHMDICT_EPERM == static_cast<int>(ErrorCode::kPermission));
static_assert(SHMDICT_ETIMEOUT == static_cast<int>(ErrorCode::kTimeout));
static_assert(SHMDICT_EIO == static_cast<int>(ErrorCode::kIo));

thread_local std::string last_error;

// Records `message` as this thread's last error and returns `code`.
int Fail(int code, std::string_view message) {
  last_error.assign(message.data(), message.size());
  return code;
}

int FromStatus(const absl::Status& status) {
  if (status.ok()) return SHMDICT_OK;
  const ErrorCode code = sd::ErrorCodeOf(status);
  if (status.message().empty()) {
    // Hot-path misses carry no message (no allocation): describe the code instead.
    last_error.assign(sd::ErrorCodeDescription(code));
  } else {
    last_error.assign(status.message().data(), status.message().size());
  }
  if (code == ErrorCode::kIo) {
    const int err = sd::OsErrnoOf(status);
    if (err != 0) errno = err;
  }
  return static_cast<int>(code);
}

int WriteResult(const absl::StatusOr<uint64_t>& v, uint64_t* version) {
  if (!v.ok()) return FromStatus(v.status());
  if (version != nullptr) *version = *v;
  return SHMDICT_OK;
}

// A null pointer with a nonzero length.
bool BadBytes(const void* p, size_t n) { return p == nullptr && n != 0; }

std::string_view View(const void* p, size_t n) {
  return n == 0 ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

// The checks every write makes of its arguments; SHMDICT_OK or the error.
int CheckWriteArgs(const shmdict_handle* d, const void* key, size_t key_len,
                   const void* value, size_t value_len) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if (BadBytes(value, value_len)) return Fail(SHMDICT_EINVAL, "null value");
  return SHMDICT_OK;
}

}  // namespace

extern "C" {

int shmdict_open(const char* path, int flags, const shmdict_options* opts,
                 shmdict_handle** out) {
  if (out == nullptr) return Fail(SHMDICT_EINVAL, "null out pointer");
  *out = nullptr;
  constexpr int kKnown = SHMDICT_CREATE | SHMDICT_EXCL | SHMDICT_READONLY | SHMDICT_ALLOW_GROUP;
  if ((flags & ~kKnown) != 0) return Fail(SHMDICT_EINVAL, "unknown flags");
  if (path == nullptr) return Fail(SHMDICT_EINVAL, "null path");
  sd::OpenOptions o;
  o.create = (flags & SHMDICT_CREATE) != 0;
  o.exclusive = (flags & SHMDICT_EXCL) != 0;
  o.read_only = (flags & SHMDICT_READONLY) != 0;
  o.allow_group = (flags & SHMDICT_ALLOW_GROUP) != 0;
  if (o.create) {
    if (opts == nullptr) return Fail(SHMDICT_EINVAL, "SHMDICT_CREATE needs options");
    o.capacity = opts->capacity;
    o.max_key_size = opts->max_key_size;
    o.max_value_size = opts->max_value_size;
    o.mode = opts->mode == 0 ? 0600 : opts->mode;
  }
  absl::StatusOr<sd::Dict> dict = sd::Dict::Open(path, o);
  if (!dict.ok()) return FromStatus(dict.status());
  shmdict_handle* handle = new (std::nothrow) shmdict_handle{std::move(*dict)};
  if (handle == nullptr) {
    errno = ENOMEM;
    return Fail(SHMDICT_EIO, "out of memory");
  }
  *out = handle;
  return SHMDICT_OK;
}

int shmdict_close(shmdict_handle* d) {
  delete d;
  return SHMDICT_OK;
}

int shmdict_unlink(const char* path) {
  if (path == nullptr) return Fail(SHMDICT_EINVAL, "null path");
  return FromStatus(sd::Dict::Unlink(path));
}

int shmdict_get(shmdict_handle* d, const void* key, size_t key_len, void* value,
                size_t value_cap, size_t* value_len, uint64_t* version) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if (BadBytes(value, value_cap)) return Fail(SHMDICT_EINVAL, "null value buffer");
  return FromStatus(d->dict.GetInto(View(key, key_len), static_cast<char*>(value),
                                    value_cap, value_len, version));
}

int shmdict_get_many(shmdict_handle* d, size_t n, const void* const* keys,
                     const size_t* key_lens, void* const* values, const size_t* value_caps,
                     size_t* value_lens, uint64_t* versions, int* results) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (n == 0) return SHMDICT_OK;
  if (keys == nullptr || key_lens == nullptr || values == nullptr ||
      value_caps == nullptr || results == nullptr) {
    return Fail(SHMDICT_EINVAL, "null keys, key_lens, values, value_caps or results array");
  }
  // In chunks on the stack: no allocation.
  constexpr size_t kChunk = 64;
  std::string_view k[kChunk];
  absl::Span<char> v[kChunk];
  sd::GetManyResult r[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t m = std::min(kChunk, n - base);
    for (size_t i = 0; i < m; ++i) {
      const size_t j = base + i;
      // A null key or buffer with nonzero length: that key fails with EINVAL, looked
      // up as an empty key / buffer meanwhile (harmless) so the batch stays uniform.
      k[i] = BadBytes(keys[j], key_lens[j]) ? std::string_view() : View(keys[j], key_lens[j]);
      v[i] = BadBytes(values[j], value_caps[j])
                 ? absl::Span<char>()
                 : absl::Span<char>(static_cast<char*>(values[j]), value_caps[j]);
    }
    const absl::StatusOr<size_t> found = d->dict.GetMany(
        absl::MakeConstSpan(k, m), absl::MakeConstSpan(v, m), absl::MakeSpan(r, m));
    if (!found.ok()) return FromStatus(found.status());
    for (size_t i = 0; i < m; ++i) {
      const size_t j = base + i;
      if (BadBytes(keys[j], key_lens[j]) || BadBytes(values[j], value_caps[j])) {
        results[j] = SHMDICT_EINVAL;
        continue;
      }
      results[j] =
          r[i].status.ok() ? SHMDICT_OK : static_cast<int>(sd::ErrorCodeOf(r[i].status));
      if (value_lens != nullptr) value_lens[j] = r[i].value_len;
      if (versions != nullptr) versions[j] = r[i].version;
    }
  }
  return SHMDICT_OK;
}

int shmdict_put(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                size_t value_len, uint64_t* version) {
  if (int rc = CheckWriteArgs(d, key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(d->dict.Put(View(key, key_len), View(value, value_len)), version);
}

int shmdict_insert(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                   size_t value_len, uint64_t* version) {
  if (int rc = CheckWriteArgs(d, key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(d->dict.Insert(View(key, key_len), View(value, value_len)), version);
}

int shmdict_replace(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                    size_t value_len, uint64_t* version) {
  if (int rc = CheckWriteArgs(d, key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(d->dict.Replace(View(key, key_len), View(value, value_len)), version);
}

int shmdict_erase(shmdict_handle* d, const void* key, size_t key_len) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  return FromStatus(d->dict.Erase(View(key, key_len)));
}

int shmdict_compare_and_swap(shmdict_handle* d, const void* key, size_t key_len,
                             uint64_t expected_version, const void* value,
                             size_t value_len, uint64_t* new_version) {
  if (int rc = CheckWriteArgs(d, key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(
      d->dict.CompareAndSwap(View(key, key_len), expected_version, View(value, value_len)),
      new_version);
}

int shmdict_fetch_add(shmdict_handle* d, const void* key, size_t key_len, int64_t delta,
                      int64_t* new_value) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  const absl::StatusOr<int64_t> v = d->dict.FetchAdd(View(key, key_len), delta);
  if (!v.ok()) return FromStatus(v.status());
  if (new_value != nullptr) *new_value = *v;
  return SHMDICT_OK;
}

int shmdict_wait(shmdict_handle* d, const void* key, size_t key_len, uint64_t version,
                 int64_t timeout_ms) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  return FromStatus(d->dict.WaitForChange(View(key, key_len), version, timeout_ms));
}

int shmdict_foreach(shmdict_handle* d, shmdict_foreach_fn fn, void* ctx) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  if (fn == nullptr) return Fail(SHMDICT_EINVAL, "null callback");
  d->dict.ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
    return fn(ctx, key.data(), key.size(), value.data(), value.size(), version) == 0;
  });
  return SHMDICT_OK;
}

int shmdict_count(shmdict_handle* d, uint64_t* count) {
  if (d == nullptr) return Fail(SHMDICT_EINVAL, "null handle");
  const uint64_t n = d->dict.Count();
  if (count != nullptr) *count = n;
  return SHMDICT_OK;
}

const char* shmdict_strerror(int code) {
  // The table's descriptions are NUL-terminated literals.
  return sd::ErrorCodeDescription(static_cast<ErrorCode>(code)).data();
}

const char* shmdict_last_error(void) { return last_error.c_str(); }

}  // extern "C"
