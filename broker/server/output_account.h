// OutputAccount counts the bytes the broker has handed to ZeroMQ for one
// client that ZeroMQ has not yet written to the client's connection. It is
// how siftd bounds, in bytes, what a stalled subscriber can make it hold
// (ZeroMQ's high-water mark counts messages, and a message may be a 64 KiB
// batch). Every frame the loop sends to a client is built by one of the
// functions below, which charge the frame's bytes (plus ZeroMQ's per-frame
// overhead) to the account; ZeroMQ's free callback, run when the frame has
// been written or discarded, gives them back. A parent account (the whole
// broker's) is charged alongside. A client's account also counts the
// deliveries (DELIVERs, alone or in a BATCH) in those frames, so that the
// ones its connection still held when its session ended are counted as
// lost.
//
// Thread-safety: the counters are atomics: the loop thread charges and
// reads them, ZeroMQ's I/O threads give bytes back. An account lives until
// its owner (the session) and every frame charged to it have released it.
#ifndef SIFT_BROKER_SERVER_OUTPUT_ACCOUNT_H_
#define SIFT_BROKER_SERVER_OUTPUT_ACCOUNT_H_

#include <zmq.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sift {

// What ZeroMQ spends per queued frame besides its bytes (its zmq_msg_t in
// the pipe and the shared-content block), charged with every frame so that
// many tiny frames are bounded too.
inline constexpr int64_t kFrameOverheadBytes = 96;

class OutputAccount {
 public:
  // A new account with one reference (the caller's). `parent` (may be null)
  // is charged and credited alongside; the account holds a reference to it.
  static OutputAccount* New(OutputAccount* parent);

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Drops one reference; the last one deletes the account.
  void Unref();

  // Bytes charged and not yet given back.
  int64_t pending_bytes() const {
    return pending_.load(std::memory_order_relaxed);
  }
  // Deliveries in the frames charged and not yet given back (this
  // account's own; not passed to the parent).
  int64_t pending_deliveries() const {
    return deliveries_.load(std::memory_order_relaxed);
  }

  void Charge(int64_t bytes, int64_t deliveries = 0);
  void Credit(int64_t bytes, int64_t deliveries = 0);

 private:
  explicit OutputAccount(OutputAccount* parent) : parent_(parent) {}
  ~OutputAccount();
  std::atomic<int64_t> refs_{1};
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> deliveries_{0};
  OutputAccount* const parent_;
};

// A batch body under construction, handed to ZeroMQ without a copy when it
// is sent (FrameFromBuffer); `bytes` keeps its capacity between batches
// when it is small enough to be copied instead.
struct OutBuffer {
  std::string bytes;
};

// Each Init* below: `deliveries` is how many deliveries the frame carries
// (the payload frame of a DELIVER: 1; a BATCH body: its DELIVERs; a reply:
// 0), charged and given back with the bytes.
//
// Initializes *m as a frame holding a copy of `bytes`, charged to `account`.
void InitAccountedCopy(zmq_msg_t* m, std::string_view bytes,
                       OutputAccount* account, int64_t deliveries = 0);
// Initializes *m as a frame that takes over `buffer` (no copy), charged to
// `account`; the buffer is deleted once ZeroMQ is done with it.
void InitAccountedBuffer(zmq_msg_t* m, OutBuffer* buffer,
                         OutputAccount* account, int64_t deliveries = 0);
// Initializes *m as a frame sharing `payload`'s bytes (no copy: the content
// stays referenced until ZeroMQ is done), charged to `account` together
// with `extra_bytes` sent alongside (the DELIVER header frame).
void InitAccountedShare(zmq_msg_t* m, zmq_msg_t* payload, int64_t extra_bytes,
                        OutputAccount* account, int64_t deliveries = 0);

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_OUTPUT_ACCOUNT_H_
