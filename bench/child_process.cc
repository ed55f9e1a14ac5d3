#include "bench/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace sift::bench {
namespace {

std::string TempDir() {
  for (const char* var : {"TEST_TMPDIR", "TMPDIR"}) {
    const char* dir = std::getenv(var);
    if (dir != nullptr && *dir != '\0') return dir;
  }
  return "/tmp";
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::string> SelfExecutable() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) {
    return absl::InternalError(
        absl::StrCat("readlink /proc/self/exe: ", std::strerror(errno)));
  }
  return std::string(buf, static_cast<size_t>(n));
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot execute ", argv[0], ": ",
                                            std::strerror(errno)));
  }
  std::string log_path = TempDir() + "/sift-bench-child-XXXXXX";
  const int log_fd = mkostemp(log_path.data(), O_CLOEXEC | O_APPEND);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create a log file in ",
                                            TempDir(), ": ",
                                            std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    unlink(log_path.c_str());
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log_fd);
  return std::unique_ptr<ChildProcess>(
      new ChildProcess(pid, std::move(log_path)));
}

ChildProcess::~ChildProcess() {
  Stop().IgnoreError();
  if (!keep_log_) unlink(log_path_.c_str());
}

bool ChildProcess::IsRunning() {
  if (exited_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_code_ = ExitCodeOf(status);
    return false;
  }
  return r == 0;
}

absl::StatusOr<int> ChildProcess::Stop(absl::Duration timeout) {
  if (!IsRunning()) return exit_code_;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!IsRunning()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) {
    exited_ = true;
    exit_code_ = ExitCodeOf(status);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("pid ", pid_, " did not stop within ",
                   absl::FormatDuration(timeout), " of SIGTERM; killed"));
}

std::string ChildProcess::LogTail(size_t bytes) const {
  std::ifstream in(log_path_);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  if (text.size() > bytes) text = "..." + text.substr(text.size() - bytes);
  return text;
}

absl::StatusOr<std::string> ChildProcess::WaitForLogLine(
    std::string_view needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::ifstream in(log_path_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(needle) != std::string::npos) return line;
    }
    if (!IsRunning()) {
      keep_log_ = true;
      return absl::FailedPreconditionError(absl::StrCat(
          "pid ", pid_, " exited (code ", exit_code_, ") before logging \"",
          std::string(needle), "\"; log ", log_path_, ":\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      keep_log_ = true;
      return absl::DeadlineExceededError(absl::StrCat(
          "pid ", pid_, " did not log \"", std::string(needle), "\" within ",
          absl::FormatDuration(timeout), "; log ", log_path_, ":\n",
          LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sift::bench
