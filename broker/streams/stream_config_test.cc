#include "broker/streams/stream_config.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sift::streams {
namespace {

TEST(StreamConfigTest, ParsesStreamsSectionsAndRoundTrips) {
  auto parsed = ParseStreamSections(R"(
max_payload_bytes = 100
[[streams]]
name = "orders"
subjects = ["orders.>", "refunds.*"]
max_age_ms = 86400000
fsync = "10ms"

[[streams]]
name = "audit"
subjects = ["audit.>"]
fsync = "never"
)",
                                    "siftd.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  const StreamSettings& o = (*parsed)[0];
  EXPECT_EQ(o.name, "orders");
  EXPECT_EQ(o.subjects.size(), 2u);
  EXPECT_EQ(o.max_age_ms, 86400000u);
  EXPECT_EQ(o.fsync, store::FsyncPolicy::kEveryMs);
  EXPECT_EQ(o.fsync_every_ms, 10u);
  EXPECT_EQ(FsyncText(o), "10ms");
  auto back = StreamSettingsFromToml(StreamSettingsToToml(o), "stream.toml");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, o);
}

TEST(StreamConfigTest, ErrorsNameTheFileLineAndField) {
  auto typo = ParseStreamSections("[[streams]]\nname = \"x\"\nsubject = [\"a\"]\n",
                                  "s.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("s.toml:3: unknown stream setting \"subject\""),
            std::string::npos)
      << typo.status();
  auto twice = ParseStreamSections(
      "[[streams]]\nname = \"x\"\nsubjects = [\"a\"]\n"
      "[[streams]]\nname = \"x\"\nsubjects = [\"b\"]\n",
      "s.toml");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("defined twice"), std::string::npos);
  auto fsync = ParseStreamSections(
      "[[streams]]\nname = \"x\"\nsubjects = [\"a\"]\nfsync = \"0ms\"\n", "s.toml");
  EXPECT_FALSE(fsync.ok());
  // The interval is digits only: whitespace or a sign are a mistake, not
  // 10ms (absl's SimpleAtoi would take " 10" and "+10").
  for (const char* bad : {" 10ms", "+10ms", "10 ms", "-10ms"}) {
    StreamSettings settings;
    EXPECT_FALSE(ParseFsync(bad, &settings).ok()) << "'" << bad << "'";
  }
  StreamSettings settings;
  EXPECT_TRUE(ParseFsync("10ms", &settings).ok());
  EXPECT_EQ(settings.fsync_every_ms, 10u);
}

TEST(StreamConfigTest, ASmallMaxBytesChoosesItsSegmentSize) {
  auto parsed = ParseStreamSections(
      "[[streams]]\nname = \"s\"\nsubjects = [\"a\"]\n"
      "max_bytes = 10485760\n",
      "s.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].segment_max_bytes, 10485760u / 4);
  EXPECT_EQ(DefaultSegmentBytes(0), 64u << 20);
  EXPECT_EQ(DefaultSegmentBytes(1000), 4096u);
}

TEST(StreamConfigTest, DedupMaxIdsIsASettingWithBounds) {
  auto parsed = ParseStreamSections(
      "[[streams]]\nname = \"a\"\nsubjects = [\"a\"]\n"
      "[[streams]]\nname = \"b\"\nsubjects = [\"b\"]\n"
      "dedup_max_ids = 200000\n",
      "s.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].dedup_max_ids, 100000u);  // the default
  const StreamSettings& b = (*parsed)[1];
  EXPECT_EQ(b.dedup_max_ids, 200000u);
  EXPECT_EQ(LogOptionsFor(b, "/tmp/x").dedup_max_ids, 200000u);
  // Kept in stream.toml and in --print-config's tables.
  auto back = StreamSettingsFromToml(StreamSettingsToToml(b), "stream.toml");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dedup_max_ids, 200000u);
  auto sections = ParseStreamSections(StreamSectionsToToml({b}), "printed");
  ASSERT_TRUE(sections.ok()) << sections.status();
  EXPECT_EQ((*sections)[0].dedup_max_ids, 200000u);
  // A stream.toml written before the setting existed: the default.
  auto old = StreamSettingsFromToml(
      "name = \"o\"\nsubjects = [\"o\"]\ndedup_window_ms = 120000\n",
      "stream.toml");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->dedup_max_ids, 100000u);
  // Part of the settings a re-add compares.
  StreamSettings other = b;
  other.dedup_max_ids = 100000;
  EXPECT_NE(other, b);

  for (const char* bad : {"0", "100000001", "-1", "\"5\""}) {
    auto r = ParseStreamSections(
        absl::StrCat("[[streams]]\nname = \"x\"\nsubjects = [\"a\"]\n"
                     "dedup_max_ids = ", bad, "\n"),
        "s.toml");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("dedup_max_ids"), std::string::npos)
        << r.status();
  }
  auto max = ParseStreamSections(
      "[[streams]]\nname = \"x\"\nsubjects = [\"a\"]\n"
      "dedup_max_ids = 100000000\n",
      "s.toml");
  EXPECT_TRUE(max.ok()) << max.status();
}

// Every integer setting is read as TOML writes an integer: a float, even a
// whole one (5.0, 1e3), is a mistake named with its key and value, and a
// value out of range is one error whatever side it is on (0 and -1 alike).
TEST(StreamConfigTest, IntegerSettingsTakeIntegersInTheirRange) {
  auto error = [](const std::string& line) -> std::string {
    auto r = ParseStreamSections(
        absl::StrCat("[[streams]]\nname = \"x\"\nsubjects = [\"a\"]\n", line,
                     "\n"),
        "s.toml");
    return r.ok() ? "ok" : std::string(r.status().message());
  };
  for (const char* key :
       {"max_age_ms", "max_bytes", "max_msgs", "dedup_window_ms",
        "dedup_max_ids", "segment_max_bytes"}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(error(absl::StrCat(key, " = 8192.0")),
              absl::StrCat("s.toml:4: stream setting \"", key,
                           "\" must be an integer (got 8192.0)"));
    EXPECT_EQ(error(absl::StrCat(key, " = 1e4")),
              absl::StrCat("s.toml:4: stream setting \"", key,
                           "\" must be an integer (got 10000.0)"));
    EXPECT_EQ(error(absl::StrCat(key, " = \"8192\"")),
              absl::StrCat("s.toml:4: stream setting \"", key,
                           "\" must be an integer (got \"8192\")"));
  }
  EXPECT_EQ(error("dedup_max_ids = 0"),
            "s.toml:4: stream setting \"dedup_max_ids\" must be between 1 "
            "and 100000000 (got 0)");
  EXPECT_EQ(error("dedup_max_ids = -1"),
            "s.toml:4: stream setting \"dedup_max_ids\" must be between 1 "
            "and 100000000 (got -1)");
  EXPECT_EQ(error("dedup_max_ids = 100000001"),
            "s.toml:4: stream setting \"dedup_max_ids\" must be between 1 "
            "and 100000000 (got 100000001)");
  EXPECT_EQ(error("segment_max_bytes = 100"),
            "s.toml:4: stream setting \"segment_max_bytes\" must be between "
            "4096 and 1073741824 (got 100)");
  EXPECT_EQ(error("segment_max_bytes = -1"),
            "s.toml:4: stream setting \"segment_max_bytes\" must be between "
            "4096 and 1073741824 (got -1)");
  EXPECT_EQ(error("max_bytes = 1000"),
            "s.toml:4: stream setting \"max_bytes\" must be 0 (unlimited) or "
            "at least 4096 (got 1000)");
  EXPECT_EQ(error("max_bytes = -1"),
            "s.toml:4: stream setting \"max_bytes\" must be 0 (unlimited) or "
            "at least 4096 (got -1)");
  EXPECT_EQ(error("dedup_window_ms = 604800001"),
            "s.toml:4: stream setting \"dedup_window_ms\" must be between 0 "
            "and 604800000 (got 604800001)");
  EXPECT_EQ(error("dedup_window_ms = -1"),
            "s.toml:4: stream setting \"dedup_window_ms\" must be between 0 "
            "and 604800000 (got -1)");
  // Where 0 means no limit, the range says so: -1 is what JetStream takes
  // for "unlimited", and "at least 0" would not tell that 0 is the way here.
  EXPECT_EQ(error("max_age_ms = -1"),
            "s.toml:4: stream setting \"max_age_ms\" must be 0 (unlimited) "
            "or between 1 and 9007199254740992 (got -1)");
  EXPECT_EQ(error("max_msgs = -1"),
            "s.toml:4: stream setting \"max_msgs\" must be 0 (unlimited) or "
            "at least 1 (got -1)");
  // fsync that is not a string says what it may be.
  EXPECT_EQ(error("fsync = 5.0"),
            "s.toml:4: fsync must be a string: \"always\", \"never\" or "
            "\"<N>ms\" (1 <= N <= 60000) (got 5.0)");
  // The bounds themselves are fine.
  EXPECT_EQ(error("dedup_max_ids = 1"), "ok");
  EXPECT_EQ(error("dedup_window_ms = 0"), "ok");
  EXPECT_EQ(error("max_bytes = 0"), "ok");
  EXPECT_EQ(error("max_msgs = 0"), "ok");
  EXPECT_EQ(error("max_age_ms = 0"), "ok");
  EXPECT_EQ(error("max_msgs = 1"), "ok");
  EXPECT_EQ(error("max_age_ms = 1"), "ok");
  EXPECT_EQ(error("segment_max_bytes = 1073741824"), "ok");

  // Settings from a client (STREAM ADD) are checked against the same
  // bounds, worded alike.
  StreamSettings s;
  s.name = "x";
  s.subjects = {"a"};
  s.dedup_max_ids = 0;
  EXPECT_EQ(std::string(ValidateStreamSettings(s).message()),
            "stream \"x\" dedup_max_ids must be between 1 and 100000000 "
            "(got 0)");
  s.dedup_max_ids = 1;
  s.dedup_window_ms = 604800001;
  EXPECT_EQ(std::string(ValidateStreamSettings(s).message()),
            "stream \"x\" dedup_window_ms must be between 0 and 604800000 "
            "(got 604800001)");
}

// A refused re-add says what differs: each setting, with the stream's value
// and the requested one.
// Re-adding a stream with its subjects in another order, or one repeated,
// asks for the same stream (sift stream add --subjects 'b.>,a.>' used to be
// refused against 'a.>,b.>').
TEST(StreamConfigTest, SubjectsAreASet) {
  StreamSettings have;
  have.name = "orders";
  have.subjects = {"a.>", "b.>"};
  StreamSettings want = have;
  want.subjects = {"b.>", "a.>", "b.>"};
  EXPECT_TRUE(SettingsDifferences(have, want).empty());
  EXPECT_EQ(have, want);
  want.subjects = {"b.>"};
  EXPECT_NE(have, want);
}

TEST(StreamConfigTest, DifferencesNameEachSettingWithBothValues) {
  StreamSettings have;
  have.name = "orders";
  have.subjects = {"orders.>", "billing.*"};
  have.max_msgs = 100;
  have.fsync = store::FsyncPolicy::kEveryMs;
  have.fsync_every_ms = 10;
  StreamSettings want = have;
  EXPECT_TRUE(SettingsDifferences(have, want).empty());
  EXPECT_EQ(have, want);
  // fsync_every_ms means nothing unless fsync is "<N>ms".
  have.fsync = want.fsync = store::FsyncPolicy::kNever;
  want.fsync_every_ms = 20;
  EXPECT_TRUE(SettingsDifferences(have, want).empty());
  EXPECT_EQ(have, want);
  have.fsync = want.fsync = store::FsyncPolicy::kEveryMs;
  EXPECT_EQ(SettingsDifferences(have, want),
            std::vector<std::string>{"fsync 10ms (requested 20ms)"});
  EXPECT_NE(have, want);

  want = have;
  want.subjects = {"other.>"};
  want.max_msgs = 0;
  want.fsync = store::FsyncPolicy::kAlways;
  want.dedup_max_ids = 50;
  EXPECT_EQ(SettingsDifferences(have, want),
            (std::vector<std::string>{
                "subjects [\"orders.>\", \"billing.*\"] (requested "
                "[\"other.>\"])",
                "fsync 10ms (requested always)",
                "max_msgs 100 (requested 0)",
                "dedup_max_ids 100000 (requested 50)",
            }));
  EXPECT_NE(have, want);
  for (auto change : std::vector<void (*)(StreamSettings*)>{
           [](StreamSettings* s) { s->name = "other"; },
           [](StreamSettings* s) { s->max_age_ms = 1; },
           [](StreamSettings* s) { s->max_bytes = 1 << 20; },
           [](StreamSettings* s) { s->dedup_window_ms = 1; },
           [](StreamSettings* s) { s->segment_max_bytes = 8192; },
       }) {
    want = have;
    change(&want);
    EXPECT_EQ(SettingsDifferences(have, want).size(), 1u);
    EXPECT_NE(have, want);
  }
}

TEST(StreamConfigTest, Validation) {
  StreamSettings s;
  s.name = "ok_name-1";
  s.subjects = {"a.>"};
  EXPECT_TRUE(ValidateStreamSettings(s).ok());
  s.name = "no spaces";
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
  s.name = "n";
  s.subjects = {};
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
  s.subjects = {"a..b"};
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
  s.subjects = {"$sift.deadletter.>"};
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
  s.subjects = {"a"};
  s.max_bytes = 1000;  // below segment_max_bytes
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
  s.max_bytes = 0;
  s.segment_max_bytes = 100;
  EXPECT_FALSE(ValidateStreamSettings(s).ok());
}

// Reply inboxes are never stored (docs/protocol.md §8.3), so a subject
// that can only match one could store nothing: refused, from STREAM_ADD and
// from the config file alike (a user trial had `sift stream add s9
// --subjects '_INBOX.>'` answered OK).
TEST(StreamConfigTest, SubjectsUnderInboxAreRefused) {
  StreamSettings s;
  s.name = "s9";
  for (const char* subject : {"_INBOX.>", "_INBOX.abc.*", "_INBOX.*"}) {
    s.subjects = {"a.>", subject};
    absl::Status st = ValidateStreamSettings(s);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << subject;
    EXPECT_EQ(st.message(),
              absl::StrCat("stream \"s9\" subject \"", subject,
                           "\": topics under \"_INBOX.\" are reply inboxes, "
                           "never stored"));
  }
  // These match other topics too; "_INBOX" alone is not an inbox.
  for (const char* subject : {">", "*.x", "*.>", "_INBOX", "_INBOXES.>"}) {
    s.subjects = {subject};
    EXPECT_TRUE(ValidateStreamSettings(s).ok()) << subject;
  }

  auto parsed = ParseStreamSections(
      "[[streams]]\nname = \"ok\"\nsubjects = [\"a.>\"]\n\n"
      "[[streams]]\nname = \"s9\"\nsubjects = [\"_INBOX.>\"]\n",
      "siftd.toml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "siftd.toml:5: stream \"s9\" subject \"_INBOX.>\": topics under "
            "\"_INBOX.\" are reply inboxes, never stored");

  // A stream.toml written before the refusal still loads, so siftd starts.
  s.subjects = {"_INBOX.>"};
  auto stored = StreamSettingsFromToml(StreamSettingsToToml(s), "stream.toml");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->subjects, s.subjects);
}

}  // namespace
}  // namespace sift::streams
