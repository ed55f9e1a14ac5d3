#include "broker/delivery/in_flight_index.h"

#include <cstdint>
#include <map>
#include <random>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

TEST(InFlightIndexTest, FindsWhatWasInsertedAndNothingElse) {
  InFlightIndex index;
  EXPECT_EQ(index.Find(1), InFlightIndex::kNone);
  index.Insert(1, 10);
  index.Insert(2, 20);
  EXPECT_EQ(index.Find(1), 10u);
  EXPECT_EQ(index.Find(2), 20u);
  EXPECT_EQ(index.Find(3), InFlightIndex::kNone);
  EXPECT_TRUE(index.Erase(1));
  EXPECT_FALSE(index.Erase(1));
  EXPECT_EQ(index.Find(1), InFlightIndex::kNone);
  EXPECT_EQ(index.size(), 1u);
}

TEST(InFlightIndexTest, AnOldIdStillInFlightSharesItsCellWithNewOnes) {
  InFlightIndex index;
  index.Insert(1, 7);  // held for a long time
  // Ids that map to the same cell of any ring size up to 2^20.
  for (uint64_t id = 2; id <= 3 * (uint64_t{1} << 20); ++id) {
    index.Insert(id, static_cast<uint32_t>(id));
    ASSERT_TRUE(index.Erase(id));
  }
  EXPECT_EQ(index.Find(1), 7u);
  index.Insert((uint64_t{1} << 20) * 5 + 1, 9);  // collides with id 1
  EXPECT_EQ(index.Find((uint64_t{1} << 20) * 5 + 1), 9u);
  EXPECT_EQ(index.Find(1), 7u);
  EXPECT_TRUE(index.Erase(1));
  EXPECT_EQ(index.Find((uint64_t{1} << 20) * 5 + 1), 9u);
}

// Against a std::map, with sequential ids as Deliveries hands them out, most
// acked soon, some held long, and bursts that make the ring grow.
TEST(InFlightIndexTest, AgreesWithAMapUnderRandomTraffic) {
  std::mt19937_64 rng(42);
  InFlightIndex index;
  std::map<uint64_t, uint32_t> model;
  uint64_t next_id = 1;
  for (int step = 0; step < 400000; ++step) {
    const uint64_t r = rng() % 100;
    if (r < 55 || model.empty()) {
      const uint32_t slot = static_cast<uint32_t>(rng());
      index.Insert(next_id, slot);
      model[next_id] = slot;
      ++next_id;
    } else if (r < 97) {
      // Ack one of the oldest few (most acks), else a random one.
      auto it = model.begin();
      if (rng() % 4 == 0) std::advance(it, rng() % model.size());
      ASSERT_TRUE(index.Erase(it->first));
      model.erase(it);
    } else {
      const uint64_t probe = rng() % (next_id + 10);
      auto it = model.find(probe);
      ASSERT_EQ(index.Find(probe),
                it == model.end() ? InFlightIndex::kNone : it->second);
    }
    ASSERT_EQ(index.size(), model.size());
  }
  for (const auto& [id, slot] : model) ASSERT_EQ(index.Find(id), slot);
}

}  // namespace
}  // namespace sift::delivery
