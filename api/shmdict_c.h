/* shmdict C API: the C ABI over shmdict::Dict, for C programs and for other languages'
 * foreign-function interfaces (Python ctypes, Rust, Go cgo, ...). Exported by
 * libshmdict.so (Bazel target //api:libshmdict.so), which exports nothing else.
 *
 * Conventions
 *   - Every function returns SHMDICT_OK (0) or a negative SHMDICT_E* code, except
 *     shmdict_strerror and shmdict_last_error.
 *   - Optional out-pointers may be NULL. A NULL key/value pointer with a nonzero
 *     length gives SHMDICT_EINVAL; so does a bad handle (see "Handles" below): that
 *     SHMDICT_EINVAL is not repeated in each function's list of errors.
 *   - REQUIRES, of every function: each (pointer, length) pair points to that many
 *     readable bytes (writable ones for output buffers), each array to as many
 *     elements as the call says.
 *   - Nothing returned points into the shared mapping; values are copied into the
 *     caller's buffers.
 *   - Thread safety: a handle may be used by any number of threads at once, but must
 *     not be closed while in use (REQUIRES of every function that takes a handle).
 *     After fork(), the child may use inherited handles.
 *   - Handles. Every function that takes a handle checks it before anything else and
 *     gives SHMDICT_EINVAL, writing nothing to its out-parameters, the table or the
 *     handle, for:
 *       - NULL (last error "null handle"; shmdict_close(NULL) is a no-op and OK);
 *       - a handle already closed: "closed handle". Closing twice is so detected, and
 *         of two closes racing on one handle exactly one closes. This holds until 1024
 *         other handles of the process have been closed after it: shmdict_close
 *         unmaps the table at once, but keeps the handle's own small struct, marked
 *         closed, aside for the next 1024 closes before freeing it, and never gives it
 *         to a new handle, so a stale pointer finds the mark and never another table.
 *         (Chosen over never freeing the struct, which would make a program that opens
 *         and closes tables all day grow without bound; the aside costs at most about
 *         40 KiB.)
 *       - a pointer to readable, 8-byte aligned memory whose first 8 bytes are not a
 *         handle's 64-bit magic word: "not a shmdict handle" (nothing is written).
 *     Not detected, and undefined behaviour: a closed handle used after 1024 later
 *     closes (its memory may then be anyone's); a call on a handle that another thread
 *     closes meanwhile, or a close from inside a shmdict_foreach callback on the same
 *     handle (the table is unmapped under the running call); a pointer to memory that
 *     is not readable.
 *   - Versions: every successful write gives the key's new version; versions strictly
 *     increase per key while it exists, are never 0, and are never reused across erase
 *     and re-insert.
 *   - shmdict_fetch_add values are 8-byte little-endian signed integers; an absent key
 *     starts at 0; overflow wraps around.
 *   - Readers take no lock and never wait; see api/shmdict.h for the full guarantees
 *     and caveats.
 *   - Corrupt slots (impossible key or value lengths: only damage to the file makes
 *     them; `shmdict verify` reports them): shmdict_get and shmdict_get_many give
 *     SHMDICT_EBADFILE for such a slot holding the key; shmdict_wait sees that key as
 *     absent; shmdict_foreach and shmdict_count skip such slots and then return
 *     SHMDICT_EBADFILE; writes overwrite them.
 *   - Registration: the first write through a handle (put, set, insert, replace,
 *     compare_and_swap, erase, fetch_add, fetch_add_flags, touch, clear, sweep; again
 *     in a forked child) claims one of the
 *     table's 1024 process-table entries for the handle, which can fail, and the write
 *     with it: SHMDICT_EFULL (every entry is held by other handles of live
 *     processes), SHMDICT_EIO (reopening the file or locking the entry failed; errno
 *     is set), SHMDICT_EBADFILE (the file could not be reopened as the same file: it
 *     was replaced, and /proc is not mounted).
 *   - C++: the type name `shmdict` cannot coexist with api/shmdict.h's namespace
 *     shmdict in one translation unit; C++ programs use api/shmdict.h.
 */
#ifndef SHMDICT_API_SHMDICT_C_H_
#define SHMDICT_API_SHMDICT_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define SHMDICT_OK 0
#define SHMDICT_ENOTFOUND (-1) /* key absent; open: no file and no SHMDICT_CREATE */
#define SHMDICT_EEXISTS (-2)   /* insert: key present; open: SHMDICT_EXCL and file exists */
#define SHMDICT_EFULL (-3)     /* both candidate buckets full; or the process table is
                                  full (1024 writing handles) */
#define SHMDICT_ETOOBIG (-4)   /* key or value over the table's maxima */
#define SHMDICT_EBUFFER (-5)   /* value longer than value_cap; *value_len = size needed */
#define SHMDICT_EVERSION (-6)  /* compare_and_swap: the current version differs */
#define SHMDICT_ETYPE (-7)     /* fetch_add on a value that is not 8 bytes */
#define SHMDICT_EINVAL (-8)    /* bad argument, flags or options */
#define SHMDICT_EBADFILE (-9)  /* not a shmdict file, unsupported version, corrupt,
                                  truncated, not a regular file, or a symlink */
#define SHMDICT_EPERM (-10)    /* write on a read-only handle; access denied; file
                                  group/world-writable or foreign-owned */
#define SHMDICT_ETIMEOUT (-11) /* shmdict_wait timed out */
#define SHMDICT_EIO (-12)      /* other OS error; errno is left set */

/* Flags of shmdict_open. */
#define SHMDICT_CREATE 0x1      /* create if absent, from *opts */
#define SHMDICT_EXCL 0x2        /* with CREATE: SHMDICT_EEXISTS if the file exists */
#define SHMDICT_READONLY 0x4    /* read-only mapping; writes give SHMDICT_EPERM */
#define SHMDICT_ALLOW_GROUP 0x8 /* accept group-writable or group members' files */

/* Flags of shmdict_set and shmdict_fetch_add_flags. */
#define SHMDICT_IF_ABSENT  0x1   /* only if absent (an expired key is absent): else SHMDICT_EEXISTS */
#define SHMDICT_IF_PRESENT 0x2   /* only if present and unexpired: else SHMDICT_ENOTFOUND */

/* Eviction policies (shmdict_options.eviction): what a write of an absent key does
 * when both of its candidate buckets are full of unexpired entries (an expired
 * entry's slot is always reused first). NONE: SHMDICT_EFULL. LRS (least recently
 * stored): the entry of the lowest version in the two buckets is erased (its waiters
 * woken, counted in the statistics) and the new key takes its slot. */
#define SHMDICT_EVICT_NONE 0
#define SHMDICT_EVICT_LRS  1

/* The handle: an incomplete type, only ever held by pointer. Its name is also C++'s
 * `namespace shmdict`, so a C++ file that includes api/shmdict.h cannot also include
 * this header as it is; C++ code uses api/shmdict.h (api/shmdict_c.cc shows how to
 * include both: the tag renamed by a macro around this header). */
typedef struct shmdict shmdict;

typedef struct shmdict_options {
  uint64_t capacity;       /* keys the table must be able to hold, in [1, 2^36] */
  uint32_t max_key_size;   /* bytes, in [1, 65536] */
  uint32_t max_value_size; /* bytes, in [1, 64 MiB] */
  uint32_t mode;           /* file mode on creation; 0 means 0600 */
  uint32_t eviction;       /* SHMDICT_EVICT_*, 0 by default; opening an existing table,
                              SHMDICT_EVICT_NONE accepts its policy, LRS requires it */
} shmdict_options;

/* Opens the table at `path` (a file path; a name without '/' is a file in /dev/shm)
 * and stores a new handle in *out. With SHMDICT_CREATE, `opts` is required and the
 * file is created if absent; if it exists, each nonzero field of *opts must match it.
 * Errors: SHMDICT_ENOTFOUND, SHMDICT_EEXISTS, SHMDICT_EINVAL, SHMDICT_EBADFILE,
 * SHMDICT_EPERM, SHMDICT_EIO. */
int shmdict_open(const char *path, int flags, const shmdict_options *opts, shmdict **out);

/* Closes the handle: unmaps the table and closes the handle's file descriptors (other
 * handles, in this process or others, are not affected). NULL is accepted and does
 * nothing. Returns SHMDICT_OK; SHMDICT_EINVAL for a handle already closed or not a
 * handle (see "Handles" above), which is left as it was.
 * REQUIRES: no call on d but another shmdict_close is running in another thread (or
 * further up this thread's stack, as in a shmdict_foreach callback). */
int shmdict_close(shmdict *d);

/* Removes the table file at `path` (checked to be a shmdict file first).
 * Errors: SHMDICT_ENOTFOUND, SHMDICT_EBADFILE, SHMDICT_EPERM, SHMDICT_EIO. */
int shmdict_unlink(const char *path);

/* Copies the value of the key into value[0, value_cap), and sets *value_len and
 * *version. Errors: SHMDICT_ENOTFOUND (also for a key over the maximum size: it
 * cannot be present); SHMDICT_EBUFFER (value longer than value_cap: *value_len holds
 * the size needed, *version the version; call again with a larger buffer);
 * SHMDICT_EBADFILE (the slot holding the key is corrupt); SHMDICT_EINVAL (NULL key or
 * value with a nonzero length). */
int shmdict_get(shmdict *d, const void *key, size_t key_len, void *value, size_t value_cap,
                size_t *value_len, uint64_t *version);

/* Looks up n keys at once, as n calls of shmdict_get would, but faster per key on
 * tables larger than the CPU caches (the keys' memory misses overlap). Key i is
 * keys[i][0, key_lens[i]); its value goes to values[i][0, value_caps[i]), its length
 * to value_lens[i] and its version to versions[i] (value_lens and versions may be
 * NULL); results[i] gets the code shmdict_get would return for it (SHMDICT_OK,
 * SHMDICT_ENOTFOUND, SHMDICT_EBUFFER, SHMDICT_EBADFILE, or SHMDICT_EINVAL for a NULL
 * key or value buffer with a nonzero length). Each key is read atomically; the batch
 * is not one snapshot. Returns SHMDICT_OK when the batch was processed (then see
 * results), SHMDICT_EINVAL for a bad handle or a NULL array (keys, key_lens, values,
 * value_caps, results) with n > 0.
 * REQUIRES: each array holds n elements; keys[i] points to key_lens[i] readable
 * bytes, values[i] to value_caps[i] writable ones. */
int shmdict_get_many(shmdict *d, size_t n, const void *const *keys, const size_t *key_lens,
                     void *const *values, const size_t *value_caps, size_t *value_lens,
                     uint64_t *versions, int *results);

/* Sets the key to the value (insert or update); *version gets the new version.
 * Errors: SHMDICT_ETOOBIG (key or value over the maxima); SHMDICT_EFULL (inserting,
 * both of the key's buckets full); SHMDICT_EPERM (SHMDICT_READONLY handle);
 * SHMDICT_EINVAL (NULL key or value with a nonzero length); from the handle's first
 * write (see "Registration" above): SHMDICT_EFULL, SHMDICT_EIO, SHMDICT_EBADFILE. */
int shmdict_put(shmdict *d, const void *key, size_t key_len, const void *value,
                size_t value_len, uint64_t *version);
/* As shmdict_put, only if absent: SHMDICT_EEXISTS if present. */
int shmdict_insert(shmdict *d, const void *key, size_t key_len, const void *value,
                   size_t value_len, uint64_t *version);
/* As shmdict_put, only if present: SHMDICT_ENOTFOUND if absent. */
int shmdict_replace(shmdict *d, const void *key, size_t key_len, const void *value,
                    size_t value_len, uint64_t *version);

/* Expiry. An entry written with a time to live reads as absent everywhere (get,
 * get_many, count, foreach, wait, every flag's "absent") from ttl_ms milliseconds
 * after the write on, never earlier, and a little later: readers decide with the
 * coarse real-time clock (CLOCK_REALTIME_COARSE), a kernel tick or so behind the
 * precise one (3-8 ms measured on a virtual machine, 16 ms at most). The clock is
 * the system's real time, so a table keeps its expiries across reboots. Expired entries keep their slots
 * until a write needs the room, shmdict_sweep, or shmdict_clear. */

/* Writes the value with an expiry ttl_ms from now (0: never expires; over 2^42 ms:
 * SHMDICT_EINVAL), always (flags 0), only if absent (SHMDICT_IF_ABSENT) or only if
 * present (SHMDICT_IF_PRESENT); *version gets the new version. shmdict_put is
 * shmdict_set with ttl_ms 0 and flags 0. Errors: as shmdict_put, plus SHMDICT_EEXISTS
 * (IF_ABSENT), SHMDICT_ENOTFOUND (IF_PRESENT), SHMDICT_EINVAL (both flags, unknown
 * flags, ttl_ms too large). */
int shmdict_set(shmdict *d, const void *key, size_t key_len, const void *value,
                size_t value_len, uint64_t ttl_ms, int flags, uint64_t *version);

/* Gives the present, unexpired key a new expiry (ttl_ms from now; 0: never) and a new
 * version (*version), keeping its value. Errors: SHMDICT_ENOTFOUND (absent or
 * expired); SHMDICT_EINVAL (ttl_ms too large, NULL key with a nonzero length); the
 * write errors of shmdict_put. */
int shmdict_touch(shmdict *d, const void *key, size_t key_len, uint64_t ttl_ms,
                  uint64_t *version);

/* *ttl_ms gets the time the key has left in milliseconds (at least 1), or -1 if it
 * never expires. Errors: SHMDICT_ENOTFOUND (absent or expired); SHMDICT_EBADFILE (the
 * slot holding the key is corrupt); SHMDICT_EINVAL (NULL ttl_ms, NULL key with a
 * nonzero length). */
int shmdict_ttl(shmdict *d, const void *key, size_t key_len, int64_t *ttl_ms);

/* Erases every entry, one bucket at a time (not atomic as a whole: a write made
 * meanwhile to a bucket already cleared stays); versions keep increasing; every
 * waiter is woken. Errors: SHMDICT_EPERM (SHMDICT_READONLY handle); from the handle's
 * first write (see "Registration" above): SHMDICT_EFULL, SHMDICT_EIO,
 * SHMDICT_EBADFILE. */
int shmdict_clear(shmdict *d);

/* Erases every expired entry, so that counts and statistics are exact (writers reuse
 * expired entries' slots without it); *erased (if not NULL) gets how many. Errors: as
 * shmdict_clear. */
int shmdict_sweep(shmdict *d, uint64_t *erased);

/* Removes the key. Errors: SHMDICT_ENOTFOUND; SHMDICT_ETOOBIG (key over the maximum);
 * SHMDICT_EPERM (SHMDICT_READONLY handle); SHMDICT_EINVAL (NULL key with a nonzero
 * length); from the handle's first write (see "Registration" above): SHMDICT_EFULL,
 * SHMDICT_EIO, SHMDICT_EBADFILE. */
int shmdict_erase(shmdict *d, const void *key, size_t key_len);

/* Writes the value only if the key's version is expected_version (0: only if absent);
 * *new_version gets the new version. Errors: as shmdict_put, plus SHMDICT_EVERSION. */
int shmdict_compare_and_swap(shmdict *d, const void *key, size_t key_len,
                             uint64_t expected_version, const void *value,
                             size_t value_len, uint64_t *new_version);

/* Adds delta to the key's 8-byte integer value (absent: 0); *new_value gets the sum.
 * Errors: SHMDICT_ETYPE (the value is not 8 bytes long); SHMDICT_ETOOBIG (key over the
 * maximum, or the table's values are shorter than 8 bytes); SHMDICT_EFULL (inserting,
 * both of the key's buckets full); SHMDICT_EPERM (SHMDICT_READONLY handle);
 * SHMDICT_EINVAL (NULL key with a nonzero length); from the handle's first write (see
 * "Registration" above): SHMDICT_EFULL, SHMDICT_EIO, SHMDICT_EBADFILE. */
int shmdict_fetch_add(shmdict *d, const void *key, size_t key_len, int64_t delta,
                      int64_t *new_value);

/* As shmdict_fetch_add, with *version (if not NULL) set to the new version and flags 0
 * or SHMDICT_IF_PRESENT (an absent or expired key: SHMDICT_ENOTFOUND, nothing
 * written). A present counter keeps its expiry; an absent or expired one starts from
 * 0 with none. Errors: as shmdict_fetch_add, plus SHMDICT_ENOTFOUND (IF_PRESENT) and
 * SHMDICT_EINVAL (any other flag). */
int shmdict_fetch_add_flags(shmdict *d, const void *key, size_t key_len, int64_t delta,
                            int flags, int64_t *new_value, uint64_t *version);

/* Returns SHMDICT_OK as soon as the key's version differs from `version` (0 meaning
 * absent; a corrupt slot counts as absent), SHMDICT_ETIMEOUT after timeout_ms
 * milliseconds; a negative timeout waits forever. Wakes within a millisecond of a
 * write from any process (a SHMDICT_READONLY handle polls every millisecond); a writer
 * killed between its commit and its wake delays that to at most a second.
 * Errors: SHMDICT_ETIMEOUT; SHMDICT_ETOOBIG (key over the maximum); SHMDICT_EINVAL
 * (NULL key with a nonzero length). */
int shmdict_wait(shmdict *d, const void *key, size_t key_len, uint64_t version,
                 int64_t timeout_ms);

/* The callback of shmdict_foreach: one entry. key and value point to a private copy
 * (never into the mapping), valid during the call only. Return 0 to go on, nonzero to
 * stop the iteration. */
typedef int (*shmdict_foreach_fn)(void *ctx, const void *key, size_t key_len,
                                  const void *value, size_t value_len, uint64_t version);

/* Calls fn(ctx, ...) once for each entry, each a snapshot of one committed write. Weakly
 * consistent: an entry present for the whole iteration is visited exactly once; one
 * inserted or erased meanwhile may or may not be, and one erased and re-inserted
 * meanwhile may be visited twice. Takes no lock: fn may call any shmdict function,
 * writes to this table included.
 * Returns SHMDICT_OK, also when fn stopped early; SHMDICT_EBADFILE when corrupt slots
 * were skipped (after visiting every other entry; shmdict_last_error says how many);
 * SHMDICT_EINVAL for a bad handle or a NULL fn.
 * REQUIRES: fn does not close d. */
int shmdict_foreach(shmdict *d, shmdict_foreach_fn fn, void *ctx);

/* Sets *count (if not NULL) to the number of entries (a scan; weakly consistent while
 * writers run). Returns SHMDICT_OK; SHMDICT_EBADFILE when corrupt slots were skipped
 * (*count is still set, without them; shmdict_last_error says how many);
 * SHMDICT_EINVAL for a bad handle. */
int shmdict_count(shmdict *d, uint64_t *count);

/* A static English description of a code ("key not found", ...); never NULL. */
const char *shmdict_strerror(int code);

/* The message of the last error returned to this thread (what exactly was wrong, e.g.
 * "/dev/shm/t is group-writable; ..."), or "" if none. Valid until this thread's next
 * shmdict call. */
const char *shmdict_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHMDICT_API_SHMDICT_C_H_ */
