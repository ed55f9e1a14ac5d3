// Small helpers shared by the integration tests: status assertions, a local
// reference matcher for topic patterns, a thread-safe collector for
// subscription callbacks, and a reader of STATS drop counts.
#ifndef SIFT_TESTS_TEST_UTIL_H_
#define SIFT_TESTS_TEST_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift::test {

inline const absl::Status& AsStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace sift::test

// ASSERT/EXPECT that an absl::Status or StatusOr is OK, printing it if not.
#define SIFT_ASSERT_OK(expr)                                         \
  do {                                                               \
    const absl::Status sift_status_ = ::sift::test::AsStatus(expr);  \
    ASSERT_TRUE(sift_status_.ok()) << #expr << ": " << sift_status_; \
  } while (0)
#define SIFT_EXPECT_OK(expr)                                         \
  do {                                                               \
    const absl::Status sift_status_ = ::sift::test::AsStatus(expr);  \
    EXPECT_TRUE(sift_status_.ok()) << #expr << ": " << sift_status_; \
  } while (0)

#define SIFT_CONCAT_INNER_(a, b) a##b
#define SIFT_CONCAT_(a, b) SIFT_CONCAT_INNER_(a, b)
// `lhs = value of expr`, or a fatal test failure if expr is not OK.
#define SIFT_ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  SIFT_ASSERT_OK_AND_ASSIGN_IMPL_(SIFT_CONCAT_(sift_statusor_, __LINE__), lhs, \
                                  expr)
#define SIFT_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                                      \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status(); \
  lhs = std::move(tmp).value()

namespace sift::test {

// Polls `done()` every `every` until it holds or `timeout` passes; returns
// done(). For waits on another process or thread, bounded in time.
template <typename Done>
bool PollUntil(absl::Duration timeout, Done done,
               absl::Duration every = absl::Milliseconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done() && absl::Now() < deadline) absl::SleepFor(every);
  return done();
}

// The NATS matching rule, written plainly as the reference the broker is
// checked against: tokens split on '.', `*` matches exactly one token, `>`
// (last token only) matches one or more remaining tokens.
inline bool PatternMatches(std::string_view pattern, std::string_view topic) {
  std::vector<absl::string_view> p =
      absl::StrSplit(absl::string_view(pattern.data(), pattern.size()), '.');
  std::vector<absl::string_view> t =
      absl::StrSplit(absl::string_view(topic.data(), topic.size()), '.');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return i + 1 == p.size() && t.size() > i;
    if (i >= t.size()) return false;
    if (p[i] != "*" && p[i] != t[i]) return false;
  }
  return p.size() == t.size();
}

// The drops a STATS reply counts under `reason` (e.g. "client_gone").
inline uint64_t Drops(const wire::StatsReply& stats, std::string_view reason) {
  uint64_t count = 0;
  for (const wire::DropCount& d : stats.drops()) {
    if (d.reason() == reason) count += d.count();
  }
  return count;
}

// Collects strings (payloads) from callbacks on other threads.
class Collector {
 public:
  void Add(std::string value) {
    absl::MutexLock lock(&mu_);
    values_.push_back(std::move(value));
  }
  // Waits until at least `n` values arrived or `timeout` passed; returns how
  // many there are.
  size_t WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return values_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return values_.size();
  }
  std::vector<std::string> values() const {
    absl::MutexLock lock(&mu_);
    return values_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return values_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sift::test

#endif  // SIFT_TESTS_TEST_UTIL_H_
