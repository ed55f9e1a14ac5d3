#include "bench/disk_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/payload.h"
#include "bench/stats.h"

namespace sift::bench {
namespace {

int RemoveOne(const char* path, const struct stat*, int type, struct FTW*) {
  return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

}  // namespace

absl::StatusOr<std::string> MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp == nullptr || *tmp == '\0') tmp = std::getenv("TMPDIR");
  if (tmp == nullptr || *tmp == '\0') tmp = "/tmp";
  std::string path = absl::StrCat(tmp, "/", prefix, "XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return ErrnoStatus(absl::StrCat("cannot create ", path), errno);
  }
  return path;
}

bool RemoveTree(const std::string& path) {
  if (path.empty()) return true;
  return nftw(path.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

absl::StatusOr<DiskProbeResult> ProbeFsync(const std::string& dir, size_t bytes,
                                           double seconds) {
  const std::string path = absl::StrCat(dir, "/sift-bench-fsync-probe");
  const int fd = open(
      path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("cannot create ", path), errno);
  const std::string block(bytes, 'x');
  LatencyHistogram latency;
  DiskProbeResult r;
  r.dir = dir;
  r.bytes = bytes;
  absl::Status status = absl::OkStatus();
  const int64_t start = NowNs();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  int64_t now = start;
  while (now < end || r.fsyncs < 10) {
    if (write(fd, block.data(), block.size()) !=
        static_cast<ssize_t>(block.size())) {
      status = ErrnoStatus(absl::StrCat("cannot write ", path), errno);
      break;
    }
    if (fdatasync(fd) != 0) {
      status = ErrnoStatus(absl::StrCat("cannot fdatasync ", path), errno);
      break;
    }
    const int64_t t = NowNs();
    latency.Record(t - now);
    now = t;
    ++r.fsyncs;
  }
  close(fd);
  unlink(path.c_str());
  if (!status.ok()) return status;
  r.measured = true;
  r.seconds = (now - start) / 1e9;
  r.fsyncs_per_s = r.seconds > 0 ? r.fsyncs / r.seconds : 0;
  r.p50_us = latency.Percentile(0.50) / 1e3;
  r.p99_us = latency.Percentile(0.99) / 1e3;
  return r;
}

}  // namespace sift::bench
