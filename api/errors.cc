#include "api/errors.h"

#include "absl/types/optional.h"
#include <string>

#include "absl/strings/cord.h"

namespace shmdict {
namespace {

constexpr char kPayloadUrl[] = "type.shmdict/error_code";
constexpr char kErrnoUrl[] = "type.shmdict/errno";

struct Row {
  ErrorCode code;
  absl::StatusCode absl_code;
  std::string_view name;
  std::string_view description;
};

constexpr Row kTable[] = {
    {ErrorCode::kOk, absl::StatusCode::kOk, "SHMDICT_OK", "success"},
    {ErrorCode::kNotFound, absl::StatusCode::kNotFound, "SHMDICT_ENOTFOUND",
     "key or file not found"},
    {ErrorCode::kExists, absl::StatusCode::kAlreadyExists, "SHMDICT_EEXISTS",
     "key or file already exists"},
    {ErrorCode::kFull, absl::StatusCode::kResourceExhausted, "SHMDICT_EFULL",
     "table full: both candidate buckets of the key are full"},
    {ErrorCode::kTooBig, absl::StatusCode::kInvalidArgument, "SHMDICT_ETOOBIG",
     "key or value larger than the table's maximum"},
    {ErrorCode::kBuffer, absl::StatusCode::kOutOfRange, "SHMDICT_EBUFFER",
     "value larger than the caller's buffer"},
    {ErrorCode::kVersion, absl::StatusCode::kAborted, "SHMDICT_EVERSION",
     "version mismatch"},
    {ErrorCode::kType, absl::StatusCode::kFailedPrecondition, "SHMDICT_ETYPE",
     "value is not an 8-byte integer"},
    {ErrorCode::kInvalid, absl::StatusCode::kInvalidArgument, "SHMDICT_EINVAL",
     "invalid argument"},
    {ErrorCode::kBadFile, absl::StatusCode::kDataLoss, "SHMDICT_EBADFILE",
     "not a valid shmdict file (bad magic, version, layout, checksum, size or type)"},
    {ErrorCode::kPermission, absl::StatusCode::kPermissionDenied, "SHMDICT_EPERM",
     "permission denied"},
    {ErrorCode::kTimeout, absl::StatusCode::kDeadlineExceeded, "SHMDICT_ETIMEOUT",
     "timed out"},
    {ErrorCode::kIo, absl::StatusCode::kInternal, "SHMDICT_EIO",
     "operating system error"},
};

const Row* FindRow(ErrorCode code) {
  for (const Row& row : kTable) {
    if (row.code == code) return &row;
  }
  return nullptr;
}

}  // namespace

ErrorCode ErrorCodeOf(const absl::Status& status) {
  if (status.ok()) return ErrorCode::kOk;
  absl::optional<absl::Cord> payload = status.GetPayload(kPayloadUrl);
  if (payload.has_value()) {
    for (const Row& row : kTable) {
      if (*payload == absl::string_view(row.name.data(), row.name.size())) return row.code;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return ErrorCode::kNotFound;
    case absl::StatusCode::kAlreadyExists:
      return ErrorCode::kExists;
    case absl::StatusCode::kResourceExhausted:
      return ErrorCode::kFull;
    case absl::StatusCode::kOutOfRange:
      return ErrorCode::kBuffer;
    case absl::StatusCode::kAborted:
      return ErrorCode::kVersion;
    case absl::StatusCode::kFailedPrecondition:
      return ErrorCode::kType;
    case absl::StatusCode::kInvalidArgument:
      return ErrorCode::kInvalid;
    case absl::StatusCode::kDataLoss:
      return ErrorCode::kBadFile;
    case absl::StatusCode::kPermissionDenied:
      return ErrorCode::kPermission;
    case absl::StatusCode::kDeadlineExceeded:
      return ErrorCode::kTimeout;
    default:
      return ErrorCode::kIo;
  }
}

std::string_view ErrorCodeName(ErrorCode code) {
  const Row* row = FindRow(code);
  return row != nullptr ? row->name : "SHMDICT_EUNKNOWN";
}

std::string_view ErrorCodeDescription(ErrorCode code) {
  const Row* row = FindRow(code);
  return row != nullptr ? row->description : "unknown error code";
}

absl::Status MakeError(ErrorCode code, std::string_view message) {
  const Row* row = FindRow(code);
  if (row == nullptr) row = FindRow(ErrorCode::kIo);
  if (row->code == ErrorCode::kOk) return absl::OkStatus();
  absl::Status status(row->absl_code,
                      absl::string_view(message.data(), message.size()));
  status.SetPayload(kPayloadUrl,
                    absl::Cord(absl::string_view(row->name.data(), row->name.size())));
  return status;
}

absl::Status MakeOsError(std::string_view message, int err) {
  absl::Status status = MakeError(ErrorCode::kIo, message);
  status.SetPayload(kErrnoUrl, absl::Cord(std::to_string(err)));
  return status;
}

int OsErrnoOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kErrnoUrl);
  if (!payload.has_value()) return 0;
  const std::string text(*payload);
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > 100000) return 0;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace shmdict
