// Checks on an ipc:// endpoint before siftd binds it. ZeroMQ unlinks
// whatever is at the path and binds afresh, so a second broker started on
// a running one's path took it over without a word (the running one could
// no longer be reached over ipc), and a regular file there would be
// deleted. A tcp:// port in use fails to bind ("Address already in use");
// this gives ipc:// paths the same. Called by the server before zmq_bind,
// on the thread that binds; reads the file system and tries one connect().
#ifndef SIFT_BROKER_SERVER_IPC_PATH_H_
#define SIFT_BROKER_SERVER_IPC_PATH_H_

#include <string_view>

#include "absl/status/status.h"

namespace sift {

// OK for an endpoint that is not ipc://, an abstract one (ipc://@name), or
// an ipc:// path that is free or holds a socket nobody listens on (left by
// a broker that was killed). Otherwise: Unavailable ("... in use: another
// process listens on it") for a live socket, FailedPrecondition for a file
// that is not a socket (it would be deleted: a symbolic link too) or a
// directory that does not exist. (A path too long for a socket is refused
// with the config, broker/config.)
absl::Status CheckIpcPathFree(std::string_view endpoint);

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_IPC_PATH_H_
