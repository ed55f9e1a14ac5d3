#include "bench/proc.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace sift::bench {
namespace {

// "VmRSS:     1234 kB" -> 1234 * 1024.
uint64_t KiloBytesField(const std::string& line) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return 0;
  return std::strtoull(line.c_str() + colon + 1, nullptr, 10) * 1024;
}

}  // namespace

absl::StatusOr<ProcSample> SampleProcess(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid);
  std::ifstream stat_file(dir + "/stat");
  std::string stat;
  if (!stat_file || !std::getline(stat_file, stat)) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  // The command name (field 2) is in parentheses and may hold spaces; the
  // fields after the last ')' start at field 3 (state).
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return absl::InternalError(absl::StrCat("cannot parse ", dir, "/stat"));
  }
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (index == 15) {
      stime = std::strtoull(field.c_str(), nullptr, 10);
      break;
    }
  }
  ProcSample sample;
  const long ticks = sysconf(_SC_CLK_TCK);
  sample.cpu_seconds =
      static_cast<double>(utime + stime) / static_cast<double>(ticks);

  std::ifstream status_file(dir + "/status");
  std::string line;
  while (std::getline(status_file, line)) {
    if (line.rfind("VmRSS:", 0) == 0) sample.rss_bytes = KiloBytesField(line);
    if (line.rfind("VmHWM:", 0) == 0) {
      sample.peak_rss_bytes = KiloBytesField(line);
    }
  }
  return sample;
}

double SelfCpuSeconds() {
  rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace sift::bench
