#include "broker/streams/consumer_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sift::streams {
namespace {

constexpr char kSuffix[] = ".state";
constexpr char kTempSuffix[] = ".state.tmp";

absl::Status Errno(const std::string& what) {
  const int e = errno;
  std::string text = absl::StrCat(what, ": ", std::strerror(e));
  if (e == EACCES || e == EPERM) return absl::PermissionDeniedError(text);
  if (e == ENOSPC || e == EDQUOT) return absl::ResourceExhaustedError(text);
  return absl::InternalError(text);
}

absl::Status WriteAll(int fd, const std::string& data,
                      const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat("write ", path));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

ConsumerStore::ConsumerStore(std::string dir) : dir_(std::move(dir)) {}

absl::StatusOr<std::unique_ptr<ConsumerStore>> ConsumerStore::Open(
    std::string dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(absl::StrCat("mkdir ", dir));
  }
  std::unique_ptr<ConsumerStore> store(new ConsumerStore(std::move(dir)));
  store->dir_fd_ = open(store->dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (store->dir_fd_ < 0) return Errno(absl::StrCat("open ", store->dir_));
  store->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (store->event_fd_ < 0) return Errno("eventfd");
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

ConsumerStore::~ConsumerStore() {
  if (writer_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    cv_.Signal();
    writer_.join();
  }
  if (event_fd_ >= 0) close(event_fd_);
  if (dir_fd_ >= 0) close(dir_fd_);
}

absl::StatusOr<std::map<std::string, std::string>> ConsumerStore::Load()
    const {
  std::map<std::string, std::string> out;
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) return Errno(absl::StrCat("opendir ", dir_));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  for (const std::string& file : names) {
    const std::string path = absl::StrCat(dir_, "/", file);
    if (absl::EndsWith(file, kTempSuffix)) {
      unlink(path.c_str());  // a write a crash interrupted: the old stays
      continue;
    }
    if (!absl::EndsWith(file, kSuffix)) continue;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno(absl::StrCat("open ", path));
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
    close(fd);
    if (n < 0) return Errno(absl::StrCat("read ", path));
    out[file.substr(0, file.size() - (sizeof(kSuffix) - 1))] = std::move(text);
  }
  return out;
}

uint64_t ConsumerStore::Put(const std::string& name, std::string state) {
  const uint64_t ticket = ++next_ticket_;
  {
    absl::MutexLock lock(&mu_);
    pending_[name] = {std::move(state), ticket};
  }
  cv_.Signal();
  return ticket;
}

uint64_t ConsumerStore::Remove(const std::string& name) {
  const uint64_t ticket = ++next_ticket_;
  {
    absl::MutexLock lock(&mu_);
    pending_[name] = {std::nullopt, ticket};
  }
  cv_.Signal();
  return ticket;
}

uint64_t ConsumerStore::TakeDurable() {
  uint64_t count;
  while (read(event_fd_, &count, sizeof(count)) > 0) {
  }
  return DurableTicket();
}

absl::Status ConsumerStore::writer_status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

absl::Status ConsumerStore::Write(const std::string& name,
                                  const std::optional<std::string>& state) {
  const std::string path = absl::StrCat(dir_, "/", name, kSuffix);
  if (!state) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Errno(absl::StrCat("unlink ", path));
    }
    return absl::OkStatus();
  }
  const std::string temp = absl::StrCat(dir_, "/", name, kTempSuffix);
  const int fd =
      open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("open ", temp));
  absl::Status s = WriteAll(fd, *state, temp);
  if (s.ok() && fdatasync(fd) != 0) s = Errno(absl::StrCat("fdatasync ", temp));
  close(fd);
  if (s.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    s = Errno(absl::StrCat("rename ", temp));
  }
  if (!s.ok()) unlink(temp.c_str());
  return s;
}

void ConsumerStore::WriterLoop() {
  while (true) {
    std::map<std::string, std::pair<std::optional<std::string>, uint64_t>>
        batch;
    bool closing;
    {
      absl::MutexLock lock(&mu_);
      while (pending_.empty() && !closing_) cv_.Wait(&mu_);
      batch.swap(pending_);
      closing = closing_;
      if (!status_.ok()) batch.clear();
    }
    uint64_t top = 0;
    absl::Status s;
    for (const auto& [name, entry] : batch) {
      if (s.ok()) s = Write(name, entry.first);
      top = std::max(top, entry.second);
    }
    if (s.ok() && !batch.empty() && fsync(dir_fd_) != 0) {
      s = Errno(absl::StrCat("fsync ", dir_));
    }
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      if (status_.ok()) status_ = s;
    } else if (top > 0) {
      // Tickets are given in order and each write is the newest for its
      // name, so everything given before `top` is now on disk or replaced.
      durable_.store(top, std::memory_order_release);
    }
    if (!batch.empty() || !s.ok()) {
      const uint64_t one = 1;
      ssize_t ignored = write(event_fd_, &one, sizeof(one));
      (void)ignored;
    }
    if (closing) {
      absl::MutexLock lock(&mu_);
      if (pending_.empty()) return;
    }
  }
}

}  // namespace sift::streams
