// Timeouts too large for a clock's arithmetic, against the scripted fake
// broker (fake_broker.h): absl::InfiniteDuration() or 2562048h as a call's
// timeout or ClientOptions::connect_timeout waits (for ever, in effect)
// instead of ending at once as if it had run out. std::future::wait_for
// adds the timeout to steady_clock::now() in int64 nanoseconds, which
// overflowed: `sift --connect_timeout 2562048h` failed in 0.06 s with "no
// answer within 2562048h".

#include <future>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "clients/cpp/call_in_flight.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::FakeBroker;
using test::Out;

std::vector<Out> AnswerNothing(const wire::Header&) { return {}; }

const absl::Duration kHuge[] = {absl::InfiniteDuration(),
                                absl::Hours(2562048),
                                absl::Nanoseconds(INT64_MAX)};

TEST(TimeoutsTest, AHugeConnectTimeoutConnects) {
  for (absl::Duration timeout : kHuge) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    FakeBroker broker(AnswerNothing);
    ClientOptions options = broker.Options();
    options.connect_timeout = timeout;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    // PINGs answered: the call returns OK, not DeadlineExceeded.
    EXPECT_TRUE((*client)->Flush(timeout).ok());
  }
}

TEST(TimeoutsTest, AHugeCallTimeoutWaitsForTheAnswer) {
  for (absl::Duration timeout : kHuge) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    FakeBroker broker(AnswerNothing);
    std::unique_ptr<Client> client = test::ConnectTo(broker);
    ASSERT_NE(client, nullptr);
    broker.set_answer_pings(false);
    std::future<test::Outcome> flush =
        test::InFlight([&] { return client->Flush(timeout); });
    // Still waiting a while later (it ended at once before)...
    const test::Outcome waiting =
        test::ResultWithin(flush, absl::Milliseconds(300));
    if (waiting.status.code() != absl::StatusCode::kInternal) {
      ADD_FAILURE() << "ended at once: " << waiting.status;
      continue;
    }
    // ... until Close() fails what still waits.
    client->Close();
    const test::Outcome closed = test::ResultWithin(flush, absl::Seconds(10));
    EXPECT_EQ(closed.status.code(), absl::StatusCode::kFailedPrecondition)
        << closed.status;
  }
}

}  // namespace
}  // namespace sift
