// shmdict error codes: one table shared by the C++ and the C API.
//
// The C++ API returns absl::Status. Every status the library creates carries, besides
// its absl::StatusCode, the exact shmdict code below (as a payload), so callers that
// need the finer distinction (an oversized key vs. another bad argument) can ask
// ErrorCodeOf(status). The C API returns these codes as negative integers.
//
//   ErrorCode       absl::StatusCode      C code               meaning
//   kOk             kOk                   SHMDICT_OK         0
//   kNotFound       kNotFound             SHMDICT_ENOTFOUND  key absent; Open: file absent
//   kExists         kAlreadyExists        SHMDICT_EEXISTS    key present (Insert); file
//                                                             exists (Open with exclusive)
//   kFull           kResourceExhausted    SHMDICT_EFULL      both candidate buckets full,
//                                                             or the process table is full
//   kTooBig         kInvalidArgument      SHMDICT_ETOOBIG    key or value over the maxima
//   kBuffer         kOutOfRange           SHMDICT_EBUFFER    caller's buffer too small
//   kVersion        kAborted              SHMDICT_EVERSION   CompareAndSwap: version differs
//   kType           kFailedPrecondition   SHMDICT_ETYPE      FetchAdd on a value that is
//                                                             not 8 bytes long
//   kInvalid        kInvalidArgument      SHMDICT_EINVAL     bad argument or options
//   kBadFile        kDataLoss             SHMDICT_EBADFILE   not a shmdict file, unsupported
//                                                             version, corrupt, truncated,
//                                                             not a regular file, symlink
//   kPermission     kPermissionDenied     SHMDICT_EPERM      write on a read-only handle;
//                                                             file mode or owner refused
//   kTimeout        kDeadlineExceeded     SHMDICT_ETIMEOUT   a wait timed out
//   kIo             kInternal             SHMDICT_EIO        other OS error
#ifndef SHMDICT_API_ERRORS_H_
#define SHMDICT_API_ERRORS_H_

#include <string_view>

#include "absl/status/status.h"

namespace shmdict {

enum class ErrorCode : int {
  kOk = 0,
  kNotFound = -1,
  kExists = -2,
  kFull = -3,
  kTooBig = -4,
  kBuffer = -5,
  kVersion = -6,
  kType = -7,
  kInvalid = -8,
  kBadFile = -9,
  kPermission = -10,
  kTimeout = -11,
  kIo = -12,
};

// The shmdict code of `status`. For statuses the library made, the exact code; for any
// other status, the code its absl::StatusCode maps to in the table above (kIo for codes
// the table does not name).
ErrorCode ErrorCodeOf(const absl::Status& status);

// "SHMDICT_ENOTFOUND" and so on; "SHMDICT_EUNKNOWN" for a value not in the enum.
std::string_view ErrorCodeName(ErrorCode code);

// A one-line English description of the code ("key not found", ...).
std::string_view ErrorCodeDescription(ErrorCode code);

// Makes a status with the absl code that `code` maps to, `message`, and the exact
// shmdict code attached. Used by the library; available to wrappers.
absl::Status MakeError(ErrorCode code, std::string_view message);

// A kIo status for an operating-system error `err` (an errno value), which it carries
// so that the C API can set errno from it.
absl::Status MakeOsError(std::string_view message, int err);

// The errno value a kIo status carries, or 0.
int OsErrnoOf(const absl::Status& status);

}  // namespace shmdict

#endif  // SHMDICT_API_ERRORS_H_
