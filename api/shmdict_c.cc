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
#include <atomic>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/get_many.h"
#include "api/shmdict.h"

// The handle behind `shmdict *`, and its life:
//   - shmdict_open allocates it with magic = kOpenMagic and the Dict;
//   - every call checks magic before anything else: kOpenMagic goes on, kClosedMagic
//     is "closed handle", anything else "not a shmdict handle" (SHMDICT_EINVAL);
//   - shmdict_close swaps kOpenMagic for kClosedMagic (one CAS: of racing closes one
//     wins), destroys the Dict (unmapping the table, closing its descriptors) and hands
//     the struct to the quarantine below instead of freeing it, so that a stale
//     pointer keeps finding kClosedMagic rather than memory malloc gave to someone else.
// Why a quarantine and not never freeing: a program that opens and closes tables all
// day would leak 16 bytes per open forever; the quarantine bounds that at kQuarantine
// structs (about 32 KiB with malloc's overhead) and still catches the usual mistakes
// (a second close, a use shortly after close). Not reusing closed structs for new
// handles matters as much: a stale pointer must never reach another table.
struct shmdict_handle {
  std::atomic<uint64_t> magic;
  std::optional<::shmdict::Dict> dict;  // empty once closed
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

// Arbitrary, and unlikely in memory that is not a handle: the bytes "SHMDICTo" and
// "SHMDICTc" on a little-endian machine.
constexpr uint64_t kOpenMagic = 0x6f544349444d4853ull;
constexpr uint64_t kClosedMagic = 0x63544349444d4853ull;

// The number of closed handles whose memory is kept (documented in api/shmdict_c.h).
constexpr uint64_t kQuarantine = 1024;

// A ring of the last kQuarantine closed handles; each close frees the one it displaces.
// Lock-free, so that a child of a multi-threaded fork() can close too.
std::atomic<shmdict_handle*> quarantine[kQuarantine];
std::atomic<uint64_t> quarantine_next{0};

void Quarantine(shmdict_handle* h) {
  // Relaxed: only picks a ring position; the exchange below orders the handles.
  const uint64_t i = quarantine_next.fetch_add(1, std::memory_order_relaxed) % kQuarantine;
  // Acq_rel: release publishes our closing of h (its magic and emptied Dict) to the
  // thread that later displaces and frees it; acquire pairs with the release of the
  // thread that put `old` here, so its stores to `old` happen before our delete.
  // Racing closes that land on one position each get a different `old` (exchanges on
  // one atomic are totally ordered), so none is freed twice.
  shmdict_handle* const old = quarantine[i].exchange(h, std::memory_order_acq_rel);
  delete old;
}

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

// Records why `d` is not an open handle; returns null.
ABSL_ATTRIBUTE_NOINLINE sd::Dict* NotOpen(const shmdict_handle* d, uint64_t magic) {
  if (d == nullptr) {
    Fail(SHMDICT_EINVAL, "null handle");
  } else if (magic == kClosedMagic) {
    Fail(SHMDICT_EINVAL, "closed handle");
  } else {
    Fail(SHMDICT_EINVAL, "not a shmdict handle");
  }
  return nullptr;
}

// The Dict of the open handle `d`; null (with the reason as the last error) if `d` is
// null, closed, or not a handle.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline sd::Dict* DictOf(shmdict_handle* d) {
  if (ABSL_PREDICT_FALSE(d == nullptr)) return NotOpen(d, 0);
  // Relaxed: the caller's own synchronization orders this call after the open that
  // made the handle (it passed the pointer to us) and after its close, if that
  // happened (calls racing with close are excluded by the header's REQUIRES), and a
  // load sees the latest store that happens before it.
  const uint64_t magic = d->magic.load(std::memory_order_relaxed);
  if (ABSL_PREDICT_FALSE(magic != kOpenMagic)) return NotOpen(d, magic);
  return &*d->dict;
}

// The checks of a key and a value; SHMDICT_OK or the error.
int CheckKeyValue(const void* key, size_t key_len, const void* value, size_t value_len) {
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if (BadBytes(value, value_len)) return Fail(SHMDICT_EINVAL, "null value");
  return SHMDICT_OK;
}

// The C API's ttl_ms as a Duration: 0 is "never"; values over the engine's maximum
// stay over it (Dict says kInvalid) without overflowing a Duration's arithmetic.
absl::Duration TtlOf(uint64_t ttl_ms) {
  if (ttl_ms == 0) return absl::InfiniteDuration();
  return absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(ttl_ms, uint64_t{1} << 62)));
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
    if (opts->eviction != SHMDICT_EVICT_NONE && opts->eviction != SHMDICT_EVICT_LRS) {
      return Fail(SHMDICT_EINVAL, "eviction is neither SHMDICT_EVICT_NONE nor SHMDICT_EVICT_LRS");
    }
    o.eviction = static_cast<sd::Eviction>(opts->eviction);
  }
  absl::StatusOr<sd::Dict> dict = sd::Dict::Open(path, o);
  if (!dict.ok()) return FromStatus(dict.status());
  shmdict_handle* handle = new (std::nothrow) shmdict_handle{{kOpenMagic}, std::move(*dict)};
  if (handle == nullptr) {
    errno = ENOMEM;
    return Fail(SHMDICT_EIO, "out of memory");
  }
  *out = handle;
  return SHMDICT_OK;
}

int shmdict_close(shmdict_handle* d) {
  if (d == nullptr) return SHMDICT_OK;
  // Checked with a load first: memory that is not a handle is only read, never
  // written (a CAS stores even when it fails, on x86 at least).
  if (DictOf(d) == nullptr) return SHMDICT_EINVAL;
  uint64_t magic = kOpenMagic;
  // Relaxed: only the RMW's atomicity matters: of closes racing on one handle exactly
  // one reads kOpenMagic and goes on; the others, and every later call, read
  // kClosedMagic. The Dict this thread destroys below was made visible to it by
  // whatever passed it the handle, as in DictOf.
  if (!d->magic.compare_exchange_strong(magic, kClosedMagic, std::memory_order_relaxed)) {
    NotOpen(d, magic);
    return SHMDICT_EINVAL;
  }
  d->dict.reset();
  Quarantine(d);
  return SHMDICT_OK;
}

int shmdict_unlink(const char* path) {
  if (path == nullptr) return Fail(SHMDICT_EINVAL, "null path");
  return FromStatus(sd::Dict::Unlink(path));
}

int shmdict_get(shmdict_handle* d, const void* key, size_t key_len, void* value,
                size_t value_cap, size_t* value_len, uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if (BadBytes(value, value_cap)) return Fail(SHMDICT_EINVAL, "null value buffer");
  return FromStatus(dict->GetInto(View(key, key_len), static_cast<char*>(value),
                                    value_cap, value_len, version));
}

int shmdict_get_many(shmdict_handle* d, size_t n, const void* const* keys,
                     const size_t* key_lens, void* const* values, const size_t* value_caps,
                     size_t* value_lens, uint64_t* versions, int* results) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
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
    const absl::StatusOr<size_t> found = dict->GetMany(
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
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (int rc = CheckKeyValue(key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(dict->Put(View(key, key_len), View(value, value_len)), version);
}

int shmdict_insert(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                   size_t value_len, uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (int rc = CheckKeyValue(key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(dict->Insert(View(key, key_len), View(value, value_len)), version);
}

int shmdict_replace(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                    size_t value_len, uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (int rc = CheckKeyValue(key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(dict->Replace(View(key, key_len), View(value, value_len)), version);
}

int shmdict_set(shmdict_handle* d, const void* key, size_t key_len, const void* value,
                size_t value_len, uint64_t ttl_ms, int flags, uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (int rc = CheckKeyValue(key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  if ((flags & ~(SHMDICT_IF_ABSENT | SHMDICT_IF_PRESENT)) != 0) {
    return Fail(SHMDICT_EINVAL, "unknown flags");
  }
  if (flags == (SHMDICT_IF_ABSENT | SHMDICT_IF_PRESENT)) {
    return Fail(SHMDICT_EINVAL, "SHMDICT_IF_ABSENT and SHMDICT_IF_PRESENT exclude each other");
  }
  sd::SetOptions o;
  o.ttl = TtlOf(ttl_ms);
  o.if_absent = (flags & SHMDICT_IF_ABSENT) != 0;
  o.if_present = (flags & SHMDICT_IF_PRESENT) != 0;
  return WriteResult(dict->Set(View(key, key_len), View(value, value_len), o), version);
}

int shmdict_touch(shmdict_handle* d, const void* key, size_t key_len, uint64_t ttl_ms,
                  uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  return WriteResult(dict->Touch(View(key, key_len), TtlOf(ttl_ms)), version);
}

int shmdict_ttl(shmdict_handle* d, const void* key, size_t key_len, int64_t* ttl_ms) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if (ttl_ms == nullptr) return Fail(SHMDICT_EINVAL, "null ttl_ms");
  absl::StatusOr<absl::Duration> left = dict->Ttl(View(key, key_len));
  if (!left.ok()) return FromStatus(left.status());
  *ttl_ms = *left == absl::InfiniteDuration() ? -1 : absl::ToInt64Milliseconds(*left);
  return SHMDICT_OK;
}

int shmdict_clear(shmdict_handle* d) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  return FromStatus(dict->Clear());
}

int shmdict_sweep(shmdict_handle* d, uint64_t* erased) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  absl::StatusOr<uint64_t> n = dict->Sweep();
  if (!n.ok()) return FromStatus(n.status());
  if (erased != nullptr) *erased = *n;
  return SHMDICT_OK;
}

int shmdict_erase(shmdict_handle* d, const void* key, size_t key_len) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  return FromStatus(dict->Erase(View(key, key_len)));
}

int shmdict_compare_and_swap(shmdict_handle* d, const void* key, size_t key_len,
                             uint64_t expected_version, const void* value,
                             size_t value_len, uint64_t* new_version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (int rc = CheckKeyValue(key, key_len, value, value_len); rc != SHMDICT_OK) return rc;
  return WriteResult(
      dict->CompareAndSwap(View(key, key_len), expected_version, View(value, value_len)),
      new_version);
}

int shmdict_fetch_add(shmdict_handle* d, const void* key, size_t key_len, int64_t delta,
                      int64_t* new_value) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  const absl::StatusOr<int64_t> v = dict->FetchAdd(View(key, key_len), delta);
  if (!v.ok()) return FromStatus(v.status());
  if (new_value != nullptr) *new_value = *v;
  return SHMDICT_OK;
}

int shmdict_fetch_add_flags(shmdict_handle* d, const void* key, size_t key_len,
                            int64_t delta, int flags, int64_t* new_value, uint64_t* version) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  if ((flags & ~SHMDICT_IF_PRESENT) != 0) {
    return Fail(SHMDICT_EINVAL, "fetch_add takes no flag but SHMDICT_IF_PRESENT");
  }
  const absl::StatusOr<int64_t> v = dict->FetchAdd(View(key, key_len), delta, version,
                                                   (flags & SHMDICT_IF_PRESENT) != 0);
  if (!v.ok()) return FromStatus(v.status());
  if (new_value != nullptr) *new_value = *v;
  return SHMDICT_OK;
}

int shmdict_wait(shmdict_handle* d, const void* key, size_t key_len, uint64_t version,
                 int64_t timeout_ms) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (BadBytes(key, key_len)) return Fail(SHMDICT_EINVAL, "null key");
  return FromStatus(dict->WaitForChange(View(key, key_len), version, timeout_ms));
}

// A scan that skipped corrupt slots: it visited or counted every other entry, and
// says how many it could not read.
static int CorruptSlotsSkipped(uint64_t corrupt) {
  const std::string message = absl::StrCat(corrupt, " corrupt slot(s) skipped: the table is "
                                           "damaged (shmdict verify lists them)");
  return Fail(SHMDICT_EBADFILE, message);
}

int shmdict_foreach(shmdict_handle* d, shmdict_foreach_fn fn, void* ctx) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  if (fn == nullptr) return Fail(SHMDICT_EINVAL, "null callback");
  const uint64_t corrupt =
      dict->ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
        return fn(ctx, key.data(), key.size(), value.data(), value.size(), version) == 0;
      });
  return corrupt == 0 ? SHMDICT_OK : CorruptSlotsSkipped(corrupt);
}

int shmdict_count(shmdict_handle* d, uint64_t* count) {
  sd::Dict* const dict = DictOf(d);
  if (dict == nullptr) return SHMDICT_EINVAL;
  uint64_t corrupt = 0;
  const uint64_t n = dict->Count(&corrupt);
  if (count != nullptr) *count = n;
  return corrupt == 0 ? SHMDICT_OK : CorruptSlotsSkipped(corrupt);
}

const char* shmdict_strerror(int code) {
  // The table's descriptions are NUL-terminated literals.
  return sd::ErrorCodeDescription(static_cast<ErrorCode>(code)).data();
}

const char* shmdict_last_error(void) { return last_error.c_str(); }

}  // extern "C"
