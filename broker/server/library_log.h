// Routes the log output of the libraries siftd links (libprotobuf's
// GOOGLE_LOG lines) through sift's logger, under a rate limit of its own, so
// that nothing a client sends can make siftd write unbounded output.
// (ZeroMQ and abseil's non-fatal paths print nothing.)
//
// Thread-safety: InstallLibraryLogHandlers() is for main(), before other
// threads start; the handler it installs may then run on any thread.
#ifndef SIFT_BROKER_SERVER_LIBRARY_LOG_H_
#define SIFT_BROKER_SERVER_LIBRARY_LOG_H_

namespace sift {

// Installs the handler process-wide (it replaces any protobuf log handler:
// an application embedding the broker decides for itself).
void InstallLibraryLogHandlers();

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_LIBRARY_LOG_H_
