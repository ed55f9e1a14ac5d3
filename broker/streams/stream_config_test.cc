#include "broker/streams/stream_config.h"

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

}  // namespace
}  // namespace sift::streams
