#include "broker/server/output_account.h"

#include <zmq.h>

#include <string>

#include "gtest/gtest.h"

namespace sift {
namespace {

// Frames charge their bytes (and their deliveries) until ZeroMQ lets them
// go; deliveries are the account's own, not its parent's.
TEST(OutputAccountTest, FramesChargeBytesAndDeliveriesUntilReleased) {
  OutputAccount* all = OutputAccount::New(nullptr);
  OutputAccount* client = OutputAccount::New(all);
  zmq_msg_t batch, reply;
  InitAccountedCopy(&batch, std::string(100, 'x'), client, /*deliveries=*/3);
  InitAccountedCopy(&reply, "ok", client);
  EXPECT_EQ(client->pending_bytes(), 100 + 2 + 2 * kFrameOverheadBytes);
  EXPECT_EQ(all->pending_bytes(), client->pending_bytes());
  EXPECT_EQ(client->pending_deliveries(), 3);
  EXPECT_EQ(all->pending_deliveries(), 0);
  zmq_msg_close(&batch);  // written, or discarded with the connection
  EXPECT_EQ(client->pending_deliveries(), 0);
  EXPECT_EQ(client->pending_bytes(), 2 + kFrameOverheadBytes);
  zmq_msg_close(&reply);
  EXPECT_EQ(all->pending_bytes(), 0);
  client->Unref();
  all->Unref();
}

}  // namespace
}  // namespace sift
