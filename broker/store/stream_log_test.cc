#include "broker/store/stream_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/store/stream_record.h"
#include "broker/store/stream_segment.h"
#include "gtest/gtest.h"

namespace sift::store {
namespace {

namespace fs = std::filesystem;
using delivery::MessageRef;
using delivery::StoredMessage;

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  fs::remove_all(dir);
  return dir;
}

MessageRef Msg(std::string topic, std::string payload,
               std::string headers = "", std::string reply_to = "") {
  return StoredMessage::Make(topic, reply_to, headers, payload);
}

StreamLogOptions Opts(const std::string& dir) {
  StreamLogOptions o;
  o.dir = dir;
  return o;
}

std::unique_ptr<StreamLog> MustOpen(StreamLogOptions o,
                                    RecoveryReport* report = nullptr) {
  auto log = StreamLog::Open(std::move(o), report);
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

uint64_t MustAppend(StreamLog* log, MessageRef m, int64_t ms,
                    std::string_view id = "") {
  uint64_t seq = 0;
  absl::Status s = log->Append(std::move(m), ms, id, &seq);
  EXPECT_TRUE(s.ok()) << s;
  log->HandOff();  // as the broker's loop does after each drain
  return seq;
}

std::vector<StreamRecord> ReadAll(const StreamLog& log, uint64_t from = 1) {
  std::vector<StreamRecord> out;
  absl::Status s = log.Read(from, SIZE_MAX, UINT64_MAX, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Waits (polling notify_fd as the routing thread would) until DurableSeq()
// reaches `seq`; false after 10 s.
bool WaitDurable(StreamLog* log, uint64_t seq) {
  for (int i = 0; i < 1000 && log->DurableSeq() < seq; ++i) {
    struct pollfd p = {log->notify_fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    if (p.revents & POLLIN) log->TakeDurable();
  }
  return log->DurableSeq() >= seq;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (ParseSegmentFileName(e.path().filename().string())) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(StreamLogTest, AppendReadRoundTrip) {
  const std::string dir = TestDir("roundtrip");
  auto log = MustOpen(Opts(dir));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->FirstSeq(), 1u);
  EXPECT_EQ(log->LastSeq(), 0u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(MustAppend(log.get(),
                         Msg(absl::StrCat("orders.", i), std::string(i, 'x'),
                             std::string("h\0v", 3), i % 2 ? "reply.1" : ""),
                         1000 + i, i % 3 ? absl::StrCat("id", i) : ""),
              static_cast<uint64_t>(i + 1));
  }
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->DurableSeq(), 100u);
  EXPECT_EQ(log->TotalRecords(), 100u);
  auto recs = ReadAll(*log);
  ASSERT_EQ(recs.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    const StreamRecord& r = recs[i];
    EXPECT_EQ(r.seq, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(r.unix_ms, 1000 + i);
    EXPECT_EQ(r.msg_id, i % 3 ? absl::StrCat("id", i) : "");
    EXPECT_EQ(r.message->topic(), absl::StrCat("orders.", i));
    EXPECT_EQ(r.message->payload(), std::string(i, 'x'));
    EXPECT_EQ(r.message->headers(), std::string("h\0v", 3));
    EXPECT_EQ(r.message->reply_to(), i % 2 ? "reply.1" : "");
  }
  // Limits: max_records, max_bytes (at least one record), from a seq.
  std::vector<StreamRecord> some;
  ASSERT_TRUE(log->Read(10, 5, UINT64_MAX, &some).ok());
  ASSERT_EQ(some.size(), 5u);
  EXPECT_EQ(some[0].seq, 10u);
  some.clear();
  ASSERT_TRUE(log->Read(50, 100, 1, &some).ok());
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].seq, 50u);
  some.clear();
  ASSERT_TRUE(log->Read(101, 100, UINT64_MAX, &some).ok());
  EXPECT_TRUE(some.empty());
  EXPECT_TRUE(log->Close().ok());
}

TEST(StreamLogTest, ReopenContinuesSequence) {
  const std::string dir = TestDir("reopen");
  {
    auto log = MustOpen(Opts(dir));
    for (int i = 0; i < 10; ++i) MustAppend(log.get(), Msg("a", "p"), 5);
  }  // the destructor closes (and flushes)
  RecoveryReport report;
  auto log = MustOpen(Opts(dir), &report);
  EXPECT_FALSE(report.truncated());
  EXPECT_EQ(log->LastSeq(), 10u);
  EXPECT_EQ(log->DurableSeq(), 10u);
  EXPECT_EQ(MustAppend(log.get(), Msg("a", "q"), 6), 11u);
  ASSERT_TRUE(log->Flush().ok());
  auto recs = ReadAll(*log);
  ASSERT_EQ(recs.size(), 11u);
  EXPECT_EQ(recs.back().message->payload(), "q");
}

TEST(StreamLogTest, RotatesSegmentsAndReadsAcrossThem) {
  const std::string dir = TestDir("rotation");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 4096;
  o.index_interval_bytes = 512;
  auto log = MustOpen(o);
  const std::string payload(200, 'z');
  for (int i = 0; i < 300; ++i) MustAppend(log.get(), Msg("t", payload), i);
  ASSERT_TRUE(log->Flush().ok());
  const auto files = SegmentFiles(dir);
  EXPECT_GT(files.size(), 10u);
  for (const std::string& f : files) {
    EXPECT_LE(fs::file_size(f), 4096u);
  }
  // Every seq is found from the index, whatever segment it is in.
  for (uint64_t seq = 1; seq <= 300; seq += 7) {
    std::vector<StreamRecord> one;
    ASSERT_TRUE(log->Read(seq, 1, UINT64_MAX, &one).ok());
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].seq, seq);
    EXPECT_EQ(one[0].unix_ms, static_cast<int64_t>(seq - 1));
  }
  EXPECT_EQ(ReadAll(*log, 1).size(), 300u);
  log.reset();
  auto again = MustOpen(o);  // the index is rebuilt by the scan
  EXPECT_EQ(again->LastSeq(), 300u);
  EXPECT_EQ(ReadAll(*again, 123).front().seq, 123u);
  EXPECT_EQ(MustAppend(again.get(), Msg("t", payload), 1000), 301u);
}

TEST(StreamLogTest, BigRecordGetsASegmentOfItsOwn) {
  const std::string dir = TestDir("big");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 1024;
  auto log = MustOpen(o);
  MustAppend(log.get(), Msg("t", "small"), 1);
  MustAppend(log.get(), Msg("t", std::string(5000, 'b')), 2);
  MustAppend(log.get(), Msg("t", "small"), 3);
  ASSERT_TRUE(log->Flush().ok());
  auto recs = ReadAll(*log);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].message->payload().size(), 5000u);
  uint64_t seq;
  EXPECT_EQ(log->Append(Msg("t", std::string(17 << 20, 'x')), 4, "", &seq)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StreamLogTest, SeekTime) {
  const std::string dir = TestDir("seektime");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 2048;
  o.index_interval_bytes = 256;
  auto log = MustOpen(o);
  for (int i = 0; i < 200; ++i) {
    MustAppend(log.get(), Msg("t", std::string(50, 'x')), 1000 + 10 * i);
  }
  // An earlier timestamp is stored as the previous record's.
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "late"), 5), 201u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(*log->SeekTime(0), 1u);
  EXPECT_EQ(*log->SeekTime(1000), 1u);
  EXPECT_EQ(*log->SeekTime(1001), 2u);
  EXPECT_EQ(*log->SeekTime(1055), 7u);  // 1060 is seq 7
  for (int i = 0; i < 200; i += 13) {
    EXPECT_EQ(*log->SeekTime(1000 + 10 * i), static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(*log->SeekTime(1000 + 10 * 199), 200u);
  EXPECT_EQ(*log->SeekTime(1000 + 10 * 199 + 1), 202u);  // none: next seq
  auto recs = ReadAll(*log, 201);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].unix_ms, 1000 + 10 * 199);
}

// Seqs of the records a log returns from `from` on.
std::vector<uint64_t> Seqs(const StreamLog& log, uint64_t from = 1) {
  std::vector<uint64_t> seqs;
  for (const StreamRecord& r : ReadAll(log, from)) seqs.push_back(r.seq);
  return seqs;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = first; s <= last; ++s) seqs.push_back(s);
  return seqs;
}

uint64_t BytesOnDisk(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& f : SegmentFiles(dir)) bytes += fs::file_size(f);
  return bytes;
}

// The user's report: max_msgs = 3 after 5 confirmed publishes kept 1 (and
// could keep 0). Now exactly the newest 3, after every confirm.
TEST(StreamLogRetentionTest, MaxMsgsKeepsExactlyTheNewest) {
  const std::string dir = TestDir("ret_msgs3");
  StreamLogOptions o = Opts(dir);
  o.max_msgs = 3;
  auto log = MustOpen(o);
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_EQ(MustAppend(log.get(), Msg("t", "p"), 1000), i);
    ASSERT_TRUE(WaitDurable(log.get(), i));
    // Confirmed: it and the ones before it, up to 3, are all there.
    EXPECT_EQ(log->TotalRecords(), std::min<uint64_t>(i, 3));
    EXPECT_EQ(log->FirstSeq(), i <= 3 ? 1 : i - 2);
  }
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->FirstSeq(), 3u);
  EXPECT_EQ(log->LastSeq(), 5u);
  EXPECT_EQ(log->TotalRecords(), 3u);
  EXPECT_EQ(log->TotalBytes(), 3 * (kFrameOverhead + 2));
  EXPECT_EQ(Seqs(*log, 1), Range(3, 5));  // below FirstSeq: from FirstSeq
  EXPECT_EQ(Seqs(*log, 4), Range(4, 5));
  EXPECT_EQ(*log->SeekTime(0), 3u);
  EXPECT_EQ(log->stats().records_expired.load(), 2u);
  // One segment: nothing to delete, and it was not rotated for the limit.
  EXPECT_EQ(SegmentFiles(dir).size(), 1u);
  EXPECT_EQ(log->stats().segments_created.load(), 1u);
}

TEST(StreamLogRetentionTest, MaxMsgsOverManySmallSegments) {
  const std::string dir = TestDir("ret_msgs_many");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 1024;
  o.index_interval_bytes = 256;
  o.max_msgs = 3;
  auto log = MustOpen(o);
  for (uint64_t i = 1; i <= 1000; ++i) {
    MustAppend(log.get(), Msg("t", std::string(60 + i % 50, 'x')), i);
    if (i % 7 == 0 || i % 61 == 0) {
      ASSERT_TRUE(log->Flush().ok());
      ASSERT_EQ(log->TotalRecords(), 3u) << i;
      ASSERT_EQ(Seqs(*log), Range(i - 2, i)) << i;
    }
  }
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->FirstSeq(), 998u);
  EXPECT_EQ(Seqs(*log), Range(998, 1000));
  uint64_t bytes = 0;
  for (uint64_t i = 998; i <= 1000; ++i)
    bytes += kFrameOverhead + 1 + 60 + i % 50;
  EXPECT_EQ(log->TotalBytes(), bytes);
  // Whole segments below FirstSeq are deleted: at most the active one and
  // the one before it (holding 998 or 999) remain.
  EXPECT_LE(SegmentFiles(dir).size(), 2u);
  EXPECT_LE(BytesOnDisk(dir), log->TotalBytes() + 2 * 1024);
  log.reset();
  auto again = MustOpen(o);
  EXPECT_EQ(again->FirstSeq(), 998u);
  EXPECT_EQ(Seqs(*again), Range(998, 1000));
}

// Keeps the newest records whose frames fit in max_bytes, whatever their
// sizes, against a model.
TEST(StreamLogRetentionTest, MaxBytesKeepsTheNewestThatFit) {
  const std::string dir = TestDir("ret_bytes_exact");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 2048;
  o.index_interval_bytes = 300;
  o.max_bytes = 10000;
  auto log = MustOpen(o);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> frame(1, 0);  // by seq
  for (uint64_t i = 1; i <= 400; ++i) {
    const size_t payload = rng() % 3 == 0 ? rng() % 1500 : rng() % 120;
    frame.push_back(kFrameOverhead + 1 + payload);
    MustAppend(log.get(), Msg("t", std::string(payload, 'b')), i);
    if (rng() % 5 == 0 || i == 400) {
      ASSERT_TRUE(log->Flush().ok());
      uint64_t first = i + 1, kept = 0;
      while (first > 1 && kept + frame[first - 1] <= o.max_bytes) {
        kept += frame[--first];
      }
      ASSERT_EQ(log->FirstSeq(), first) << i;
      ASSERT_EQ(log->TotalBytes(), kept) << i;
      ASSERT_EQ(log->TotalRecords(), i - first + 1) << i;
      ASSERT_EQ(Seqs(*log), Range(first, i)) << i;
      ASSERT_LE(BytesOnDisk(dir),
                kept + o.segment_max_bytes +
                    kSegmentHeaderBytes * SegmentFiles(dir).size());
    }
  }
  // A record that could never fit is refused, not kept and then dropped.
  uint64_t seq = 0;
  EXPECT_EQ(
      log->Append(Msg("t", std::string(10000, 'x')), 500, "", &seq).code(),
      absl::StatusCode::kInvalidArgument);
  // One that fills max_bytes alone is kept, alone.
  const uint64_t whole = MustAppend(
      log.get(), Msg("t", std::string(10000 - kFrameOverhead - 1, 'x')), 500);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(Seqs(*log), Range(whole, whole));
  EXPECT_EQ(log->TotalBytes(), 10000u);
}

TEST(StreamLogRetentionTest, MaxAgeByTheClock) {
  const std::string dir = TestDir("ret_age");
  auto now = std::make_shared<std::atomic<int64_t>>(10000);
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 1024;
  o.index_interval_bytes = 200;
  o.max_age_ms = 1000;
  o.unix_clock = [now] { return now->load(); };
  auto log = MustOpen(o);
  for (int i = 0; i < 100; ++i) {  // seq i + 1 stamped 8000 + 20 i
    MustAppend(log.get(), Msg("t", std::string(50, 'x')), 8000 + 20 * i);
  }
  ASSERT_TRUE(log->Flush().ok());
  // Kept: stamped at most 1000 ms before 10000, i.e. i >= 50.
  EXPECT_EQ(log->FirstSeq(), 51u);
  EXPECT_EQ(Seqs(*log), Range(51, 100));
  EXPECT_EQ(*log->SeekTime(0), 51u);
  EXPECT_EQ(*log->SeekTime(9500), 76u);
  EXPECT_EQ(log->TotalBytes(), 50 * (kFrameOverhead + 1 + 50));
  for (int64_t t = 10000; t <= 10980; t += 70) {
    now->store(t);
    ASSERT_TRUE(log->Flush().ok());  // applies retention
    const uint64_t first = static_cast<uint64_t>((t - 9000 + 19) / 20) + 1;
    ASSERT_EQ(log->FirstSeq(), first) << t;
    ASSERT_EQ(Seqs(*log), Range(first, 100)) << t;
  }
  now->store(20000);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->TotalRecords(), 0u);
  EXPECT_EQ(log->TotalBytes(), 0u);
  EXPECT_EQ(log->FirstSeq(), 101u);
  EXPECT_TRUE(ReadAll(*log).empty());
  EXPECT_EQ(*log->SeekTime(0), 101u);
  // The active segment was not rotated to expire it: its file stays until a
  // later segment starts.
  EXPECT_FALSE(SegmentFiles(dir).empty());
  const uint64_t created = log->stats().segments_created.load();
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "new"), 20000), 101u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->stats().segments_created.load(), created);
  EXPECT_EQ(Seqs(*log), Range(101, 101));
  log.reset();
  auto again = MustOpen(o);
  EXPECT_EQ(again->FirstSeq(), 101u);
  EXPECT_EQ(again->LastSeq(), 101u);
  EXPECT_EQ(Seqs(*again), Range(101, 101));
}

// FirstSeq() survives Close/Open: from <dir>/first_seq even when the limit
// is raised, and from the limits when that file is gone.
TEST(StreamLogRetentionTest, ReopenKeepsFirstSeq) {
  const std::string dir = TestDir("ret_reopen");
  StreamLogOptions o = Opts(dir);
  o.max_msgs = 3;
  {
    auto log = MustOpen(o);
    for (int i = 0; i < 5; ++i) MustAppend(log.get(), Msg("t", "p"), 1);
    ASSERT_TRUE(log->Close().ok());
    EXPECT_EQ(log->FirstSeq(), 3u);
  }
  auto log = MustOpen(o);
  EXPECT_EQ(log->FirstSeq(), 3u);
  EXPECT_EQ(Seqs(*log), Range(3, 5));
  log.reset();
  o.max_msgs = 100;  // raised: what retention dropped stays dropped
  log = MustOpen(o);
  EXPECT_EQ(log->FirstSeq(), 3u);
  EXPECT_EQ(log->TotalRecords(), 3u);
  EXPECT_EQ(Seqs(*log), Range(3, 5));
  log.reset();
  o.max_msgs = 3;  // as after a crash that lost the file: re-derived
  fs::remove(absl::StrCat(dir, "/first_seq"));
  log = MustOpen(o);
  EXPECT_EQ(log->FirstSeq(), 3u);
  log.reset();
  { std::ofstream(absl::StrCat(dir, "/first_seq")) << "garbage"; }
  log = MustOpen(o);  // ignored
  EXPECT_EQ(log->FirstSeq(), 3u);
}

// The file is ahead of the records when a torn tail was cut: Open must not
// let it hide the seqs the next appends reuse.
TEST(StreamLogRetentionTest, FirstSeqFileAheadOfATornTail) {
  const std::string dir = TestDir("ret_torn");
  StreamLogOptions o = Opts(dir);
  o.max_msgs = 3;
  {
    auto log = MustOpen(o);
    for (int i = 0; i < 10; ++i) MustAppend(log.get(), Msg("t", "p"), 1);
    ASSERT_TRUE(log->Close().ok());
  }
  const std::string file = SegmentFiles(dir).back();
  fs::resize_file(file, kSegmentHeaderBytes + 5 * (kFrameOverhead + 2));
  auto log = MustOpen(o);
  EXPECT_EQ(log->LastSeq(), 5u);
  EXPECT_EQ(log->FirstSeq(), 6u);  // 3..5 had been dropped: still dropped
  EXPECT_EQ(log->TotalRecords(), 0u);
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "q"), 2), 6u);
  log.reset();
  log = MustOpen(o);
  EXPECT_EQ(log->FirstSeq(), 6u);
  EXPECT_EQ(Seqs(*log), Range(6, 6));
}

// Random appends under random limits and segment sizes, with flushes and
// reopens, against a model of exactly what the three limits keep.
TEST(StreamLogRetentionTest, RandomAgainstAModel) {
  std::mt19937_64 rng(20261130);
  for (int round = 0; round < 12; ++round) {
    const std::string dir = TestDir(absl::StrCat("ret_random", round));
    auto now = std::make_shared<std::atomic<int64_t>>(100000);
    StreamLogOptions o = Opts(dir);
    o.segment_max_bytes = 1024 + rng() % 4096;
    o.index_interval_bytes = 64 + rng() % 1024;
    o.max_msgs = rng() % 2 ? 1 + rng() % 200 : 0;
    o.max_bytes = rng() % 2 ? 2000 + rng() % 30000 : 0;
    o.max_age_ms = rng() % 2 ? 1 + rng() % 3000 : 0;
    o.fsync_policy = FsyncPolicy::kNever;
    o.unix_clock = [now] { return now->load(); };
    struct Rec {
      int64_t ms;
      uint64_t frame;
    };
    std::vector<Rec> model(1);  // by seq
    uint64_t first = 1;         // the model's FirstSeq: only grows
    int64_t ms = 100000;
    auto log = MustOpen(o);
    for (int step = 0; step < 1500; ++step) {
      ms += static_cast<int64_t>(rng() % 8);
      if (rng() % 4 == 0) now->store(ms);
      const size_t payload = rng() % 10 == 0 ? rng() % 1800 : rng() % 150;
      model.push_back(Rec{ms, kFrameOverhead + 1 + payload});
      ASSERT_EQ(MustAppend(log.get(), Msg("t", std::string(payload, 'r')), ms),
                model.size() - 1);
      if (rng() % 40 != 0) continue;
      if (rng() % 5 == 0) {
        ASSERT_TRUE(log->Close().ok());
        log = MustOpen(o);
      }
      ASSERT_TRUE(log->Flush().ok());
      const uint64_t last = model.size() - 1;
      if (o.max_msgs > 0 && last >= o.max_msgs) {
        first = std::max(first, last - o.max_msgs + 1);
      }
      uint64_t kept = 0;
      for (uint64_t s = first; s <= last; ++s) kept += model[s].frame;
      while (o.max_bytes > 0 && kept > o.max_bytes)
        kept -= model[first++].frame;
      while (o.max_age_ms > 0 && first <= last &&
             model[first].ms < now->load() - o.max_age_ms) {
        kept -= model[first++].frame;
      }
      ASSERT_EQ(log->FirstSeq(), first)
          << "round " << round << " step " << step;
      ASSERT_EQ(log->TotalRecords(), last + 1 - first);
      ASSERT_EQ(log->TotalBytes(), kept);
      const std::vector<StreamRecord> recs = ReadAll(*log);
      ASSERT_EQ(recs.size(), last + 1 - first);
      for (const StreamRecord& r : recs) ASSERT_EQ(r.unix_ms, model[r.seq].ms);
      ASSERT_EQ(*log->SeekTime(0), first);
    }
  }
}

// Holds the writer in its next fsync until released.
struct FsyncGate {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  int waiting = 0;
  void Wait() {
    std::unique_lock<std::mutex> l(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(l, [&] { return !closed; });
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu);
    closed = true;
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu);
    closed = false;
    cv.notify_all();
  }
  void AwaitWaiter() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return waiting > 0; });
  }
};

TEST(StreamLogTest, FsyncAlwaysGroupsCommits) {
  const std::string dir = TestDir("fsync_always");
  auto gate = std::make_shared<FsyncGate>();
  StreamLogOptions o = Opts(dir);
  o.fsync_policy = FsyncPolicy::kAlways;
  o.before_fsync = [gate] { gate->Wait(); };
  auto log = MustOpen(o);
  gate->Close();
  MustAppend(log.get(), Msg("t", "first"), 1);
  gate->AwaitWaiter();  // the writer is in the first record's fsync
  EXPECT_EQ(log->DurableSeq(), 0u);
  EXPECT_EQ(log->WrittenSeq(), 1u);
  for (int i = 0; i < 1000; ++i) MustAppend(log.get(), Msg("t", "more"), 2);
  gate->Open();
  ASSERT_TRUE(WaitDurable(log.get(), 1001));
  // One fsync for the first record, one (or two, if the writer woke in
  // between) for the 1000 that queued up behind it.
  EXPECT_LE(log->stats().fsyncs.load(), 3u);
  EXPECT_EQ(log->stats().records_written.load(), 1001u);
  EXPECT_TRUE(log->Close().ok());
}

TEST(StreamLogTest, AppendsReachTheWriterOnHandOffOrInBatches) {
  const std::string dir = TestDir("hand_off");
  auto log = MustOpen(Opts(dir));
  uint64_t seq = 0;
  ASSERT_TRUE(log->Append(Msg("t", "staged"), 1, "", &seq).ok());
  EXPECT_EQ(seq, 1u);
  // Staged on the owner's side: the writer has not seen it.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(log->WrittenSeq(), 0u);
  log->HandOff();
  ASSERT_TRUE(WaitDurable(log.get(), 1));
  // A full batch goes without HandOff.
  for (size_t i = 0; i < StreamLog::kHandOffRecords; ++i) {
    ASSERT_TRUE(log->Append(Msg("t", "batch"), 1, "", &seq).ok());
  }
  ASSERT_TRUE(WaitDurable(log.get(), 1 + StreamLog::kHandOffRecords));
  // Flush and Close hand off what is staged.
  ASSERT_TRUE(log->Append(Msg("t", "flushed"), 1, "", &seq).ok());
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->WrittenSeq(), seq);
  ASSERT_TRUE(log->Append(Msg("t", "closed"), 1, "", &seq).ok());
  ASSERT_TRUE(log->Close().ok());
  auto again = MustOpen(Opts(dir));
  EXPECT_EQ(again->LastSeq(), seq);
}

TEST(StreamLogTest, FsyncAlwaysDurableAdvancesWithoutFlush) {
  const std::string dir = TestDir("fsync_always_poll");
  auto log = MustOpen(Opts(dir));
  uint64_t last = 0;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 50; ++i) last = MustAppend(log.get(), Msg("t", "x"), 1);
    ASSERT_TRUE(WaitDurable(log.get(), last));
  }
  EXPECT_EQ(log->DurableSeq(), 1000u);
  EXPECT_GE(log->stats().fsyncs.load(), 1u);
  EXPECT_LE(log->stats().fsyncs.load(), log->stats().batches.load() + 0u);
}

TEST(StreamLogTest, FsyncEveryMs) {
  const std::string dir = TestDir("fsync_every");
  StreamLogOptions o = Opts(dir);
  o.fsync_policy = FsyncPolicy::kEveryMs;
  o.fsync_every_ms = 20;
  auto log = MustOpen(o);
  uint64_t last = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 100; ++i) last = MustAppend(log.get(), Msg("t", "x"), 1);
    ASSERT_TRUE(WaitDurable(log.get(), last));
  }
  const uint64_t fsyncs = log->stats().fsyncs.load();
  EXPECT_GE(fsyncs, 1u);
  EXPECT_LE(fsyncs, 1000u / 10);
}

TEST(StreamLogTest, FsyncNeverCountsWrittenAsDurable) {
  const std::string dir = TestDir("fsync_never");
  StreamLogOptions o = Opts(dir);
  o.fsync_policy = FsyncPolicy::kNever;
  auto log = MustOpen(o);
  for (int i = 0; i < 500; ++i) MustAppend(log.get(), Msg("t", "x"), 1);
  ASSERT_TRUE(WaitDurable(log.get(), 500));
  EXPECT_EQ(log->stats().fsyncs.load(), 0u);
  EXPECT_TRUE(log->Close().ok());
  EXPECT_EQ(log->stats().fsyncs.load(), 0u);  // Close does not fsync either
}

TEST(StreamLogTest, FullQueueIsResourceExhausted) {
  const std::string dir = TestDir("full");
  auto gate = std::make_shared<FsyncGate>();
  StreamLogOptions o = Opts(dir);
  o.max_queued_records = 8;
  o.before_fsync = [gate] { gate->Wait(); };
  auto log = MustOpen(o);
  gate->Close();
  MustAppend(log.get(), Msg("t", "x"), 1);
  gate->AwaitWaiter();
  int accepted = 1;
  absl::Status s;
  for (int i = 0; i < 100; ++i) {
    uint64_t seq;
    s = log->Append(Msg("t", "x"), 1, "", &seq);
    if (!s.ok()) break;
    EXPECT_EQ(seq, static_cast<uint64_t>(++accepted));
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(log->stats().rejected_full.load(), 1u);
  gate->Open();
  ASSERT_TRUE(log->Flush().ok());
  // Room again, and no seq was used by the refused append.
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "y"), 1), 9u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(ReadAll(*log).size(), 9u);
}

TEST(StreamLogTest, FullQueueByBytes) {
  const std::string dir = TestDir("full_bytes");
  auto gate = std::make_shared<FsyncGate>();
  StreamLogOptions o = Opts(dir);
  o.max_queued_bytes = 4000;
  o.before_fsync = [gate] { gate->Wait(); };
  auto log = MustOpen(o);
  gate->Close();
  MustAppend(log.get(), Msg("t", std::string(1000, 'x')), 1);
  gate->AwaitWaiter();
  uint64_t seq;
  int accepted = 1;
  while (log->Append(Msg("t", std::string(1000, 'x')), 1, "", &seq).ok()) {
    ++accepted;
  }
  EXPECT_EQ(accepted, 3);  // 3 x ~1050 bytes fit in 4000, a 4th does not
  gate->Open();
}

TEST(StreamLogTest, DedupWithinWindowAfterWindowAndAfterReopen) {
  const std::string dir = TestDir("dedup");
  StreamLogOptions o = Opts(dir);
  o.dedup_window_ms = 1000;
  {
    auto log = MustOpen(o);
    EXPECT_EQ(MustAppend(log.get(), Msg("t", "a"), 10000, "A"), 1u);
    EXPECT_EQ(MustAppend(log.get(), Msg("t", "b"), 10100, "B"), 2u);
    uint64_t seq = 0;
    absl::Status s = log->Append(Msg("t", "a2"), 10500, "A", &seq);
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
    EXPECT_EQ(seq, 1u);
    EXPECT_EQ(log->stats().duplicates.load(), 1u);
    // 1000 ms after A: A is forgotten, B (at 10100) is not.
    EXPECT_EQ(MustAppend(log.get(), Msg("t", "a3"), 11000, "A"), 3u);
    EXPECT_EQ(log->Append(Msg("t", "b2"), 11050, "B", &seq).code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(seq, 2u);
    ASSERT_TRUE(log->Flush().ok());
    auto recs = ReadAll(*log);
    ASSERT_EQ(recs.size(), 3u);  // nothing written for the duplicates
    EXPECT_EQ(recs[2].message->payload(), "a3");
  }
  auto log = MustOpen(o);
  uint64_t seq = 0;
  // Reloaded: A is seq 3 (at 11000), B (at 10100) is within the window of
  // the newest record (11000 - 10100 < 1000), the first A is not.
  EXPECT_EQ(log->Append(Msg("t", "x"), 11050, "A", &seq).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(seq, 3u);
  EXPECT_EQ(log->Append(Msg("t", "x"), 11050, "B", &seq).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(seq, 2u);
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "y"), 11200, "B"), 4u);
}

TEST(StreamLogTest, DedupKeepsABoundedNumberOfIds) {
  const std::string dir = TestDir("dedup_bound");
  StreamLogOptions o = Opts(dir);
  o.dedup_max_ids = 10;
  auto log = MustOpen(o);
  for (int i = 0; i < 20; ++i) {
    MustAppend(log.get(), Msg("t", "x"), 1, absl::StrCat("id", i));
  }
  uint64_t seq;
  EXPECT_EQ(log->Append(Msg("t", "x"), 1, "id19", &seq).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(log->Append(Msg("t", "x"), 1, "id10", &seq).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(log->Append(Msg("t", "x"), 1, "id0", &seq).ok());  // forgotten
}

// The cap bites inside the window: the ids it forgets there are counted
// (a republish of them is stored again), those the window already let go
// are not. The count is since Open: a restart does not count again what
// the run before it forgot (a user trial saw the same number, and its
// warning, after every restart), nor the ids a lowered cap cannot reload.
TEST(StreamLogTest, DedupCountsIdsForgottenInsideTheWindow) {
  const std::string dir = TestDir("dedup_early");
  StreamLogOptions o = Opts(dir);
  o.dedup_window_ms = 1000;
  o.dedup_max_ids = 10;
  {
    auto log = MustOpen(o);
    for (int i = 0; i < 15; ++i) {
      MustAppend(log.get(), Msg("t", "x"), 1000 + i, absl::StrCat("id", i));
    }
    EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 5u);
    // id0 is 14 ms old, well inside the window, and stored again.
    EXPECT_EQ(MustAppend(log.get(), Msg("t", "x"), 1015, "id0"), 16u);
    EXPECT_EQ(log->stats().duplicates.load(), 0u);
    EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 6u);
    uint64_t seq = 0;
    EXPECT_EQ(log->Append(Msg("t", "x"), 1015, "id14", &seq).code(),
              absl::StatusCode::kAlreadyExists);
    // Out of the window, ids go by age: none counted.
    for (int i = 0; i < 10; ++i) {
      MustAppend(log.get(), Msg("t", "x"), 5000 + i, absl::StrCat("late", i));
    }
    EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 6u);
    ASSERT_TRUE(log->Close().ok());
  }
  {
    // The 10 ids within the window of the newest record fit: none counted.
    auto log = MustOpen(o);
    EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 0u);
    uint64_t seq = 0;
    EXPECT_EQ(log->Append(Msg("t", "x"), 5010, "late0", &seq).code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(seq, 17u);
    ASSERT_TRUE(log->Close().ok());
  }
  {
    // Forgotten early in the first run, not counted again now.
    StreamLogOptions early = o;
    early.dedup_window_ms = 100000;
    auto log = MustOpen(early);
    EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 0u);
    ASSERT_TRUE(log->Close().ok());
  }
  // A smaller cap: 4 of them cannot be reloaded (not counted either).
  o.dedup_max_ids = 6;
  auto log = MustOpen(o);
  EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 0u);
  uint64_t seq = 0;
  EXPECT_EQ(log->Append(Msg("t", "x"), 5010, "late4", &seq).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(log->Append(Msg("t", "x"), 5010, "late3", &seq).ok());
}

// A cap above the burst: the whole burst is deduplicated within the window.
TEST(StreamLogTest, DedupMaxIdsAboveTheBurstKeepsEveryId) {
  const std::string dir = TestDir("dedup_cap_ok");
  StreamLogOptions o = Opts(dir);
  o.dedup_max_ids = 200;
  auto log = MustOpen(o);
  for (int i = 0; i < 150; ++i) {
    MustAppend(log.get(), Msg("t", "x"), 1000, absl::StrCat("id", i));
  }
  for (int i = 0; i < 150; ++i) {
    uint64_t seq = 0;
    EXPECT_EQ(log->Append(Msg("t", "x"), 1001, absl::StrCat("id", i), &seq)
                  .code(),
              absl::StatusCode::kAlreadyExists)
        << i;
    EXPECT_EQ(seq, static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(log->stats().dedup_ids_forgotten_early.load(), 0u);
}

// Writes 20 records and closes; returns the last segment's path.
std::string WriteTwenty(const StreamLogOptions& o) {
  auto log = MustOpen(o);
  for (int i = 0; i < 20; ++i) {
    MustAppend(log.get(), Msg("t", std::string(100, 'a' + i)), i);
  }
  EXPECT_TRUE(log->Close().ok());
  return SegmentFiles(o.dir).back();
}

constexpr uint64_t kFrame20 = kFrameOverhead + 1 + 100;  // per record above

TEST(StreamLogRecoveryTest, TruncatedMidRecord) {
  const StreamLogOptions o = Opts(TestDir("rec_torn"));
  const std::string file = WriteTwenty(o);
  const uint64_t size = fs::file_size(file);
  ASSERT_EQ(size, kSegmentHeaderBytes + 20 * kFrame20);
  fs::resize_file(file, size - 30);
  RecoveryReport report;
  auto log = MustOpen(o, &report);
  EXPECT_TRUE(report.truncated());
  EXPECT_EQ(report.file, file);
  EXPECT_EQ(report.truncated_bytes, kFrame20 - 30);
  EXPECT_EQ(report.truncated_records, 1u);
  EXPECT_EQ(report.offset, kSegmentHeaderBytes + 19 * kFrame20);
  EXPECT_EQ(report.reason, "short record (torn write)");
  EXPECT_EQ(log->LastSeq(), 19u);
  EXPECT_EQ(ReadAll(*log).size(), 19u);
  EXPECT_EQ(fs::file_size(file), kSegmentHeaderBytes + 19 * kFrame20);
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "after"), 100), 20u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(ReadAll(*log, 20)[0].message->payload(), "after");
}

TEST(StreamLogRecoveryTest, FlippedByteInLastRecord) {
  const StreamLogOptions o = Opts(TestDir("rec_flip"));
  const std::string file = WriteTwenty(o);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kSegmentHeaderBytes + 19 * kFrame20 + 60);
    f.put('!');
  }
  RecoveryReport report;
  auto log = MustOpen(o, &report);
  EXPECT_EQ(report.reason, "bad checksum");
  EXPECT_EQ(report.truncated_bytes, kFrame20);
  EXPECT_EQ(report.truncated_records, 1u);
  EXPECT_EQ(log->LastSeq(), 19u);
  auto recs = ReadAll(*log);
  ASSERT_EQ(recs.size(), 19u);
  EXPECT_EQ(recs.back().message->payload(), std::string(100, 'a' + 18));
}

// Damage with valid records after it is not a torn tail: those records
// were durable once. Open refuses (naming file and offset) rather than cut
// them and give their seqs to new records.
TEST(StreamLogRecoveryTest, FlippedByteMidSegmentIsAnError) {
  const StreamLogOptions o = Opts(TestDir("rec_flip_mid"));
  const std::string file = WriteTwenty(o);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kSegmentHeaderBytes + 10 * kFrame20 + 60);
    f.put('!');
  }
  const auto size = fs::file_size(file);
  RecoveryReport report;
  auto log = StreamLog::Open(o, &report);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find(
                absl::StrCat("offset ", kSegmentHeaderBytes + 10 * kFrame20)),
            absl::string_view::npos)
      << log.status();
  EXPECT_NE(log.status().message().find("followed by valid records (seq 12)"),
            absl::string_view::npos)
      << log.status();
  EXPECT_EQ(fs::file_size(file), size);  // nothing cut
}

TEST(StreamLogRecoveryTest, GarbageAppended) {
  const StreamLogOptions o = Opts(TestDir("rec_garbage"));
  const std::string file = WriteTwenty(o);
  {
    std::ofstream f(file, std::ios::app | std::ios::binary);
    f << "this is not a record, not at all";
  }
  RecoveryReport report;
  auto log = MustOpen(o, &report);
  EXPECT_TRUE(report.truncated());
  EXPECT_EQ(report.truncated_bytes, 32u);
  EXPECT_EQ(report.reason, "bad record length");
  EXPECT_EQ(log->LastSeq(), 20u);
  EXPECT_EQ(ReadAll(*log).size(), 20u);
  log.reset();
  RecoveryReport again;
  MustOpen(o, &again);
  EXPECT_FALSE(again.truncated());
}

TEST(StreamLogRecoveryTest, ZeroFilledTailAndTornHeader) {
  const StreamLogOptions o = Opts(TestDir("rec_zero"));
  const std::string file = WriteTwenty(o);
  fs::resize_file(file, fs::file_size(file) + 4096);  // zeros
  RecoveryReport report;
  auto log = MustOpen(o, &report);
  EXPECT_EQ(report.truncated_bytes, 4096u);
  EXPECT_EQ(log->LastSeq(), 20u);
  log.reset();
  // A new segment whose header was torn (crash during rotation).
  const std::string next = absl::StrCat(o.dir, "/", SegmentFileName(21));
  { std::ofstream(next, std::ios::binary) << "SIFT"; }
  log = MustOpen(o, &report);
  EXPECT_EQ(report.reason, "bad segment header");
  EXPECT_EQ(report.truncated_bytes, 4u);
  EXPECT_EQ(log->LastSeq(), 20u);
  EXPECT_EQ(MustAppend(log.get(), Msg("t", "x"), 50), 21u);
}

TEST(StreamLogRecoveryTest, CorruptionInAnEarlierSegmentIsAnError) {
  StreamLogOptions o = Opts(TestDir("rec_mid_segment"));
  o.segment_max_bytes = 1024;
  WriteTwenty(o);
  const auto files = SegmentFiles(o.dir);
  ASSERT_GT(files.size(), 2u);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kSegmentHeaderBytes + kFrame20 + 50);
    f.put('!');
  }
  auto log = StreamLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find(files[0]), absl::string_view::npos)
      << log.status();
  EXPECT_NE(log.status().message().find(
                absl::StrCat("offset ", kSegmentHeaderBytes + kFrame20)),
            absl::string_view::npos)
      << log.status();
  // A missing middle segment is one too.
  o.dir = TestDir("rec_gap");
  WriteTwenty(o);
  const auto gap_files = SegmentFiles(o.dir);
  ASSERT_GE(gap_files.size(), 3u);
  fs::remove(gap_files[1]);
  auto gap = StreamLog::Open(o);
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kDataLoss) << gap.status();
}

// A reader thread reads while the owner appends and retention deletes
// segments under it: every read is contiguous and intact.
TEST(StreamLogTest, ReadsConcurrentWithAppendsAndRetention) {
  const std::string dir = TestDir("concurrent");
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 4096;
  o.max_msgs = 300;
  o.fsync_policy = FsyncPolicy::kNever;
  auto log = MustOpen(o);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      std::vector<StreamRecord> out;
      // Trimmed as records are published: never over the limit.
      ASSERT_LE(log->TotalRecords(), 300u);
      const uint64_t first = log->FirstSeq();
      absl::Status s = log->Read(first, 100, UINT64_MAX, &out);
      ASSERT_TRUE(s.ok()) << s;
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i].seq, out[0].seq + i);
        ASSERT_EQ(out[i].message->payload(), absl::StrCat("p", out[i].seq));
      }
      reads.fetch_add(1);
    }
  });
  for (uint64_t i = 1; i <= 5000; ++i) {
    uint64_t seq;
    absl::Status s;
    while (absl::IsResourceExhausted(
        s = log->Append(Msg("t", absl::StrCat("p", i)), 1, "", &seq))) {
      log->HandOff();
      WaitDurable(log.get(), log->WrittenSeq() + 1);
    }
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(seq, i);
  }
  ASSERT_TRUE(log->Flush().ok());
  while (reads.load() < 10) std::this_thread::yield();
  done = true;
  reader.join();
  EXPECT_EQ(log->TotalRecords(), 300u);
  EXPECT_EQ(log->FirstSeq(), 4701u);
  EXPECT_EQ(log->LastSeq(), 5000u);
}

TEST(StreamLogTest, InvalidOptions) {
  StreamLogOptions o = Opts("");
  EXPECT_EQ(StreamLog::Open(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Opts(TestDir("bad_opts"));
  o.fsync_policy = FsyncPolicy::kEveryMs;
  o.fsync_every_ms = 0;
  EXPECT_EQ(StreamLog::Open(o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Random appends, reopens and torn tails, against a model of what must be
// there: every record the log ever reported written before the damage point
// reads back intact, in order, with contiguous seqs.
TEST(StreamLogRandomTest, AppendsReopensAndTornTails) {
  const std::string dir = TestDir("random");
  std::mt19937_64 rng(20240611);
  StreamLogOptions o = Opts(dir);
  o.segment_max_bytes = 8192;
  o.index_interval_bytes = 300;
  struct Model {
    int64_t ms;
    std::string id, topic, payload;
  };
  std::map<uint64_t, Model> model;  // seq -> record
  uint64_t next = 1;
  int64_t ms = 1;
  int truncations = 0;
  for (int round = 0; round < 60; ++round) {
    o.fsync_policy = static_cast<FsyncPolicy>(rng() % 3);
    RecoveryReport report;
    auto log = MustOpen(o, &report);
    ASSERT_NE(log, nullptr);
    if (report.truncated()) ++truncations;
    // What survived must match the model exactly.
    ASSERT_EQ(log->LastSeq() + 1, next) << "round " << round;
    auto recs = ReadAll(*log);
    ASSERT_EQ(recs.size(), model.size());
    for (const StreamRecord& r : recs) {
      const Model& m = model.at(r.seq);
      ASSERT_EQ(r.unix_ms, m.ms);
      ASSERT_EQ(r.msg_id, m.id);
      ASSERT_EQ(r.message->topic(), m.topic);
      ASSERT_EQ(r.message->payload(), m.payload);
    }
    const int appends = static_cast<int>(rng() % 200);
    for (int i = 0; i < appends; ++i) {
      ms += static_cast<int64_t>(rng() % 5);
      Model m{ms, rng() % 4 == 0 ? absl::StrCat("id-", next) : "",
              absl::StrCat("topic.", rng() % 10),
              std::string(rng() % 600, static_cast<char>('a' + rng() % 26))};
      ASSERT_EQ(MustAppend(log.get(), Msg(m.topic, m.payload), m.ms, m.id),
                next);
      model[next++] = std::move(m);
      if (rng() % 50 == 0) {
      ASSERT_TRUE(log->Flush().ok());
    }
    }
    ASSERT_TRUE(log->Close().ok());
    EXPECT_EQ(log->DurableSeq(), next - 1);
    log.reset();
    // Damage the tail of the last segment: cut at a random point, flip a
    // byte, or append garbage; or leave it alone.
    const std::string file = SegmentFiles(dir).back();
    const uint64_t size = fs::file_size(file);
    const uint64_t base = *ParseSegmentFileName(fs::path(file).filename().string());
    if (size <= kSegmentHeaderBytes) continue;
    uint64_t point = kSegmentHeaderBytes + rng() % (size - kSegmentHeaderBytes);
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {
      fs::resize_file(file, point);
    } else if (kind == 1) {
      // A flipped byte in the newest record (one earlier, with valid
      // records after it, is damage to durable records: Open refuses it,
      // FlippedByteMidSegmentIsAnError).
      uint64_t last_start = kSegmentHeaderBytes;
      for (uint64_t seq = base; seq + 1 < next; ++seq) {
        const Model& m = model.at(seq);
        last_start += kFrameOverhead + m.id.size() + m.topic.size() +
                      m.payload.size();
      }
      point = last_start + rng() % (size - last_start);
      std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(point);
      const char c = static_cast<char>(f.get());
      f.seekp(point);
      f.put(static_cast<char>(c ^ (1 + rng() % 255)));
    } else if (kind == 2) {
      std::ofstream f(file, std::ios::app | std::ios::binary);
      for (int i = 0; i < 1 + static_cast<int>(rng() % 100); ++i) {
        f.put(static_cast<char>(rng()));
      }
      continue;  // nothing lost
    } else {
      continue;
    }
    // Records of the last segment whose frames end at or before `point`
    // survive; the rest are gone.
    uint64_t offset = kSegmentHeaderBytes;
    for (uint64_t seq = base; seq < next; ++seq) {
      const Model& m = model.at(seq);
      const uint64_t end = offset + kFrameOverhead + m.id.size() +
                           m.topic.size() + m.payload.size();
      if (end > point) {
        model.erase(model.find(seq), model.end());
        next = seq;
        break;
      }
      offset = end;
    }
  }
  EXPECT_GT(truncations, 10);
}

}  // namespace
}  // namespace sift::store
