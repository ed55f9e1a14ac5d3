// The socket files of ipc:// endpoints: checked before siftd binds one,
// removed when it stops (IpcSocketFiles). ZeroMQ unlinks whatever is at
// the path and binds afresh, so a second broker started on a running
// one's path took it over without a word (the running one could no longer
// be reached over ipc), and a regular file there would be deleted. A tcp:// port in use fails to bind ("Address already in use");
// this gives ipc:// paths the same. Called by the server before zmq_bind,
// on the thread that binds; reads the file system and tries one connect().
#ifndef SIFT_BROKER_SERVER_IPC_PATH_H_
#define SIFT_BROKER_SERVER_IPC_PATH_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace sift {

// The socket file an endpoint binds: the path of an ipc:// endpoint, ""
// for any other, and for ipc://@name (abstract, no file) and ipc://* (a
// name ZeroMQ picks).
std::string IpcSocketFile(std::string_view endpoint);

// OK for an endpoint that is not ipc://, an abstract one (ipc://@name), or
// an ipc:// path that is free or holds a socket nobody listens on (left by
// a broker that was killed). Otherwise: Unavailable ("... in use: another
// process listens on it") for a live socket, FailedPrecondition for a file
// that is not a socket (it would be deleted: a symbolic link too) or a
// directory that does not exist. (A path too long for a socket is refused
// with the config, broker/config.)
absl::Status CheckIpcPathFree(std::string_view endpoint);

// The socket files a broker bound, removed when it stops or fails to start
// (ZeroMQ leaves them), so that a client's "there is no socket file" says
// the broker is gone. Each is removed only while it is still the file this
// broker bound (its inode), not one a broker started since has made. Used
// by the thread that binds and closes the socket.
class IpcSocketFiles {
 public:
  // After `endpoint` was bound: remembers its socket file, if it has one.
  void Remember(std::string_view endpoint);
  // Removes every file remembered, and forgets them.
  void RemoveAll();

 private:
  std::vector<std::pair<std::string, ino_t>> files_;
};

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_IPC_PATH_H_
