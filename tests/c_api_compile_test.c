/* api/shmdict_c.h is a C header: this file compiles it as strict C11 (-pedantic) and
 * runs the README's C example against a table in /dev/shm. Exits nonzero on failure. */
#include "api/shmdict_c.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, \
              __LINE__, #cond, shmdict_last_error());                        \
      ++failures;                                                            \
    }                                                                        \
  } while (0)

int main(void) {
  char name[96];
  shmdict *d = NULL;
  shmdict_options o = {.capacity = 1 << 10, .max_key_size = 32, .max_value_size = 64};
  char value[64];
  size_t len = 0;
  uint64_t version = 0, got_version = 0, count = 0;
  int64_t hits = 0;
  int rc;

  /* A random part besides the pid: in Bazel's sandbox every test has the same pid. */
  {
    unsigned long long nonce = 0;
    FILE *urandom = fopen("/dev/urandom", "rb");
    if (urandom != NULL) {
      if (fread(&nonce, sizeof(nonce), 1, urandom) != 1) nonce = 0;
      fclose(urandom);
    }
    snprintf(name, sizeof(name), "shmdict-c-compile-test-%ld-%016llx", (long)getpid(),
             nonce);
  }
  shmdict_unlink(name);

  /* The README's example. */
  rc = shmdict_open(name, SHMDICT_CREATE, &o, &d);
  if (rc == SHMDICT_OK) rc = shmdict_put(d, "EURUSD", 6, "1.0842", 6, &version);
  if (rc < 0) fprintf(stderr, "%s: %s\n", shmdict_strerror(rc), shmdict_last_error());
  CHECK(rc == SHMDICT_OK);
  CHECK(d != NULL);
  if (d == NULL) return 1;

  CHECK(shmdict_get(d, "EURUSD", 6, value, sizeof(value), &len, &got_version) ==
        SHMDICT_OK);
  CHECK(len == 6 && memcmp(value, "1.0842", 6) == 0);
  CHECK(got_version == version && version != 0);
  CHECK(shmdict_get(d, "GBPUSD", 6, value, sizeof(value), &len, NULL) == SHMDICT_ENOTFOUND);
  CHECK(shmdict_fetch_add(d, "hits", 4, 1, &hits) == SHMDICT_OK && hits == 1);
  CHECK(shmdict_count(d, &count) == SHMDICT_OK && count == 2);
  CHECK(shmdict_wait(d, "EURUSD", 6, version, 0) == SHMDICT_ETIMEOUT);
  CHECK(shmdict_wait(d, "EURUSD", 6, 0, -1) == SHMDICT_OK);
  CHECK(shmdict_put(NULL, "k", 1, "v", 1, NULL) == SHMDICT_EINVAL);
  CHECK(shmdict_strerror(SHMDICT_EBADFILE) != NULL);
  CHECK(shmdict_close(d) == SHMDICT_OK);
  CHECK(shmdict_close(d) == SHMDICT_EINVAL); /* a closed handle is recognised */
  CHECK(shmdict_close(NULL) == SHMDICT_OK);
  CHECK(shmdict_unlink(name) == SHMDICT_OK);
  CHECK(shmdict_unlink(name) == SHMDICT_ENOTFOUND);

  if (failures != 0) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
