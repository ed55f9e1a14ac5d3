#include "tests/siftd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sift::test {
namespace {

std::string Errno(std::string_view what) {
  return absl::StrCat(absl::string_view(what.data(), what.size()), ": ",
                      std::strerror(errno));
}

const char* EnvOrNull(const char* name) {
  const char* value = std::getenv(name);
  return (value != nullptr && value[0] != '\0') ? value : nullptr;
}

// A socket closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(int port) {
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// One readiness probe: connects to 127.0.0.1:port and waits briefly for the
// first byte of a ZMTP greeting (0xFF), which a ZeroMQ listener sends right
// after accepting. True only if a ZeroMQ socket answered.
bool ProbeZmtp(int port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  sockaddr_in addr = Loopback(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return false;
  }
  pollfd pfd{fd.get(), POLLIN, 0};
  if (poll(&pfd, 1, /*timeout_ms=*/1000) != 1) return false;
  unsigned char byte = 0;
  return recv(fd.get(), &byte, 1, 0) == 1 && byte == 0xFF;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::InternalError(Errno("socket"));
  sockaddr_in addr = Loopback(0);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::InternalError(Errno("bind 127.0.0.1:0"));
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(Errno("getsockname"));
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<std::string> SiftdPath() {
  std::string path;
  if (const char* override_path = EnvOrNull("SIFTD_PATH")) {
    path = override_path;
  } else {
    const char* srcdir = EnvOrNull("TEST_SRCDIR");
    if (srcdir == nullptr) {
      return absl::FailedPreconditionError(
          "neither $SIFTD_PATH nor $TEST_SRCDIR is set; run under bazel test "
          "with data = [\"//broker:siftd\"]");
    }
    const char* workspace = EnvOrNull("TEST_WORKSPACE");
    path = absl::StrCat(srcdir, "/", workspace ? workspace : "sift",
                        "/broker/siftd");
  }
  if (access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(Errno(absl::StrCat("siftd binary ", path)));
  }
  return path;
}

std::string TestTmpDir() {
  const char* dir = EnvOrNull("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

absl::StatusOr<std::unique_ptr<SiftdProcess>> SiftdProcess::Start(
    SiftdOptions options) {
  absl::StatusOr<std::string> binary = SiftdPath();
  if (!binary.ok()) return binary.status();
  if (options.port == 0) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    options.port = *port;
  }
  // One log file per SiftdProcess; the pid of the test keeps parallel test
  // processes sharing a TEST_TMPDIR apart.
  std::string log_path = absl::StrCat(TestTmpDir(), "/siftd-", options.port,
                                      "-", getpid(), ".log");
  std::unique_ptr<SiftdProcess> process(
      new SiftdProcess(std::move(options), *std::move(binary), log_path));
  if (absl::Status status = process->Spawn(); !status.ok()) return status;
  return process;
}

SiftdProcess::SiftdProcess(SiftdOptions options, std::string binary,
                           std::string log_path)
    : options_(std::move(options)),
      binary_(std::move(binary)),
      log_path_(std::move(log_path)),
      port_(options_.port) {}

SiftdProcess::~SiftdProcess() {
  if (pid_ > 0) {
    absl::Status status = Stop();
    if (!status.ok()) {
      std::fprintf(stderr, "SiftdProcess: %s\n", status.ToString().c_str());
    }
  }
  if (exit_code_.has_value() && *exit_code_ != 0) {
    std::fprintf(stderr,
                 "SiftdProcess: siftd (port %d) ended with %d; log tail:\n%s\n",
                 port_, *exit_code_, LogTail().c_str());
  }
}

std::string SiftdProcess::endpoint() const {
  return absl::StrCat("tcp://127.0.0.1:", port_);
}

absl::Status SiftdProcess::Spawn() {
  if (pid_ > 0) return absl::FailedPreconditionError("siftd already running");
  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (the test has threads).
  std::vector<std::string> args = {binary_,
                                   absl::StrCat("--endpoints=", endpoint())};
  args.insert(args.end(), options_.extra_flags.begin(),
              options_.extra_flags.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int log_fd =
      open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(Errno("open " + log_path_));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return absl::InternalError(Errno("open /dev/null"));
  }
  ++runs_;
  std::string banner = absl::StrCat("# SiftdProcess run ", runs_, ": ",
                                    absl::StrJoin(args, " "), "\n");
  if (write(log_fd, banner.data(), banner.size()) < 0) {
    // The banner is only a convenience for readers of the log.
  }

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    close(null_fd);
    return absl::InternalError(Errno("fork"));
  }
  if (pid == 0) {
    // Child. Die with the test (the forking thread), whatever happens to it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    static const char kExecFailed[] = "SiftdProcess: execv failed\n";
    if (write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1) < 0) {
    }
    _exit(127);
  }
  close(log_fd);
  close(null_fd);
  pid_ = pid;
  absl::Status ready = WaitReady();
  if (!ready.ok()) {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      WaitExit(absl::Seconds(5));
    }
    return absl::Status(
        ready.code(),
        absl::StrCat(ready.message(), "\n--- siftd log tail ---\n", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status SiftdProcess::WaitReady() {
  const absl::Time deadline = absl::Now() + options_.ready_timeout;
  // Bounded by the deadline and by an iteration cap (each probe takes at most
  // ~1 s, each pause 20 ms).
  for (int attempt = 0; attempt < 2000; ++attempt) {
    if (Reap(/*block=*/false)) {
      return absl::UnavailableError(absl::StrCat(
          "siftd exited during startup with code ", exit_code_.value_or(-1)));
    }
    if (ProbeZmtp(port_)) {
      // A foreign listener on the port would pass the probe while siftd
      // fails to bind; a last look catches a siftd that died meanwhile.
      if (Reap(/*block=*/false)) continue;
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("siftd did not accept connections on ", endpoint(),
                   " within ", absl::FormatDuration(options_.ready_timeout)));
}

bool SiftdProcess::Reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t got;
  do {
    got = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got == 0) return false;
  if (got < 0) {
    // Not our child any more (should not happen); treat as gone.
    exit_code_ = -1;
  } else if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = -WTERMSIG(status);
  } else {
    return false;  // stopped/continued: still alive
  }
  pid_ = -1;
  return true;
}

bool SiftdProcess::WaitExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    if (Reap(/*block=*/false)) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return Reap(/*block=*/false);
}

absl::Status SiftdProcess::Stop() {
  if (pid_ <= 0 || Reap(/*block=*/false)) return absl::OkStatus();
  was_killed_ = false;
  kill(pid_, SIGTERM);
  if (WaitExit(options_.stop_timeout)) return absl::OkStatus();
  const pid_t pid = pid_;
  kill(pid_, SIGKILL);
  was_killed_ = true;
  if (WaitExit(absl::Seconds(10))) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("siftd pid ", pid, " did not exit after SIGKILL"));
}

absl::Status SiftdProcess::Restart() {
  if (absl::Status status = Stop(); !status.ok()) return status;
  return Spawn();
}

bool SiftdProcess::IsRunning() { return !Reap(/*block=*/false); }

std::string SiftdProcess::ReadLog() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool SiftdProcess::WaitForLog(std::string_view needle,
                              absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    if (ReadLog().find(needle) != std::string::npos) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

std::string SiftdProcess::LogTail(size_t max_bytes) const {
  std::string log = ReadLog();
  if (log.size() <= max_bytes) return log;
  return log.substr(log.size() - max_bytes);
}

}  // namespace sift::test
