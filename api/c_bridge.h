// Internal: the C++ functions behind the C API (api/shmdict_c.h). Mentions neither the
// C type `shmdict` nor the C++ namespace `shmdict`, so either side can include it.
// Return values are the SHMDICT_* codes.
#ifndef SHMDICT_API_C_BRIDGE_H_
#define SHMDICT_API_C_BRIDGE_H_

#include <cstddef>
#include <cstdint>

namespace shmdict_c_bridge {

struct Handle;

struct Options {
  uint64_t capacity;
  uint32_t max_key_size;
  uint32_t max_value_size;
  uint32_t mode;
};

int Open(const char* path, bool create, bool exclusive, bool read_only, bool allow_group,
         const Options* opts, Handle** out);
int Close(Handle* d);
int Unlink(const char* path);
int Get(Handle* d, const void* key, size_t key_len, void* value, size_t value_cap,
        size_t* value_len, uint64_t* version);
int GetMany(Handle* d, size_t n, const void* const* keys, const size_t* key_lens,
            void* const* values, const size_t* value_caps, size_t* value_lens,
            uint64_t* versions, int* results);
int Put(Handle* d, const void* key, size_t key_len, const void* value, size_t value_len,
        uint64_t* version);
int Insert(Handle* d, const void* key, size_t key_len, const void* value,
           size_t value_len, uint64_t* version);
int Replace(Handle* d, const void* key, size_t key_len, const void* value,
            size_t value_len, uint64_t* version);
int Erase(Handle* d, const void* key, size_t key_len);
int CompareAndSwap(Handle* d, const void* key, size_t key_len, uint64_t expected_version,
                   const void* value, size_t value_len, uint64_t* new_version);
int FetchAdd(Handle* d, const void* key, size_t key_len, int64_t delta,
             int64_t* new_value);
int Wait(Handle* d, const void* key, size_t key_len, uint64_t version, int64_t timeout_ms);
// The C callback type of shmdict_foreach, spelled without the C names.
using ForEachFn = int (*)(void* ctx, const void* key, size_t key_len, const void* value,
                          size_t value_len, uint64_t version);
int ForEach(Handle* d, ForEachFn fn, void* ctx);
int Count(Handle* d, uint64_t* count);
const char* StrError(int code);
const char* LastError();
// Records `message` as this thread's last error and returns `code`.
int Fail(int code, const char* message);

}  // namespace shmdict_c_bridge

#endif  // SHMDICT_API_C_BRIDGE_H_
