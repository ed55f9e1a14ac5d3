#include "broker/delivery/message_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

constexpr size_t kBlock = 240;  // about a 128-byte message with its counts

// Each test runs in a fresh thread, so that its chunk is its own and is
// given back when the thread exits.
template <typename F>
void InThread(F f) {
  std::thread t(f);
  t.join();
}

TEST(MessageArenaTest, BlocksAreAlignedDistinctAndWritable) {
  InThread([] {
    std::vector<char*> blocks;
    for (size_t i = 0; i < 1000; ++i) {
      char* b = static_cast<char*>(MessageArena::Allocate(17 + i % 300));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u);
      std::memset(b, static_cast<int>(i), 17 + i % 300);
      blocks.push_back(b);
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      ASSERT_EQ(blocks[i][0], static_cast<char>(i)) << i;
      ASSERT_EQ(blocks[i][16 + i % 300], static_cast<char>(i)) << i;
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      MessageArena::Free(blocks[i], 17 + i % 300);
    }
  });
}

TEST(MessageArenaTest, ChunksGoBackOnceEmptyKeepingAFewSpares) {
  const MessageArena::Stats before = MessageArena::stats();
  InThread([] {
    // About 40 chunks' worth, freed in order as a drained burst would be.
    const size_t n = 40 * MessageArena::kChunkBytes / kBlock;
    std::vector<void*> blocks(n);
    for (void*& b : blocks) b = MessageArena::Allocate(kBlock);
    EXPECT_GE(MessageArena::stats().chunks_in_use, 40u);
    for (void* b : blocks) MessageArena::Free(b, kBlock);
  });
  const MessageArena::Stats after = MessageArena::stats();
  // Only what other threads hold is still in use; the rest were unmapped
  // beyond the spares.
  EXPECT_EQ(after.chunks_in_use, before.chunks_in_use);
  EXPECT_LE(after.spare_chunks, MessageArena::kMaxSpareChunks);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
}

TEST(MessageArenaTest, AChunkLivesWhileAnyOfItsBlocksDoes) {
  InThread([] {
    const MessageArena::Stats before = MessageArena::stats();
    std::vector<void*> blocks;
    // Two full chunks and a bit: the first two are retired.
    const size_t per_chunk = MessageArena::kChunkBytes / kBlock;
    for (size_t i = 0; i < 2 * per_chunk + 10; ++i) {
      blocks.push_back(MessageArena::Allocate(kBlock));
    }
    // Free all but the first block: its chunk stays, the second goes.
    for (size_t i = 1; i < blocks.size(); ++i) {
      MessageArena::Free(blocks[i], kBlock);
    }
    MessageArena::FlushFrees();
    MessageArena::Stats now = MessageArena::stats();
    EXPECT_EQ(now.chunks_in_use, before.chunks_in_use + 2);  // kept + current
    EXPECT_EQ(now.live_bytes, before.live_bytes + kBlock);
    MessageArena::Free(blocks[0], kBlock);
    EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use + 2)
        << "a free is counted with the next ones (FlushFrees)";
    MessageArena::FlushFrees();
    now = MessageArena::stats();
    EXPECT_EQ(now.chunks_in_use, before.chunks_in_use + 1);  // the current
    EXPECT_EQ(now.live_bytes, before.live_bytes);
  });
}

TEST(MessageArenaTest, BlocksMayBeFreedOnAnotherThread) {
  const MessageArena::Stats before = MessageArena::stats();
  std::vector<void*> blocks;
  InThread([&blocks] {
    for (size_t i = 0; i < 3 * MessageArena::kChunkBytes / kBlock; ++i) {
      blocks.push_back(MessageArena::Allocate(kBlock));
    }
  });
  // The allocating thread has exited (its chunk retired); two threads free
  // halves at once.
  std::thread a([&blocks] {
    for (size_t i = 0; i < blocks.size(); i += 2) {
      MessageArena::Free(blocks[i], kBlock);
    }
  });
  std::thread b([&blocks] {
    for (size_t i = 1; i < blocks.size(); i += 2) {
      MessageArena::Free(blocks[i], kBlock);
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(MessageArena::stats().chunks_in_use, before.chunks_in_use);
}

TEST(MessageArenaTest, DeclinesWhileFewLiveBlocksPinManyChunks) {
  InThread([] {
    ASSERT_TRUE(MessageArena::ShouldUse());
    // One block survives in each chunk: over kWasteFloorBytes mapped, almost
    // none of it live.
    const size_t per_chunk = MessageArena::kChunkBytes / kBlock;
    const size_t chunks = MessageArena::kWasteFloorBytes /
                              MessageArena::kChunkBytes + 8;
    std::vector<void*> kept;
    for (size_t c = 0; c < chunks; ++c) {
      for (size_t i = 0; i < per_chunk; ++i) {
        void* b = MessageArena::Allocate(kBlock);
        if (i == 0) {
          kept.push_back(b);
        } else {
          MessageArena::Free(b, kBlock);
        }
      }
    }
    // The next chunk taken notices the waste.
    for (size_t i = 0; i < per_chunk; ++i) {
      MessageArena::Free(MessageArena::Allocate(kBlock), kBlock);
    }
    EXPECT_FALSE(MessageArena::ShouldUse());
    // Once the pinned blocks go, it is used again (after a recheck).
    for (void* b : kept) MessageArena::Free(b, kBlock);
    bool used = false;
    for (size_t i = 0; i <= MessageArena::kRecheckEvery && !used; ++i) {
      used = MessageArena::ShouldUse();
    }
    EXPECT_TRUE(used);
  });
}

// Spare chunks, waiting up to 10 s for them to reach `n`.
size_t SparesOnceAtLeast(size_t n) {
  for (int i = 0; i < 1000 && MessageArena::stats().spare_chunks < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return MessageArena::stats().spare_chunks;
}

// Whether the page holding `p` is in memory (mincore).
bool Resident(const void* p) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  unsigned char in = 0;
  EXPECT_EQ(mincore(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) &
                                            ~(page - 1)),
                    1, &in),
            0);
  return (in & 1) != 0;
}

char* ChunkOf(void* block) {
  return reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(block) &
                                 ~(uintptr_t{MessageArena::kChunkBytes} - 1));
}

TEST(MessageArenaTest, AWarmerKeepsSpareChunksFaultedIn) {
  InThread([] {
    constexpr size_t kBig = 60 << 10;
    const size_t per_chunk = MessageArena::kChunkBytes / kBig;
    // Take every spare there is, and hold the blocks.
    std::vector<void*> held;
    for (size_t i = 0; i < (MessageArena::kMaxSpareChunks + 2) * per_chunk;
         ++i) {
      held.push_back(MessageArena::Allocate(kBig));
    }
    ASSERT_EQ(MessageArena::stats().spare_chunks, 0u);
    {
      MessageArena::Warmer warmer(3);
      ASSERT_GE(SparesOnceAtLeast(3), 3u)
          << "the arena has been used: the warmer makes spares at once";
      // Blocks in the next chunk, far from where the arena writes its
      // header, are in memory before anything writes them.
      char* const last_chunk = ChunkOf(held.back());
      void* b = nullptr;
      do {
        b = MessageArena::Allocate(kBig);
        held.push_back(b);
      } while (ChunkOf(b) == last_chunk ||
               static_cast<char*>(b) - ChunkOf(b) < (1 << 20));
      EXPECT_TRUE(Resident(b));
      // It took a spare: the warmer makes another.
      EXPECT_GE(SparesOnceAtLeast(3), 3u);
      EXPECT_LE(MessageArena::stats().spare_chunks, 3u)
          << "no more than it was asked for";
    }
    for (void* b : held) MessageArena::Free(b, kBig);
  });
  // Its spares stay for later bursts, no more than the arena keeps.
  EXPECT_LE(MessageArena::stats().spare_chunks, MessageArena::kMaxSpareChunks);
}

}  // namespace
}  // namespace sift::delivery
