// MessageArena holds the messages the broker keeps for explicit-ack
// consumers (StoredMessage::Make with StoredMessage::kQueued): blocks are
// carved from 2 MiB chunks by bumping a pointer, and a chunk goes back (to a
// few spares, else to the system) once every block in it has been freed.
//
// Why not the heap: a burst held for slow consumers is hundreds of MB of
// small blocks made in arrival order and freed in about that order. From
// malloc, each block costs a search and a header, its free touches its
// neighbours' headers (cold by then) to merge them, and the heap grows and
// shrinks a page at a time. From here, a block costs a pointer bump, its
// free one atomic decrement of its chunk's count, and a burst lies in
// memory in the order it is delivered.
//
// Waste: a chunk stays mapped while any block in it lives, so a few
// messages held long (a consumer that never acks) can pin chunks that are
// otherwise empty. ShouldUse() says no (the caller uses the heap) while more
// than kWasteFloorBytes are in chunks and under a quarter of those bytes are
// live; it looks again every kRecheckEvery calls.
//
// Fresh pages: the first write to a page the process has not used costs a
// fault and the kernel's zeroing, and a burst held for slow consumers is
// all fresh pages. Chunks are asked for as transparent huge pages
// (MADV_HUGEPAGE: one fault per chunk where the kernel allows them), and a
// Warmer faults spare chunks in on a thread of its own, so that the thread
// that allocates finds them ready.
//
// Thread-safety: Allocate and Free may be called from any thread. Each
// thread bumps in a chunk of its own (given back when the thread exits); a
// block may be freed on any thread.
#ifndef SIFT_BROKER_DELIVERY_MESSAGE_ARENA_H_
#define SIFT_BROKER_DELIVERY_MESSAGE_ARENA_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace sift::delivery {

namespace message_arena_internal {
// The calling thread's chunk. Trivially destructible, so that reaching it
// costs no guard; MessageArena gives the chunk back when the thread exits.
struct Bump {
  char* next = nullptr;
  char* end = nullptr;
  void* chunk = nullptr;
  int64_t handed_out = 0;  // bytes of blocks carved from `chunk`
  uint32_t calls = 0;      // ShouldUse() calls while declining
  bool declining = false;  // ShouldUse() says no
};
inline thread_local Bump bump;

// Frees the calling thread made in one chunk, not yet taken from its count
// (MessageArena::Free takes them in one step per kFreeBatch).
struct PendingFrees {
  void* chunk = nullptr;
  int64_t bytes = 0;
  uint32_t count = 0;
};
inline thread_local PendingFrees pending_frees;
}  // namespace message_arena_internal

class MessageArena {
 public:
  static constexpr size_t kChunkBytes = size_t{2} << 20;
  // Larger blocks come from the heap (Allocate declines them).
  static constexpr size_t kMaxBlockBytes = size_t{64} << 10;
  // Freed chunks kept mapped for reuse (a burst after a burst does not fault
  // its pages in again); beyond, they are unmapped.
  static constexpr size_t kMaxSpareChunks = 8;
  static constexpr size_t kWasteFloorBytes = size_t{64} << 20;
  static constexpr size_t kRecheckEvery = 4096;
  static constexpr uint32_t kFreeBatch = 256;

  // Whether the calling thread should allocate its next block here: false
  // while the chunks waste too much (above). Cheap: a thread-local flag,
  // and a look at every chunk once per kRecheckEvery calls while false.
  static bool ShouldUse() {
    return !message_arena_internal::bump.declining || Recheck();
  }
  // A block of `bytes` bytes, aligned to 16. REQUIRES: 0 < bytes <=
  // kMaxBlockBytes. Errors: std::bad_alloc if a chunk cannot be mapped.
  static void* Allocate(size_t bytes) {
    assert(bytes > 0 && bytes <= kMaxBlockBytes);
    const size_t n = BlockBytes(bytes);
    message_arena_internal::Bump& b = message_arena_internal::bump;
    if (n > static_cast<size_t>(b.end - b.next)) return AllocateInNewChunk(n);
    void* block = b.next;
    b.next += n;
    b.handed_out += static_cast<int64_t>(n);
    return block;
  }
  // Frees a block Allocate(bytes) returned, with the same `bytes`. Blocks
  // are mostly freed in the order they were made, so consecutive frees in
  // one chunk are counted together: a chunk may go back up to kFreeBatch
  // frees late, or at the freeing thread's next FlushFrees() (or its exit).
  static void Free(void* block, size_t bytes) {
    message_arena_internal::PendingFrees& p =
        message_arena_internal::pending_frees;
    void* chunk = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(block) &
                                          ~(uintptr_t{kChunkBytes} - 1));
    const int64_t n = static_cast<int64_t>(BlockBytes(bytes));
    if (chunk == p.chunk && p.count < kFreeBatch) {
      p.bytes += n;
      ++p.count;
      return;
    }
    FreeInAnotherChunk(chunk, n);
  }
  // Takes the calling thread's counted frees from their chunk's count now.
  // A thread that frees blocks calls it before it goes idle (siftd's
  // routing thread: every pass of its loop). Cheap when there are none.
  static void FlushFrees() {
    if (message_arena_internal::pending_frees.chunk != nullptr) TakeFrees();
  }

  // For tests and STATS-like reports; a snapshot, racy against other
  // threads, and not counting frees not yet flushed (FlushFrees).
  struct Stats {
    size_t chunks_in_use = 0;  // mapped and holding blocks (or bumped in)
    size_t spare_chunks = 0;
    size_t live_bytes = 0;  // in chunks no thread bumps in any more
  };
  static Stats stats();

  // While it lives, a thread of its own keeps up to `chunks` spare chunks
  // (at most kMaxSpareChunks) mapped, with their pages faulted in: it makes
  // one whenever a thread takes a spare or maps a chunk and fewer are
  // left. It starts only once some thread has taken a chunk, so a process
  // that never holds a message here keeps no spares for it; after that,
  // the spares stay mapped (chunks * kChunkBytes of resident memory) until
  // a burst takes them. Without it, siftd's routing thread spent a third
  // of its time faulting chunks in while a burst came in (BENCHMARKS.md,
  // Notes, twelfth session); the pages now cost another core's time.
  //
  // Several may live at once (embedded brokers): the largest `chunks`
  // holds. Constructed and destroyed on any thread; the destructor stops
  // the thread and joins it (its spares stay). If a chunk cannot be
  // mapped, it tries again after the next chunk a thread takes.
  class Warmer {
   public:
    explicit Warmer(size_t chunks);
    ~Warmer();
    Warmer(const Warmer&) = delete;
    Warmer& operator=(const Warmer&) = delete;

   private:
    void Run();
    const size_t chunks_;
    bool stop_ = false;  // guarded by the arena's lock
    std::thread thread_;
  };

 private:
  // What a block of `bytes` takes: rounded up to 16 (the alignment).
  static constexpr size_t BlockBytes(size_t bytes) {
    return (bytes + 15) & ~size_t{15};
  }
  static bool Recheck();
  static void* AllocateInNewChunk(size_t n);
  static void FreeInAnotherChunk(void* chunk, int64_t bytes);
  static void TakeFrees();
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_MESSAGE_ARENA_H_
