// Test helper: runs a client call on a thread of its own, so a test can do
// something else (stop the broker, answer for a fake one) while the call
// waits, then collect what it returned and how long it took. For tests only;
// each helper may be used from any thread.
#ifndef SIFT_CLIENTS_CPP_CALL_IN_FLIGHT_H_
#define SIFT_CLIENTS_CPP_CALL_IN_FLIGHT_H_

#include <future>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sift::test {

// What a call made by InFlight returned, and how long it took.
struct Outcome {
  absl::Status status;
  absl::Duration took;
};

namespace call_in_flight_internal {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace call_in_flight_internal

// Runs `call` (returning a Status or StatusOr) on a new thread.
template <typename Call>
std::future<Outcome> InFlight(Call call) {
  return std::async(std::launch::async, [call = std::move(call)] {
    const absl::Time start = absl::Now();
    absl::Status status = call_in_flight_internal::StatusOf(call());
    return Outcome{std::move(status), absl::Now() - start};
  });
}

// The outcome of a call InFlight, waiting for it at most `max_wait`; an
// INTERNAL "the call did not return" (took: max_wait) if it did not.
inline Outcome ResultWithin(std::future<Outcome>& call,
                            absl::Duration max_wait) {
  if (call.wait_for(absl::ToChronoNanoseconds(max_wait)) !=
      std::future_status::ready) {
    return {absl::InternalError("the call did not return"), max_wait};
  }
  return call.get();
}

}  // namespace sift::test

#endif  // SIFT_CLIENTS_CPP_CALL_IN_FLIGHT_H_
