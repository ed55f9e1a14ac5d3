#include "broker/delivery/schedules.h"

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

// "YYYY-MM-DD HH:MM[:SS]" (UTC) -> unix ms.
int64_t Ms(const std::string& when) {
  absl::Time t;
  std::string error;
  const bool ok =
      absl::ParseTime("%Y-%m-%d %H:%M:%S", when, absl::UTCTimeZone(), &t,
                      &error) ||
      absl::ParseTime("%Y-%m-%d %H:%M", when, absl::UTCTimeZone(), &t, &error);
  EXPECT_TRUE(ok) << when << ": " << error;
  return absl::ToUnixMillis(t);
}

// unix ms -> "YYYY-MM-DD HH:MM Day" (UTC), "never" for kCronNever.
std::string Text(int64_t ms) {
  if (ms == kCronNever) return "never";
  return absl::FormatTime("%Y-%m-%d %H:%M %a", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

CronSpec Cron(const std::string& text) {
  absl::StatusOr<CronSpec> spec = ParseCron(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : CronSpec();
}

std::string Next(const std::string& cron, const std::string& after) {
  return Text(NextFireMs(Cron(cron), Ms(after)));
}

uint64_t Bits(std::initializer_list<int> values) {
  uint64_t bits = 0;
  for (int v : values) bits |= uint64_t{1} << v;
  return bits;
}

uint64_t Range(int lo, int hi) {
  uint64_t bits = 0;
  for (int v = lo; v <= hi; ++v) bits |= uint64_t{1} << v;
  return bits;
}

// ---- ParseCron ----

TEST(ParseCronTest, EveryField) {
  const CronSpec all = Cron("* * * * *");
  EXPECT_EQ(all.minutes, Range(0, 59));
  EXPECT_EQ(all.hours, Range(0, 23));
  EXPECT_EQ(all.days, Range(1, 31));
  EXPECT_EQ(all.months, Range(1, 12));
  EXPECT_EQ(all.weekdays, Range(0, 6));
  EXPECT_TRUE(all.days_star);
  EXPECT_TRUE(all.weekdays_star);
  EXPECT_EQ(all.text, "* * * * *");
}

TEST(ParseCronTest, ValidTable) {
  struct Case {
    const char* text;
    int field;  // 0 minute .. 4 day-of-week
    uint64_t bits;
  };
  const Case cases[] = {
      {"*/15 * * * *", 0, Bits({0, 15, 30, 45})},
      {"5-20/5 * * * *", 0, Bits({5, 10, 15, 20})},
      {"30/10 * * * *", 0, Bits({30, 40, 50})},  // a/n = a-max/n
      {"1,2,10-12 * * * *", 0, Bits({1, 2, 10, 11, 12})},
      {"7 * * * *", 0, Bits({7})},
      {"*/100 * * * *", 0, Bits({0})},  // a step past the range: the start
      {"0 9-17/4 * * *", 1, Bits({9, 13, 17})},
      {"0 0 1,15,31 * *", 2, Bits({1, 15, 31})},
      {"0 0 */10 * *", 2, Bits({1, 11, 21, 31})},
      {"0 0 1 jan,Jul *", 3, Bits({1, 7})},
      {"0 0 1 MAR-may *", 3, Bits({3, 4, 5})},
      {"0 0 1 */3 *", 3, Bits({1, 4, 7, 10})},
      {"0 0 * * 7", 4, Bits({0})},
      {"0 0 * * 0", 4, Bits({0})},
      {"0 0 * * 5-7", 4, Bits({0, 5, 6})},
      {"0 0 * * 0-7", 4, Range(0, 6)},
      {"0 0 * * mon-FRI", 4, Bits({1, 2, 3, 4, 5})},
      {"0 0 * * sun,Sat", 4, Bits({0, 6})},
      {"0 0 * * */2", 4, Bits({0, 2, 4, 6})},
      {" 0\t0  * *  * ", 0, Bits({0})},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CronSpec> spec = ParseCron(c.text);
    ASSERT_TRUE(spec.ok()) << c.text << ": " << spec.status();
    const uint64_t got[] = {spec->minutes, spec->hours, spec->days,
                            spec->months, spec->weekdays};
    EXPECT_EQ(got[c.field], c.bits) << c.text;
  }
}

TEST(ParseCronTest, StarFlagsFollowTheFirstCharacter) {
  const CronSpec a = Cron("0 0 */2 * 1");
  EXPECT_TRUE(a.days_star);
  EXPECT_FALSE(a.weekdays_star);
  const CronSpec b = Cron("0 0 1 * 1");
  EXPECT_FALSE(b.days_star);
  EXPECT_FALSE(b.weekdays_star);
}

TEST(ParseCronTest, Shorthands) {
  EXPECT_EQ(Cron("@hourly"), Cron("0 * * * *"));
  EXPECT_EQ(Cron("@daily"), Cron("0 0 * * *"));
  EXPECT_EQ(Cron("@MIDNIGHT"), Cron("0 0 * * *"));
  EXPECT_EQ(Cron("@weekly"), Cron("0 0 * * 0"));
  EXPECT_EQ(Cron("@monthly"), Cron("0 0 1 * *"));
  EXPECT_EQ(Cron("@yearly"), Cron("0 0 1 1 *"));
  EXPECT_EQ(Cron("@annually"), Cron("0 0 1 1 *"));
}

TEST(ParseCronTest, InvalidTable) {
  struct Case {
    const char* text;
    const char* message;  // the whole message
  };
  const Case cases[] = {
      {"",
       "cron \"\": needs 5 fields (minute hour day-of-month month "
       "day-of-week), got 0"},
      {"* * * *",
       "cron \"* * * *\": needs 5 fields (minute hour "
       "day-of-month month day-of-week), got 4"},
      {"* * * * * *",
       "cron \"* * * * * *\": needs 5 fields (minute hour "
       "day-of-month month day-of-week), got 6"},
      {"60 * * * *",
       "cron \"60 * * * *\": minute field: \"60\" is out of range 0-59"},
      {"* 24 * * *",
       "cron \"* 24 * * *\": hour field: \"24\" is out of range 0-23"},
      {"* * 0 * *",
       "cron \"* * 0 * *\": day-of-month field: \"0\" is out of range 1-31"},
      {"* * 32 * *",
       "cron \"* * 32 * *\": day-of-month field: \"32\" is out of range "
       "1-31"},
      {"* * * 13 *",
       "cron \"* * * 13 *\": month field: \"13\" is out of range 1-12"},
      {"* * * * 8",
       "cron \"* * * * 8\": day-of-week field: \"8\" is out of range 0-7"},
      {"1-70 * * * *",
       "cron \"1-70 * * * *\": minute field: \"70\" in "
       "\"1-70\" is out of range 0-59"},
      {"*/0 * * * *",
       "cron \"*/0 * * * *\": minute field: \"*/0\" has step "
       "\"0\", which is not a whole number >= 1"},
      {"1/x * * * *",
       "cron \"1/x * * * *\": minute field: \"1/x\" has step "
       "\"x\", which is not a whole number >= 1"},
      {"5-2 * * * *",
       "cron \"5-2 * * * *\": minute field: \"5-2\" is a "
       "range from 5 down to 2 (write it low-high)"},
      {"1,,2 * * * *",
       "cron \"1,,2 * * * *\": minute field: \"1,,2\" has "
       "an empty list item"},
      {"-5 * * * *",
       "cron \"-5 * * * *\": minute field: \"\" in \"-5\" is "
       "not a number (0-59)"},
      {"x * * * *",
       "cron \"x * * * *\": minute field: \"x\" is not a number (0-59)"},
      {"* * * foo *",
       "cron \"* * * foo *\": month field: \"foo\" is not a "
       "number (1-12) or a name (JAN-DEC)"},
      {"* * * * sunday",
       "cron \"* * * * sunday\": day-of-week field: "
       "\"sunday\" is not a number (0-7) or a name "
       "(SUN-SAT)"},
      {"* * * * MON-BAD",
       "cron \"* * * * MON-BAD\": day-of-week field: "
       "\"BAD\" in \"MON-BAD\" is not a number (0-7) or "
       "a name (SUN-SAT)"},
      {"0 0 1 * jan",
       "cron \"0 0 1 * jan\": day-of-week field: \"jan\" is "
       "not a number (0-7) or a name (SUN-SAT)"},
      {"@reboot",
       "cron \"@reboot\": unknown shorthand \"@reboot\" (known: "
       "@yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight, @hourly)"},
      {"0 0 30 2 *",
       "cron \"0 0 30 2 *\": never fires: no date matches its "
       "day-of-month, month and day-of-week together"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CronSpec> spec = ParseCron(c.text);
    ASSERT_FALSE(spec.ok()) << c.text;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(spec.status().message(), c.message);
  }
}

TEST(ParseCronTest, RefusesSpecsThatNeverFire) {
  EXPECT_FALSE(ParseCron("0 0 31 4,6,9,11 *").ok());
  EXPECT_FALSE(ParseCron("0 0 30,31 feb *").ok());
  // Day-of-week is star-prefixed, so both must match: still never.
  EXPECT_FALSE(ParseCron("0 0 30 2 */2").ok());
  // Both restricted: either matches, so Mondays in February fire.
  EXPECT_TRUE(ParseCron("0 0 30 2 1").ok());
  // Feb 29 exists in leap years.
  EXPECT_TRUE(ParseCron("0 0 29 2 *").ok());
  // Sunday Feb 29 comes every 28 years or so (2004, 2032, ...).
  EXPECT_TRUE(ParseCron("0 0 29 2 */7").ok());
}

// ---- NextFireMs ----

TEST(NextFireMsTest, StrictlyAfterOnWholeMinutes) {
  EXPECT_EQ(Next("*/15 * * * *", "2026-03-01 10:07"), "2026-03-01 10:15 Sun");
  EXPECT_EQ(Next("*/15 * * * *", "2026-03-01 10:15"), "2026-03-01 10:30 Sun");
  EXPECT_EQ(
      Text(NextFireMs(Cron("*/15 * * * *"), Ms("2026-03-01 10:14:59") + 999)),
      "2026-03-01 10:15 Sun");
  EXPECT_EQ(Next("*/15 * * * *", "2026-03-01 23:50"), "2026-03-02 00:00 Mon");
  EXPECT_EQ(Next("* * * * *", "2026-03-01 10:07:30"), "2026-03-01 10:08 Sun");
  EXPECT_EQ(NextFireMs(Cron("* * * * *"), Ms("2026-03-01 10:07:30")) % 60000,
            0);
}

TEST(NextFireMsTest, RangesWithSteps) {
  // Hours 8, 13, 18 at :30.
  EXPECT_EQ(Next("30 8-18/5 * * *", "2026-03-01 13:30"),
            "2026-03-01 18:30 Sun");
  EXPECT_EQ(Next("30 8-18/5 * * *", "2026-03-01 18:30"),
            "2026-03-02 08:30 Mon");
  EXPECT_EQ(Next("10-50/20 * * * *", "2026-03-01 10:31"),
            "2026-03-01 10:50 Sun");
  EXPECT_EQ(Next("10-50/20 * * * *", "2026-03-01 10:50"),
            "2026-03-01 11:10 Sun");
}

TEST(NextFireMsTest, MonthsAndYears) {
  EXPECT_EQ(Next("0 0 1 jan *", "2026-06-01 00:00"), "2027-01-01 00:00 Fri");
  EXPECT_EQ(Next("59 23 31 12 *", "2026-12-31 23:59"), "2027-12-31 23:59 Fri");
  EXPECT_EQ(Next("0 0 31 * *", "2026-04-01 00:00"), "2026-05-31 00:00 Sun");
  EXPECT_EQ(Next("0 12 1 */3 *", "2026-04-01 12:00"), "2026-07-01 12:00 Wed");
}

TEST(NextFireMsTest, LeapYears) {
  EXPECT_EQ(Next("0 0 29 2 *", "2026-01-01 00:00"), "2028-02-29 00:00 Tue");
  EXPECT_EQ(Next("0 0 29 2 *", "2028-02-29 00:00"), "2032-02-29 00:00 Sun");
  // 2100 is not a leap year; 2000 was.
  EXPECT_EQ(Next("0 0 29 2 *", "2096-02-29 00:00"), "2104-02-29 00:00 Fri");
  EXPECT_EQ(Next("0 0 29 2 *", "1999-01-01 00:00"), "2000-02-29 00:00 Tue");
  EXPECT_EQ(Next("0 0 29 2 */7", "2005-01-01 00:00"), "2032-02-29 00:00 Sun");
}

TEST(NextFireMsTest, DayOfMonthAndDayOfWeek) {
  // Both restricted: the 1st, the 15th, or any Monday.
  EXPECT_EQ(Next("0 0 1,15 * 1", "2026-03-01 00:00"), "2026-03-02 00:00 Mon");
  EXPECT_EQ(Next("0 0 1,15 * 1", "2026-03-09 00:00"), "2026-03-15 00:00 Sun");
  EXPECT_EQ(Next("0 0 13 * 5", "2026-03-01 00:00"), "2026-03-06 00:00 Fri");
  // Day-of-month is '*': Mondays only.
  EXPECT_EQ(Next("0 12 * * 1", "2026-03-03 00:00"), "2026-03-09 12:00 Mon");
  EXPECT_EQ(Next("0 12 * * mon", "2026-03-09 12:00"), "2026-03-16 12:00 Mon");
  // Star-prefixed day-of-month with a restricted weekday: both (odd days
  // that are Mondays).
  EXPECT_EQ(Next("0 0 */2 * 1", "2026-03-01 00:00"), "2026-03-09 00:00 Mon");
  // Star-prefixed day-of-week: Sundays that are the 13th.
  EXPECT_EQ(Next("0 0 13 * */7", "2026-01-01 00:00"), "2026-09-13 00:00 Sun");
  // 7 is Sunday like 0.
  EXPECT_EQ(Next("0 0 * * 7", "2026-03-02 00:00"), "2026-03-08 00:00 Sun");
  // Weekday in a restricted month.
  EXPECT_EQ(Next("0 9 * feb fri", "2026-03-01 00:00"), "2027-02-05 09:00 Fri");
}

TEST(NextFireMsTest, BeforeTheEpochAndFarAway) {
  EXPECT_EQ(NextFireMs(Cron("* * * * *"), -1), 0);
  EXPECT_EQ(NextFireMs(Cron("* * * * *"), -60000), 0);
  EXPECT_EQ(Next("0 0 1 1 *", "1969-06-01 00:00"), "1970-01-01 00:00 Thu");
  EXPECT_EQ(NextFireMs(Cron("* * * * *"), INT64_MAX), kCronNever);
  // A spec that never fires (built by hand: ParseCron refuses it).
  CronSpec never = Cron("0 0 30 1 *");
  never.months = Bits({2});
  EXPECT_EQ(NextFireMs(never, 0), kCronNever);
}

// NextFireMs against a minute-by-minute walk over abseil's calendar, for
// random specs and times.
TEST(NextFireMsTest, MatchesABruteForceWalk) {
  const std::vector<std::string> minutes = {"*",      "0",  "*/15",
                                            "5-20/5", "59", "1,31"};
  const std::vector<std::string> hours = {"*", "0", "9-17", "*/6", "23"};
  const std::vector<std::string> days = {"*",  "1",    "13",  "29",
                                         "31", "*/10", "1-7", "28-31"};
  const std::vector<std::string> months = {"*", "2", "feb,aug", "*/4", "12"};
  const std::vector<std::string> weekdays = {"*",   "0",   "5",
                                             "1-5", "*/3", "sat,sun"};
  std::mt19937_64 rng(8);
  auto pick = [&](const std::vector<std::string>& v) {
    return v[rng() % v.size()];
  };
  int checked = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string text = pick(minutes) + " " + pick(hours) + " " +
                             pick(days) + " " + pick(months) + " " +
                             pick(weekdays);
    absl::StatusOr<CronSpec> spec = ParseCron(text);
    if (!spec.ok()) continue;  // never fires (e.g. day 31 of February)
    // Somewhere between 1900 and 2400.
    const int64_t after =
        Ms("1900-01-01 00:00") +
        static_cast<int64_t>(rng() % (int64_t{500} * 365 * 86400 * 1000));
    const int64_t got = NextFireMs(*spec, after);
    // The walk: every day, then the minutes of a matching day.
    absl::CivilMinute m =
        absl::ToCivilMinute(absl::FromUnixMillis(after), absl::UTCTimeZone()) +
        1;
    int64_t want = kCronNever;
    for (int step = 0; step < 60 * 24 * 366 * 30; ++step, ++m) {
      const int weekday = (static_cast<int>(absl::GetWeekday(m)) + 1) % 7;
      const bool dom = (spec->days >> m.day()) & 1;
      const bool dow = (spec->weekdays >> weekday) & 1;
      const bool day_ok =
          spec->days_star || spec->weekdays_star ? dom && dow : dom || dow;
      if (!((spec->months >> m.month()) & 1) || !day_ok) {
        m = absl::CivilMinute(absl::CivilDay(m) + 1) - 1;  // to 23:59
        continue;
      }
      if (((spec->hours >> m.hour()) & 1) &&
          ((spec->minutes >> m.minute()) & 1)) {
        want = absl::ToUnixMillis(absl::FromCivil(m, absl::UTCTimeZone()));
        break;
      }
    }
    ASSERT_EQ(Text(got), Text(want)) << text << " after " << Text(after);
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

// ---- ParseScheduleSections ----

TEST(ParseScheduleSectionsTest, ReadsIntervalAndCron) {
  auto parsed = ParseScheduleSections(R"(
max_payload_bytes = 100

[[schedules]]
name = "heartbeat"
topic = "health.siftd"
every_ms = 5000

[[schedules]]
name = "nightly-report"
topic = "reports.nightly"
payload = '{"kind":"nightly"}'
headers = { Zeta = "1", Content-Type = "application/json", alpha = "x" }
cron = "30 2 * * mon-fri"
)",
                                      "siftd.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  const Schedule& h = (*parsed)[0];
  EXPECT_EQ(h.name, "heartbeat");
  EXPECT_EQ(h.topic, "health.siftd");
  EXPECT_EQ(h.payload, "");
  EXPECT_TRUE(h.headers.empty());
  EXPECT_EQ(h.interval_ms, 5000);
  const Schedule& n = (*parsed)[1];
  EXPECT_EQ(n.payload, "{\"kind\":\"nightly\"}");
  EXPECT_EQ(n.interval_ms, 0);
  EXPECT_EQ(n.cron, Cron("30 2 * * 1-5"));
  EXPECT_EQ(n.cron.text, "30 2 * * mon-fri");
  // Headers in file order, not key order.
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Zeta", "1"}, {"Content-Type", "application/json"}, {"alpha", "x"}};
  EXPECT_EQ(n.headers, headers);
}

TEST(ParseScheduleSectionsTest, NoSchedulesIsEmpty) {
  auto parsed = ParseScheduleSections("max_clients = 10\n", "siftd.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->empty());
}

TEST(ParseScheduleSectionsTest, ErrorsNameTheFileLineAndKey) {
  struct Case {
    const char* toml;
    const char* message;  // the whole message
  };
  const Case cases[] = {
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = 1000\n"
       "evry_ms = 5\n",
       "s.toml:5: unknown schedule setting \"evry_ms\" (known: name, topic, "
       "payload, headers, every_ms, cron)"},
      {"[[schedules]]\ntopic = \"t\"\nevery_ms = 1000\n",
       "s.toml:1: a schedule needs a \"name\""},
      {"[[schedules]]\nname = \"a b\"\ntopic = \"t\"\nevery_ms = 1000\n",
       "s.toml:2: schedule name \"a b\" must be 1 to 64 letters, digits, '_' "
       "or '-'"},
      {"[[schedules]]\nname = \"a\"\nevery_ms = 1000\n",
       "s.toml:1: schedule \"a\" needs a \"topic\""},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t.*\"\nevery_ms = 1000\n",
       nullptr},  // checked below: names the topic
      {"[[schedules]]\nname = \"a\"\ntopic = \"$sift.stats\"\n"
       "every_ms = 1000\n",
       "s.toml:3: schedule \"a\" topic \"$sift.stats\": topics under "
       "\"$sift.\" are the broker's"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\npayload = 5\n"
       "every_ms = 1000\n",
       "s.toml:4: schedule \"a\" \"payload\" must be a string"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\n"
       "headers = { \"bad key\" = \"v\" }\nevery_ms = 1000\n",
       "s.toml:4: schedule \"a\" header key \"bad key\" must be 1 to 64 token "
       "characters (A-Z a-z 0-9 !#$%&'*+-.^_`|~)"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\n"
       "headers = { K = 1 }\nevery_ms = 1000\n",
       "s.toml:4: schedule \"a\" header \"K\" must be a string"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nheaders = \"K=v\"\n"
       "every_ms = 1000\n",
       "s.toml:4: schedule \"a\" \"headers\" must be a table of strings, e.g. "
       "headers = { Content-Type = \"text/plain\" }"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\n",
       "s.toml:1: schedule \"a\" needs exactly one of \"every_ms\" or "
       "\"cron\""},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = 1000\n"
       "cron = \"* * * * *\"\n",
       "s.toml:1: schedule \"a\" needs exactly one of \"every_ms\" or "
       "\"cron\""},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = 99\n",
       "s.toml:4: schedule \"a\" \"every_ms\" must be an integer from 100 to "
       "31622400000 (366 days)"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = \"1s\"\n",
       "s.toml:4: schedule \"a\" \"every_ms\" must be an integer from 100 to "
       "31622400000 (366 days)"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\ncron = \"0 25 * * *\"\n",
       "s.toml:4: schedule \"a\" cron \"0 25 * * *\": hour field: \"25\" is "
       "out of range 0-23"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\ncron = 5\n",
       "s.toml:4: schedule \"a\" \"cron\" must be a string"},
      {"[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = 1000\n"
       "[[schedules]]\nname = \"a\"\ntopic = \"u\"\nevery_ms = 2000\n",
       "s.toml:5: schedule \"a\" is defined twice"},
      {"schedules = 5\n",
       "s.toml:1: \"schedules\" must be an array of tables ([[schedules]])"},
      {"[[schedules]\n", nullptr},  // syntax error, checked below
  };
  for (const Case& c : cases) {
    auto parsed = ParseScheduleSections(c.toml, "s.toml");
    ASSERT_FALSE(parsed.ok()) << c.toml;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    if (c.message != nullptr) {
      EXPECT_EQ(parsed.status().message(), c.message) << c.toml;
    }
  }
  auto wildcard = ParseScheduleSections(
      "[[schedules]]\nname = \"a\"\ntopic = \"t.*\"\nevery_ms = 1000\n",
      "s.toml");
  EXPECT_EQ(wildcard.status().message().find(
                "s.toml:3: schedule \"a\" topic \"t.*\" is not a literal "
                "topic: "),
            0u)
      << wildcard.status();
  auto syntax = ParseScheduleSections("[[schedules]\n", "s.toml");
  EXPECT_EQ(syntax.status().message().find("s.toml:1:"), 0u) << syntax.status();
}

TEST(ParseScheduleSectionsTest, ReportsEveryProblemInOneError) {
  auto parsed = ParseScheduleSections(
      "[[schedules]]\nname = \"a\"\ntopic = \"t\"\nevery_ms = 5\n"
      "[[schedules]]\nname = \"b\"\ntopic = \"t\"\ncron = \"* *\"\n",
      "s.toml");
  ASSERT_FALSE(parsed.ok());
  const std::string message(parsed.status().message());
  EXPECT_NE(message.find("s.toml:4: schedule \"a\" \"every_ms\""),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("\ns.toml:8: schedule \"b\" cron \"* *\": needs 5"),
            std::string::npos)
      << message;
}

TEST(ParseScheduleSectionsTest, AppliesTheLimits) {
  ScheduleLimits limits;
  limits.topic.max_tokens = 2;
  limits.headers.max_count = 1;
  limits.headers.max_bytes = 4;
  limits.max_payload_bytes = 3;
  auto parsed = ParseScheduleSections(
      "[[schedules]]\nname = \"a\"\ntopic = \"a.b.c\"\npayload = \"1234\"\n"
      "headers = { K = \"v\", L = \"long\" }\nevery_ms = 1000\n",
      "s.toml", limits);
  ASSERT_FALSE(parsed.ok());
  const std::string message(parsed.status().message());
  EXPECT_NE(message.find("s.toml:3: schedule \"a\" topic \"a.b.c\""),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("s.toml:4: schedule \"a\" payload is 4 bytes, over "
                         "max_payload_bytes (3)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("s.toml:5: schedule \"a\" has 2 headers, over "
                         "max_headers (1)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("s.toml:5: schedule \"a\" headers take 7 bytes, "
                         "over max_headers_bytes (4)"),
            std::string::npos)
      << message;
}

// ---- ScheduleTimer ----

Schedule Every(const std::string& name, int64_t ms) {
  Schedule s;
  s.name = name;
  s.topic = "t." + name;
  s.interval_ms = ms;
  return s;
}

Schedule At(const std::string& name, const std::string& cron) {
  Schedule s;
  s.name = name;
  s.topic = "t." + name;
  s.cron = Cron(cron);
  return s;
}

std::vector<std::string> Take(ScheduleTimer& timer, int64_t now) {
  std::vector<const Schedule*> out;
  timer.TakeDue(now, &out);
  std::vector<std::string> names;
  for (const Schedule* s : out) names.push_back(s->name);
  return names;
}

using Names = std::vector<std::string>;

TEST(ScheduleTimerTest, IntervalFiresEachTickFromStart) {
  ScheduleTimer timer({Every("a", 1000)}, 10000);
  EXPECT_EQ(timer.NextDue(), 11000);
  EXPECT_EQ(Take(timer, 10999), Names{});
  EXPECT_EQ(Take(timer, 11000), Names{"a"});
  EXPECT_EQ(timer.NextDue(), 12000);
  EXPECT_EQ(Take(timer, 11000), Names{});
  EXPECT_EQ(Take(timer, 12003), Names{"a"});  // a little late: keeps phase
  EXPECT_EQ(timer.NextDue(), 13000);
  EXPECT_EQ(timer.fired(), 2u);
  EXPECT_EQ(timer.collapsed(), 0u);
}

TEST(ScheduleTimerTest, IntervalSkipsMissedTicksAfterAPause) {
  ScheduleTimer timer({Every("a", 1000)}, 0);
  EXPECT_EQ(Take(timer, 1000), Names{"a"});
  // Paused from 1000 to 5500: ticks 2000..5000 collapse into one fire.
  EXPECT_EQ(Take(timer, 5500), Names{"a"});
  EXPECT_EQ(timer.NextDue(), 6000);
  EXPECT_EQ(timer.fired(), 2u);
  EXPECT_EQ(timer.collapsed(), 1u);
  EXPECT_EQ(Take(timer, 5999), Names{});
  EXPECT_EQ(Take(timer, 6000), Names{"a"});
  EXPECT_EQ(timer.collapsed(), 1u);
}

TEST(ScheduleTimerTest, DueInTimeOrderTiesInConfigOrder) {
  ScheduleTimer timer(
      {Every("slow", 3000), Every("fast", 1000), Every("also-fast", 1000)}, 0);
  EXPECT_EQ(Take(timer, 1000), (Names{"fast", "also-fast"}));
  EXPECT_EQ(Take(timer, 2000), (Names{"fast", "also-fast"}));
  // At 3500: slow (due 3000) and the fast ones (due 3000) tie: config order.
  EXPECT_EQ(Take(timer, 3500), (Names{"slow", "fast", "also-fast"}));
  EXPECT_EQ(timer.NextDue(), 4000);
  // fast due 4000, slow due 6000: after a pause to 6000, all fire once,
  // earliest due first.
  EXPECT_EQ(Take(timer, 6000), (Names{"fast", "also-fast", "slow"}));
  EXPECT_EQ(timer.next_due(0), 9000);
  EXPECT_EQ(timer.next_due(1), 7000);
}

TEST(ScheduleTimerTest, CronFiresAtMatchingMinutes) {
  ScheduleTimer timer({At("q", "*/15 * * * *"), At("h", "0 * * * *")},
                      Ms("2026-03-01 10:07:30"));
  EXPECT_EQ(Text(timer.NextDue()), "2026-03-01 10:15 Sun");
  EXPECT_EQ(Take(timer, Ms("2026-03-01 10:14:59")), Names{});
  EXPECT_EQ(Take(timer, Ms("2026-03-01 10:15:00") + 2), Names{"q"});
  EXPECT_EQ(Text(timer.NextDue()), "2026-03-01 10:30 Sun");
  EXPECT_EQ(Take(timer, Ms("2026-03-01 10:30")), Names{"q"});
  EXPECT_EQ(Take(timer, Ms("2026-03-01 10:45")), Names{"q"});
  EXPECT_EQ(Take(timer, Ms("2026-03-01 11:00")), (Names{"q", "h"}));
  EXPECT_EQ(timer.collapsed(), 0u);
  // Stopped until 12:40: q missed 11:15 .. 12:30 (one fire, collapsed);
  // h missed only 12:00 (one fire, nothing collapsed).
  EXPECT_EQ(Take(timer, Ms("2026-03-01 12:40")), (Names{"q", "h"}));
  EXPECT_EQ(timer.collapsed(), 1u);
  EXPECT_EQ(Text(timer.next_due(0)), "2026-03-01 12:45 Sun");
  EXPECT_EQ(Text(timer.next_due(1)), "2026-03-01 13:00 Sun");
  EXPECT_EQ(timer.fired(), 7u);
}

TEST(ScheduleTimerTest, ClockSteppingBack) {
  ScheduleTimer timer({Every("i", 1000), At("c", "0 * * * *")},
                      Ms("2026-03-01 10:00:00"));
  const int64_t t0 = Ms("2026-03-01 10:00:00");
  EXPECT_EQ(Take(timer, t0 + 5000), Names{"i"});
  EXPECT_EQ(timer.next_due(0), t0 + 6000);
  // Back by 30 s: the interval returns to its first tick after now, in
  // phase; the hourly cron keeps 11:00.
  EXPECT_EQ(Take(timer, t0 - 30000 + 1500), Names{});
  EXPECT_EQ(timer.next_due(0), t0 - 30000 + 2000);
  EXPECT_EQ(Text(timer.next_due(1)), "2026-03-01 11:00 Sun");
  // Back by more than an hour from 10:00: the cron follows the new clock.
  EXPECT_EQ(Take(timer, Ms("2026-03-01 08:30")), Names{});
  EXPECT_EQ(Text(timer.next_due(1)), "2026-03-01 09:00 Sun");
  EXPECT_EQ(Take(timer, Ms("2026-03-01 09:00")), (Names{"i", "c"}));
}

TEST(ScheduleTimerTest, NoSchedules) {
  ScheduleTimer timer({}, 0);
  EXPECT_EQ(timer.NextDue(), INT64_MAX);
  EXPECT_EQ(Take(timer, 1000000), Names{});
}

}  // namespace
}  // namespace sift::delivery
