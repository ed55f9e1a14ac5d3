#include "broker/delivery/message_arena.h"

#include <sys/mman.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <new>
#include <vector>

namespace sift::delivery {

namespace {

constexpr size_t kChunk = MessageArena::kChunkBytes;

// The first cache line of every chunk (blocks start after it, so frees on
// other threads do not share a line with the thread bumping in the chunk).
struct alignas(64) ChunkHeader {
  // Bytes of live blocks. While a thread bumps in the chunk: kBias less the
  // bytes freed so far, so no free can bring it to 0; the thread then takes
  // away kBias less what it handed out (Bump::Retire).
  std::atomic<int64_t> live{0};
  size_t index = 0;  // in Shared::in_use
};
static_assert(sizeof(ChunkHeader) == 64, "one cache line");
constexpr int64_t kBias = int64_t{1} << 40;

// What all threads share, under `mu`. Never destroyed: blocks may be freed
// (and chunks released) by thread exits after static destruction begins.
struct Shared {
  std::mutex mu;
  std::vector<ChunkHeader*> in_use;
  std::vector<ChunkHeader*> spares;
  uint64_t chunks_taken = 0;  // by Refill, spares or new
  std::condition_variable chunk_taken;  // Warmers wait on it
};
Shared& TheShared() {
  static Shared* const shared = new Shared;
  return *shared;
}

// A chunk-aligned mapping of kChunk bytes, or nullptr.
void* MapChunk() {
  void* p = mmap(nullptr, 2 * kChunk, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kChunk - 1) & ~(uintptr_t{kChunk} - 1);
  if (aligned > start) munmap(p, aligned - start);
  const uintptr_t tail = aligned + kChunk;
  if (start + 2 * kChunk > tail) {
    munmap(reinterpret_cast<void*>(tail), start + 2 * kChunk - tail);
  }
  // A hint: without transparent huge pages (or with none free) the chunk
  // is faulted in a page at a time, as before.
  madvise(reinterpret_cast<void*>(aligned), kChunk, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

// Writes a byte in every page of `chunk`, so that its faults are taken
// now, on the calling thread.
void FaultIn(void* chunk) {
  volatile char* p = static_cast<char*>(chunk);
  for (size_t at = 0; at < kChunk; at += 4096) p[at] = 0;
}

// Chunk `c` holds no live block and no thread bumps in it.
void Release(ChunkHeader* c) {
  Shared& s = TheShared();
  std::lock_guard<std::mutex> lock(s.mu);
  ChunkHeader* last = s.in_use.back();
  s.in_use[c->index] = last;
  last->index = c->index;
  s.in_use.pop_back();
  if (s.spares.size() < MessageArena::kMaxSpareChunks) {
    s.spares.push_back(c);
  } else {
    munmap(c, kChunk);
  }
}

// Whether the chunks in use waste too much. REQUIRES: s.mu held.
bool Wasteful(const Shared& s) {
  const size_t mapped = s.in_use.size() * kChunk;
  if (mapped <= MessageArena::kWasteFloorBytes) return false;
  size_t live = 0;
  for (const ChunkHeader* c : s.in_use) {
    const int64_t v = c->live.load(std::memory_order_relaxed);
    live += v > kBias / 2 ? kChunk : static_cast<size_t>(v);  // bumped in
  }
  return live < mapped / 4;
}

using message_arena_internal::Bump;

// Stops bumping in the thread's chunk; releases it if all its blocks are
// freed.
void Retire(Bump& b) {
  if (b.chunk == nullptr) return;
  ChunkHeader* c = static_cast<ChunkHeader*>(b.chunk);
  b.chunk = nullptr;
  b.next = b.end = nullptr;
  const int64_t take = kBias - b.handed_out;
  if (c->live.fetch_sub(take, std::memory_order_acq_rel) == take) Release(c);
}

// Gives the thread's chunk back when the thread exits.
struct RetireAtExit {
  ~RetireAtExit() { Retire(message_arena_internal::bump); }
};

// Takes the thread's counted frees when it exits.
struct FlushAtExit {
  ~FlushAtExit() { MessageArena::FlushFrees(); }
};

// Starts bumping in a spare or new chunk; notes whether the arena wastes
// too much.
void Refill(Bump& b) {
  thread_local RetireAtExit retire_at_exit;
  (void)retire_at_exit;  // constructed once per thread, here
  Retire(b);
  Shared& s = TheShared();
  ChunkHeader* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    b.declining = Wasteful(s);
    b.calls = 0;
    if (!s.spares.empty()) {
      c = s.spares.back();
      s.spares.pop_back();
    } else if (void* m = MapChunk()) {
      c = new (m) ChunkHeader;
    } else {
      throw std::bad_alloc();
    }
    c->live.store(kBias, std::memory_order_relaxed);
    c->index = s.in_use.size();
    s.in_use.push_back(c);
    ++s.chunks_taken;
  }
  s.chunk_taken.notify_all();
  b.chunk = c;
  b.next = reinterpret_cast<char*>(c) + sizeof(ChunkHeader);
  b.end = reinterpret_cast<char*>(c) + kChunk;
  b.handed_out = 0;
}

}  // namespace

MessageArena::Warmer::Warmer(size_t chunks)
    : chunks_(chunks < kMaxSpareChunks ? chunks : kMaxSpareChunks),
      thread_([this] { Run(); }) {}

MessageArena::Warmer::~Warmer() {
  Shared& s = TheShared();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    stop_ = true;
  }
  s.chunk_taken.notify_all();
  thread_.join();
}

void MessageArena::Warmer::Run() {
  Shared& s = TheShared();
  std::unique_lock<std::mutex> lock(s.mu);
  uint64_t failed_at = 0;  // chunks_taken when mapping last failed
  for (;;) {
    s.chunk_taken.wait(lock, [&] {
      return stop_ || (s.chunks_taken > failed_at && s.spares.size() < chunks_);
    });
    if (stop_) return;
    lock.unlock();
    void* m = MapChunk();
    if (m != nullptr) FaultIn(m);
    lock.lock();
    if (m == nullptr) {
      failed_at = s.chunks_taken;
    } else if (s.spares.size() < kMaxSpareChunks) {
      s.spares.push_back(new (m) ChunkHeader);
    } else {
      munmap(m, kChunk);  // other Warmers filled them meanwhile
    }
  }
}

bool MessageArena::Recheck() {
  Bump& b = message_arena_internal::bump;
  if (++b.calls < kRecheckEvery) return false;
  b.calls = 0;
  Shared& s = TheShared();
  std::lock_guard<std::mutex> lock(s.mu);
  b.declining = Wasteful(s);
  return !b.declining;
}

void* MessageArena::AllocateInNewChunk(size_t n) {
  assert(n > 0 && n <= kMaxBlockBytes);
  Bump& b = message_arena_internal::bump;
  Refill(b);
  void* block = b.next;
  b.next += n;
  b.handed_out += static_cast<int64_t>(n);
  return block;
}

void MessageArena::TakeFrees() {
  message_arena_internal::PendingFrees& p =
      message_arena_internal::pending_frees;
  ChunkHeader* c = static_cast<ChunkHeader*>(p.chunk);
  const int64_t n = p.bytes;
  p = {};
  if (c != nullptr && c->live.fetch_sub(n, std::memory_order_acq_rel) == n) {
    Release(c);
  }
}

void MessageArena::FreeInAnotherChunk(void* chunk, int64_t bytes) {
  // Counted frees are taken when the thread exits, too.
  thread_local FlushAtExit flush_at_exit;
  (void)flush_at_exit;
  TakeFrees();
  message_arena_internal::pending_frees = {chunk, bytes, 1};
}

MessageArena::Stats MessageArena::stats() {
  Shared& s = TheShared();
  std::lock_guard<std::mutex> lock(s.mu);
  Stats out;
  out.chunks_in_use = s.in_use.size();
  out.spare_chunks = s.spares.size();
  for (const ChunkHeader* c : s.in_use) {
    const int64_t v = c->live.load(std::memory_order_relaxed);
    if (v <= kBias / 2) out.live_bytes += static_cast<size_t>(v);
  }
  return out;
}

}  // namespace sift::delivery
