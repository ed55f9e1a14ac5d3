#include "broker/plugin/lua_plugin.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kRules[] = "broker/plugin/testdata/lua/rules.lua";
constexpr char kSyntaxError[] = "broker/plugin/testdata/lua/syntax_error.lua";

absl::StatusOr<std::unique_ptr<Filter>> MakeFilter(
    std::vector<std::pair<std::string, std::string>> kv) {
  return MakeLuaFilterFactory()->Create(PluginConfig(std::move(kv)));
}

absl::StatusOr<std::unique_ptr<Transform>> MakeTransform(
    std::vector<std::pair<std::string, std::string>> kv) {
  return MakeLuaTransformFactory()->Create(PluginConfig(std::move(kv)));
}

std::unique_ptr<Filter> FilterFrom(std::string source) {
  auto f = MakeFilter({{"source", std::move(source)}});
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

std::unique_ptr<Transform> TransformFrom(std::string source) {
  auto t = MakeTransform({{"source", std::move(source)}});
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

absl::StatusOr<Verdict> Decide(Filter& f, std::string_view payload) {
  return f.Apply(Message("t", "", {}, payload), CallContext());
}

TEST(LuaPluginTest, FactoryNames) {
  EXPECT_EQ(MakeLuaFilterFactory()->name(), "lua_filter");
  EXPECT_EQ(MakeLuaTransformFactory()->name(), "lua_transform");
}

TEST(LuaPluginTest, FilterKeepsAndDropsWithAReason) {
  auto f = FilterFrom(R"(
    function filter(msg)
      if msg.payload:find("secret", 1, true) then return false, "secret" end
      return true
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "hello");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
  v = Decide(*f, "a secret");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->keep);
  EXPECT_EQ(v->reason, "secret");
}

TEST(LuaPluginTest, FilterSeesEveryPartOfTheMessage) {
  auto f = FilterFrom(R"(
    function filter(m)
      local h = m.headers
      return m.topic == "orders.eu" and m.reply_to == "_INBOX.x" and
             m.payload == "p\0q" and #h == 3 and
             h[1][1] == "a" and h[1][2] == "1" and
             h[2][1] == "b" and h[2][2] == "" and
             h[3][1] == "a" and h[3][2] == "2"
    end)");
  ASSERT_NE(f, nullptr);
  Message m("orders.eu", "_INBOX.x", {{"a", "1"}, {"b", ""}, {"a", "2"}},
            std::string_view("p\0q", 3));
  auto v = f->Apply(m, CallContext());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
}

TEST(LuaPluginTest, FilterDefaultReasonAndNonBooleanResult) {
  auto f = FilterFrom(R"(
    function filter(m)
      if m.payload == "nil" then return nil end
      if m.payload == "table" then return false, {} end
      return false
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "x");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->keep);
  EXPECT_EQ(v->reason, "lua_filter");

  v = Decide(*f, "nil");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(),
              HasSubstr("lua_filter: filter returned nil, want a boolean"));
  v = Decide(*f, "table");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("table reason"));
}

TEST(LuaPluginTest, ScriptFileFunctionNameAndPersistentGlobals) {
  auto f = MakeFilter({{"script", kRules}});
  ASSERT_TRUE(f.ok()) << f.status();
  Message low("t", "", {{"priority", "2"}}, "x");
  Message high("t", "", {{"priority", "9"}}, "x");
  EXPECT_TRUE((*f)->Apply(low, CallContext())->keep);
  auto v = (*f)->Apply(high, CallContext());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->keep);
  EXPECT_EQ(v->reason, "priority 9");

  // A runtime error names the file and line.
  v = (*f)->Apply(Message("t", "", {}, "boom"), CallContext());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(),
              HasSubstr(std::string("lua_filter: ") + kRules +
                        ":16: asked to explode"));

  // "function" picks another global; globals persist between calls.
  auto count = MakeFilter({{"script", kRules}, {"function", "count"}});
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_TRUE(Decide(**count, "a")->keep);
  EXPECT_FALSE(Decide(**count, "b")->keep);
  EXPECT_TRUE(Decide(**count, "c")->keep);
}

TEST(LuaPluginTest, SyntaxErrorsAreRefusedAtCreateWithTheLine) {
  auto inline_error = MakeFilter({{"source", "x = 1\nfunction filter(m\n"}});
  EXPECT_EQ(inline_error.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inline_error.status().message(),
              HasSubstr("lua_filter: source:"));

  auto file_error = MakeFilter({{"script", kSyntaxError}});
  EXPECT_EQ(file_error.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file_error.status().message(),
              HasSubstr(std::string(kSyntaxError) + ":2:"));
}

TEST(LuaPluginTest, CreateRefusesBadScriptsAndSettings) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> kv;
    absl::StatusCode code;
    std::string text;
  };
  const std::string ok = "function filter(m) return true end";
  std::vector<Case> cases = {
      {{}, absl::StatusCode::kInvalidArgument, "exactly one"},
      {{{"source", ok}, {"script", kRules}},
       absl::StatusCode::kInvalidArgument,
       "exactly one"},
      {{{"source", ok}, {"budget", "5"}},
       absl::StatusCode::kInvalidArgument,
       "unknown setting \"budget\""},
      {{{"source", ok}, {"instruction_budget", "0"}},
       absl::StatusCode::kInvalidArgument,
       "instruction_budget 0 is out of range"},
      {{{"source", ok}, {"instruction_budget", "many"}},
       absl::StatusCode::kInvalidArgument,
       "not an integer"},
      {{{"source", ok}, {"memory_limit_bytes", "1000"}},
       absl::StatusCode::kInvalidArgument,
       "below the minimum"},
      {{{"script", "broker/plugin/testdata/lua/none.lua"}},
       absl::StatusCode::kFailedPrecondition,
       "cannot read script"},
      {{{"source", "x = 1"}},
       absl::StatusCode::kInvalidArgument,
       "defines no function \"filter\" (it is nil)"},
      {{{"source", ok}, {"function", "other"}},
       absl::StatusCode::kInvalidArgument,
       "no function \"other\""},
      {{{"source", "error('no config')\nfunction filter() end"}},
       absl::StatusCode::kInvalidArgument,
       "source:1: no config (running the script's top level)"},
      {{{"source", "while true do end"}},
       absl::StatusCode::kInvalidArgument,
       "instruction budget of 1000000 exceeded"},
      // Precompiled chunks are refused (text only).
      {{{"source", "\x1bLua\x54\x00junk"}},
       absl::StatusCode::kInvalidArgument,
       "binary chunk"},
  };
  for (const Case& c : cases) {
    auto f = MakeFilter(c.kv);
    EXPECT_EQ(f.status().code(), c.code) << f.status();
    EXPECT_THAT(f.status().message(), HasSubstr(c.text));
    EXPECT_THAT(f.status().message(), HasSubstr("lua_filter: "));
  }
}

TEST(LuaPluginTest, RuntimeErrorFailsOneMessageThenTheNextRuns) {
  auto f = FilterFrom(R"(
    n = 0
    function filter(m)
      n = n + 1
      if m.payload == "boom" then error("kaboom") end
      if m.payload == "index" then return m.nothing.here end
      return n > 0
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "boom");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("lua_filter: source:5: kaboom"));
  v = Decide(*f, "index");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("source:6: attempt to index"));
  v = Decide(*f, "fine");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
}

TEST(LuaPluginTest, RunawayLoopIsStoppedByTheBudgetAndTheNextMessageRuns) {
  auto f = FilterFrom(R"(
    function filter(m)
      if m.payload == "spin" then while true do end end
      return true
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "spin");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(v.status().message(),
            "lua_filter: instruction budget of 1000000 exceeded");
  v = Decide(*f, "fine");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
  // Again: the budget is re-armed for every call.
  EXPECT_EQ(Decide(*f, "spin").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Decide(*f, "fine").ok());
}

TEST(LuaPluginTest, CatchingTheBudgetErrorDoesNotEscapeIt) {
  auto f = FilterFrom(R"(
    function filter(m)
      if m.payload == "sly" then
        while true do
          pcall(function() while true do end end)
          xpcall(function() while true do end end,
                 function(e) while true do end end)
        end
      end
      return true
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "sly");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Decide(*f, "fine").ok());
}

TEST(LuaPluginTest, CatchingTheBudgetErrorInATailCallStillFails) {
  // pcall in tail position returns (false, "...") straight to the host,
  // with no instruction left for the budget to stop.
  auto f = FilterFrom(R"(
    local function spin() while true do end end
    function filter(m)
      if m.payload == "tail" then return pcall(spin) end
      return true
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "tail");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted)
      << (v.ok() ? v->reason : "");
  EXPECT_TRUE(Decide(*f, "fine").ok());
}

TEST(LuaPluginTest, BudgetSettingCountsInstructions) {
  const std::string loop = R"(
    function filter(m)
      local s = 0
      for i = 1, tonumber(m.payload) do s = s + i end
      return true
    end)";
  auto f = MakeFilter({{"source", loop}, {"instruction_budget", "1000"}});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(Decide(**f, "10").ok());
  auto v = Decide(**f, "10000");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(v.status().message(),
            "lua_filter: instruction budget of 1000 exceeded");
  EXPECT_TRUE(Decide(**f, "10").ok());
}

TEST(LuaPluginTest, MemoryBombsAreStoppedAndTheStateRecovers) {
  auto f = MakeFilter({{"source", R"(
    function filter(m)
      if m.payload == "string" then
        local s = string.rep("x", 1 << 30)
      elseif m.payload == "table" then
        local t = {}
        for i = 1, 1e8 do t[i] = {i} end
      elseif m.payload == "keep" then
        kept = string.rep("y", 128 * 1024)
      end
      return true
    end)"},
                       {"memory_limit_bytes", "1048576"},
                       {"instruction_budget", "1000000000"}});
  ASSERT_TRUE(f.ok()) << f.status();
  for (const char* bomb : {"string", "table", "string"}) {
    auto v = Decide(**f, bomb);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted)
        << bomb << ": " << v.status();
    EXPECT_EQ(v.status().message(),
              "lua_filter: memory limit of 1048576 bytes exceeded");
    auto next = Decide(**f, "fine");
    ASSERT_TRUE(next.ok()) << next.status();
  }
  // Memory kept in globals counts against the limit across calls.
  EXPECT_TRUE(Decide(**f, "keep").ok());
}

TEST(LuaPluginTest, ForbiddenLibrariesAreAbsent) {
  auto f = FilterFrom(R"(
    function filter(m)
      for _, name in ipairs({"io", "os", "package", "debug", "coroutine",
                             "dofile", "loadfile", "load", "loadstring",
                             "require", "collectgarbage", "print", "warn"}) do
        if _G[name] ~= nil then return false, name end
      end
      if string.dump ~= nil then return false, "string.dump" end
      if ("x").dump ~= nil then return false, "(''):dump" end
      -- What is allowed is there.
      assert(string.upper and table.concat and math.floor and utf8.char and
             pcall and setmetatable and tostring)
      return io == nil
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "x");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep) << "present: " << v->reason;
}

TEST(LuaPluginTest, FinalizersAreRefused) {
  auto f = FilterFrom(R"(
    function filter(m)
      if m.payload == "gc" then
        setmetatable({}, {__gc = function() while true do end end})
      end
      -- Other metatables are fine.
      local t = setmetatable({}, {__index = function() return 7 end})
      return t.anything == 7
    end)");
  ASSERT_NE(f, nullptr);
  auto v = Decide(*f, "gc");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("__gc"));
  v = Decide(*f, "x");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
}

TEST(LuaPluginTest, TransformRewritesAndKeepsUnchangedPartsUncopied) {
  auto t = TransformFrom(R"(
    function transform(m)
      m.payload = m.payload:upper()
      m.headers[#m.headers + 1] = {"x-lua", "1"}
      return m
    end)");
  ASSERT_NE(t, nullptr);
  std::string topic = "orders.eu";
  Message in(topic, "_INBOX.r", {{"a", "1"}}, "hello");
  std::vector<Message> out;
  absl::Status s = t->Apply(in, CallContext(), &out);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic(), "orders.eu");
  EXPECT_EQ(out[0].topic().data(), topic.data());  // not copied
  EXPECT_FALSE(out[0].topic_changed());
  EXPECT_EQ(out[0].reply_to(), "_INBOX.r");
  EXPECT_EQ(out[0].payload(), "HELLO");
  EXPECT_THAT(out[0].headers(),
              ElementsAre(HeaderField{"a", "1"}, HeaderField{"x-lua", "1"}));
}

TEST(LuaPluginTest, TransformMissingFieldsComeFromTheInput) {
  auto t = TransformFrom(R"(
    function transform(m) return {topic = "routed." .. m.topic, payload = 42} end
  )");
  ASSERT_NE(t, nullptr);
  std::vector<Message> out;
  ASSERT_TRUE(
      t->Apply(Message("a", "r", {{"k", "v"}}, "p"), CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic(), "routed.a");
  EXPECT_EQ(out[0].reply_to(), "r");
  EXPECT_EQ(out[0].payload(), "42");
  EXPECT_THAT(out[0].headers(), ElementsAre(HeaderField{"k", "v"}));
}

TEST(LuaPluginTest, TransformDropsAndSplits) {
  auto t = TransformFrom(R"(
    function transform(m)
      if m.payload == "drop" then return nil end
      if m.payload == "none" then return {} end
      local out = {}
      for part in m.payload:gmatch("[^,]+") do
        out[#out + 1] = {payload = part, headers = {{"part", tostring(#out)}}}
      end
      return out
    end)");
  ASSERT_NE(t, nullptr);
  std::vector<Message> out;
  ASSERT_TRUE(t->Apply(Message("t", "", {}, "drop"), CallContext(), &out).ok());
  EXPECT_THAT(out, IsEmpty());
  ASSERT_TRUE(t->Apply(Message("t", "", {}, "none"), CallContext(), &out).ok());
  EXPECT_THAT(out, IsEmpty());

  ASSERT_TRUE(
      t->Apply(Message("t", "", {}, "a,bb,c"), CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].payload(), "a");
  EXPECT_EQ(out[1].payload(), "bb");
  EXPECT_EQ(out[2].payload(), "c");
  EXPECT_THAT(out[2].headers(), ElementsAre(HeaderField{"part", "2"}));
  for (const Message& m : out) EXPECT_EQ(m.topic(), "t");
}

TEST(LuaPluginTest, TransformBadResultsFailTheMessage) {
  auto t = TransformFrom(R"(
    function transform(m)
      if m.payload == "number" then return 5 end
      if m.payload == "field" then return {topic = {}} end
      if m.payload == "headers" then return {headers = {"k", "v"}} end
      if m.payload == "key" then return {headers = {{"bad key", "v"}}} end
      if m.payload == "array" then return {m, 7} end
      -- A typo and a nesting too many were silently the input unchanged
      -- (or, at the top level, an empty array: a drop).
      if m.payload == "typo" then return {topic = "a", paylod = "x"} end
      if m.payload == "toptypo" then return {paylod = "x"} end
      if m.payload == "nested" then return {{{payload = "a"}}} end
      if m.payload == "holes" then return {m, n = 2} end
      return m
    end)");
  ASSERT_NE(t, nullptr);
  const std::pair<const char*, const char*> cases[] = {
      {"number", "transform returned a number"},
      {"field", "message field topic is a table"},
      {"headers", "headers[1] is a string"},
      {"key", "\"bad key\" is not a header key"},
      {"array", "[2] is a number"},
      {"typo",
       "returned a message table with key paylod: a message has "
       "only topic, reply_to, payload and headers"},
      {"toptypo", "returned a table with key paylod: want a message"},
      {"nested", "returned a message table with key 1"},
      {"holes", "returned a table with key n"},
  };
  for (const auto& [payload, text] : cases) {
    std::vector<Message> out;
    absl::Status s =
        t->Apply(Message("t", "", {}, payload), CallContext(), &out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << payload;
    EXPECT_THAT(s.message(), HasSubstr(text)) << payload;
    EXPECT_THAT(s.message(), HasSubstr("lua_transform: ")) << payload;
  }
  std::vector<Message> out;
  ASSERT_TRUE(t->Apply(Message("t", "", {}, "ok"), CallContext(), &out).ok());
  ASSERT_EQ(out.size(), 1u);
}

TEST(LuaPluginTest, TransformBudgetAndCustomFunction) {
  auto t = MakeTransform({{"source", R"(
    function spin(m) if m.payload == "spin" then while true do end end return m end
  )"},
                          {"function", "spin"},
                          {"instruction_budget", "5000"}});
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<Message> out;
  absl::Status s =
      (*t)->Apply(Message("t", "", {}, "spin"), CallContext(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "lua_transform: instruction budget of 5000 exceeded");
  EXPECT_THAT(out, IsEmpty());
  ASSERT_TRUE((*t)->Apply(Message("t", "", {}, "x"), CallContext(), &out).ok());
  EXPECT_EQ(out.size(), 1u);
}

// Pattern matching runs in C, out of the instruction budget's reach: a
// pattern that could backtrack for ever fails the message at once, and the
// state works afterwards; ordinary patterns and plain finds still work.
TEST(LuaPluginTest, PatternsThatCouldBacktrackForEverAreRefused) {
  auto f = FilterFrom(
      "function filter(m)\n"
      "  if m.payload == 'bomb' then\n"
      "    return string.find(string.rep('a', 60), string.rep('a*', 12) .. 'b')"
      " ~= nil\n"
      "  end\n"
      "  local n = 0\n"
      "  for line in m.payload:gmatch('[^,]+') do n = n + 1 end\n"
      "  return n == 3 and m.payload:find('b,', 1, true) ~= nil\n"
      "end\n");
  const absl::Time start = absl::Now();
  absl::StatusOr<Verdict> bomb = Decide(*f, "bomb");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_FALSE(bomb.ok());
  EXPECT_NE(bomb.status().message().find("repetition items"),
            std::string::npos)
      << bomb.status();
  absl::StatusOr<Verdict> ok = Decide(*f, "a,b,c");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->keep);
}

}  // namespace
}  // namespace sift::plugin
