#include "broker/plugin/lua_plugin.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <lua5.4/lua.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/emitted.h"
#include "broker/plugin/header_key.h"

namespace sift::plugin {
namespace {

constexpr int64_t kDefaultBudget = 1000000;
constexpr int64_t kMaxBudget = 1000000000;  // fits lua_sethook's int count
constexpr int64_t kDefaultMemoryLimit = 16 << 20;
constexpr int64_t kMinMemoryLimit = 256 << 10;

enum class Kind { kFilter, kTransform };

std::string_view KindName(Kind kind) {
  return kind == Kind::kFilter ? "lua_filter" : "lua_transform";
}

// One plugin's Lua state and its limits.
//
// Lua reports errors with longjmp (Debian's liblua5.4 is built as C), which
// skips C++ destructors. So every Lua call that can raise an error (any
// allocation, any metamethod, the script itself) runs inside lua_pcall of one
// of the static functions below ("protected functions"), and those keep no
// object with a non-trivial destructor on their stack frames: they write
// what they compute into members of the LuaVm. Outside them, this class uses
// only Lua calls that cannot raise (lua_settop, lua_sethook,
// lua_pushcfunction, lua_pcall, lua_gc).
//
// Not thread-safe; one call at a time (the routing thread's).
class LuaVm {
 public:
  static absl::StatusOr<std::unique_ptr<LuaVm>> Create(
      Kind kind, const PluginConfig& config);
  ~LuaVm() {
    if (L_ != nullptr) lua_close(L_);
  }
  LuaVm(const LuaVm&) = delete;
  LuaVm& operator=(const LuaVm&) = delete;

  absl::StatusOr<Verdict> RunFilter(const Message& message);
  // On success, the messages to emit are in emitted().
  absl::Status RunTransform(const Message& message);
  std::vector<EmittedMessage>* emitted() { return &emitted_; }

 private:
  LuaVm(Kind kind, int64_t budget, size_t memory_limit)
      : kind_(kind), budget_(budget), memory_limit_(memory_limit) {}

  absl::Status Init(std::string_view code, const std::string& chunk_name);
  // Runs `f` under lua_pcall with the instruction budget armed. Returns the
  // Lua status; on an error the message is at the top of the stack.
  int Protected(lua_CFunction f);
  // The Status for a failed Protected() call (and clears the stack).
  absl::Status CallError(int status, absl::StatusCode runtime_code);

  static LuaVm* From(lua_State* L) {
    return *static_cast<LuaVm**>(lua_getextraspace(L));
  }
  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize);
  static void BudgetHook(lua_State* L, lua_Debug* ar);
  static int Panic(lua_State* L);

  // Protected functions (see the class comment).
  static int OpenSandbox(lua_State* L);
  static int SafeSetmetatable(lua_State* L);
  static int FindFunction(lua_State* L);
  static int CallFilter(lua_State* L);
  static int CallTransform(lua_State* L);
  static void PushMessage(lua_State* L, const Message& m);
  static void ReadMessage(lua_State* L, int index);
  static void CheckKeys(lua_State* L, int index, bool message,
                        lua_Integer length);
  static void ReadField(lua_State* L, int index, const char* name,
                        std::string_view original,
                        std::optional<std::string>* out);
  static void ReadHeaders(lua_State* L, int index, const Message& input,
                          std::optional<std::vector<HeaderField>>* out);

  // Constant after Create().
  const Kind kind_;
  const int64_t budget_;
  const size_t memory_limit_;
  std::string function_name_;
  int function_ref_ = LUA_NOREF;
  lua_State* L_ = nullptr;

  // Accounting, updated by Alloc and BudgetHook.
  size_t memory_used_ = 0;
  bool budget_exceeded_ = false;

  // Per call: the input, and what the protected functions produced.
  const Message* input_ = nullptr;
  bool keep_ = true;
  std::string reason_;
  std::vector<EmittedMessage> emitted_;
};

// A lua_Alloc that refuses to grow past memory_limit_. Lua never asks it to
// fail a shrink, and it does not.
void* LuaVm::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  LuaVm* vm = static_cast<LuaVm*>(ud);
  // With ptr == NULL, osize is a type tag, not a size.
  const size_t old = ptr == nullptr ? 0 : osize;
  if (nsize == 0) {
    std::free(ptr);
    vm->memory_used_ -= old;
    return nullptr;
  }
  if (nsize > old && vm->memory_used_ - old + nsize > vm->memory_limit_) {
    return nullptr;  // Lua collects garbage and retries, then raises
  }
  void* p = std::realloc(ptr, nsize);
  if (p != nullptr) vm->memory_used_ = vm->memory_used_ - old + nsize;
  return p;
}

// The count hook: the budget is spent. Re-arms itself to fire on every
// instruction from here on, so that a script which catches the error with
// pcall fails again at its next instruction, and raises.
void LuaVm::BudgetHook(lua_State* L, lua_Debug* ar) {
  From(L)->budget_exceeded_ = true;
  lua_sethook(L, &BudgetHook, LUA_MASKCOUNT, 1);
  lua_pushliteral(L, "instruction budget exceeded");
  lua_error(L);
}

int LuaVm::Panic(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "sift: unprotected Lua error (a bug): %s\n",
               msg != nullptr ? msg : "?");
  std::abort();
}

int LuaVm::Protected(lua_CFunction f) {
  budget_exceeded_ = false;
  // Setting the hook resets its count: each call gets the whole budget.
  lua_sethook(L_, &BudgetHook, LUA_MASKCOUNT, static_cast<int>(budget_));
  lua_settop(L_, 0);
  lua_pushcfunction(L_, f);  // a light C function: allocates nothing
  return lua_pcall(L_, 0, 0, 0);
}

absl::Status LuaVm::CallError(int status, absl::StatusCode runtime_code) {
  std::string_view name = KindName(kind_);
  absl::Status s;
  if (budget_exceeded_) {
    s = absl::ResourceExhaustedError(absl::StrCat(
        AV(name), ": instruction budget of ", budget_, " exceeded"));
  } else if (status == LUA_ERRMEM) {
    s = absl::ResourceExhaustedError(absl::StrCat(
        AV(name), ": memory limit of ", memory_limit_, " bytes exceeded"));
  } else {
    const char* msg =
        lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : nullptr;
    s = absl::Status(
        runtime_code,
        absl::StrCat(AV(name), ": ",
                     msg != nullptr ? msg : "error object is not a string"));
  }
  lua_settop(L_, 0);
  // Free at once what the failed call left (a memory bomb's table), so the
  // next message starts with the memory it had.
  if (status == LUA_ERRMEM) lua_gc(L_, LUA_GCCOLLECT);
  return s;
}

// ---- Protected functions ----

int LuaVm::SafeSetmetatable(lua_State* L) {
  // Finalizers run with hooks off, beyond the budget's reach: refuse them.
  // (A __gc added to the metatable later marks nothing, as Lua checks at
  // setmetatable time.)
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) {
      return luaL_error(L, "__gc metamethods are not allowed in scripts");
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));  // the real setmetatable
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// Lua's pattern matcher runs in C, where the instruction budget's count hook
// never fires, and backtracks: "a*a*a*...b" on a long string takes time
// exponential in the repetition items. The sandbox's string.find (unless
// plain), match, gmatch and gsub first bound the worst case: a pattern with
// r repetition items (* + - ?) on an n-byte subject may take about n^(r+1)
// steps; beyond kMaxPatternSteps the call fails with a Lua error (the
// message fails, as any script error). A pattern without repetition is
// linear and always allowed.
constexpr double kMaxPatternSteps = 1e9;

int BoundedPattern(lua_State* L) {
  size_t subject_size = 0;
  luaL_checklstring(L, 1, &subject_size);
  size_t pattern_size = 0;
  const char* p = luaL_checklstring(L, 2, &pattern_size);
  const bool plain = lua_gettop(L) >= 4 && lua_toboolean(L, 4) &&
                     lua_toboolean(L, lua_upvalueindex(2));
  if (!plain) {
    int repetitions = 0;
    bool in_set = false;
    for (size_t i = 0; i < pattern_size; ++i) {
      const char c = p[i];
      if (c == '%') {
        ++i;  // an escaped character or class
        continue;
      }
      if (in_set) {
        if (c == ']') in_set = false;
        continue;
      }
      if (c == '[') {
        in_set = true;
        if (i + 1 < pattern_size && p[i + 1] == '^') ++i;
        if (i + 1 < pattern_size && p[i + 1] == ']') ++i;
        continue;
      }
      if (c == '*' || c == '+' || c == '-' || c == '?') ++repetitions;
    }
    const double n = static_cast<double>(subject_size) + 1;
    double steps = n;
    for (int r = 0; r < repetitions && steps <= kMaxPatternSteps; ++r) {
      steps *= n;
    }
    if (steps > kMaxPatternSteps) {
      return luaL_error(
          L,
          "pattern with %d repetition items on a %d-byte string could take "
          "more than 10^9 steps, which the sandbox refuses (Lua's pattern "
          "matching cannot be interrupted); use fewer *, +, - or ?, a "
          "shorter string, or string.find(s, p, 1, true)",
          repetitions, static_cast<int>(subject_size));
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int LuaVm::OpenSandbox(lua_State* L) {
  static const luaL_Reg kLibs[] = {
      {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
      {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
      {LUA_UTF8LIBNAME, luaopen_utf8},
  };
  for (const luaL_Reg& lib : kLibs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  static const char* const kRemoved[] = {
      "dofile",  "loadfile",       "load",  "loadstring",
      "require", "collectgarbage", "print", "warn"};
  for (const char* name : kRemoved) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  // find's 4th argument (plain) skips patterns; the others always match.
  for (const char* name : {"find", "match", "gmatch", "gsub"}) {
    lua_getfield(L, -1, name);
    lua_pushboolean(L, std::strcmp(name, "find") == 0);
    lua_pushcclosure(L, &BoundedPattern, 2);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);
  // package.loaded (made by luaL_requiref) keeps the libraries; nothing in
  // the sandbox can reach it without require or package.
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, &SafeSetmetatable, 1);
  lua_setglobal(L, "setmetatable");
  return 0;
}

int LuaVm::FindFunction(lua_State* L) {
  LuaVm* vm = From(L);
  const int type = lua_getglobal(L, vm->function_name_.c_str());
  if (type != LUA_TFUNCTION) {
    return luaL_error(L, "the script defines no function \"%s\" (it is %s)",
                      vm->function_name_.c_str(), lua_typename(L, type));
  }
  vm->function_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

void LuaVm::PushMessage(lua_State* L, const Message& m) {
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, m.topic().data(), m.topic().size());
  lua_setfield(L, -2, "topic");
  lua_pushlstring(L, m.reply_to().data(), m.reply_to().size());
  lua_setfield(L, -2, "reply_to");
  lua_pushlstring(L, m.payload().data(), m.payload().size());
  lua_setfield(L, -2, "payload");
  const std::vector<HeaderField>& headers = m.headers();
  lua_createtable(L, static_cast<int>(headers.size()), 0);
  for (size_t i = 0; i < headers.size(); ++i) {
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, headers[i].key.data(), headers[i].key.size());
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, headers[i].value.data(), headers[i].value.size());
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "headers");
}

int LuaVm::CallFilter(lua_State* L) {
  LuaVm* vm = From(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm->function_ref_);
  PushMessage(L, *vm->input_);
  lua_call(L, 1, 2);  // results at 1 and 2
  if (lua_type(L, 1) != LUA_TBOOLEAN) {
    return luaL_error(L,
                      "%s returned %s, want a boolean (true keeps, false "
                      "drops)",
                      vm->function_name_.c_str(), luaL_typename(L, 1));
  }
  vm->keep_ = lua_toboolean(L, 1);
  if (!vm->keep_) {
    const int type = lua_type(L, 2);
    if (type == LUA_TSTRING || type == LUA_TNUMBER) {
      size_t n;
      const char* s = lua_tolstring(L, 2, &n);
      vm->reason_.assign(s, n);
    } else if (type == LUA_TNIL) {
      vm->reason_.assign("lua_filter");
    } else {
      return luaL_error(L, "%s returned a %s reason, want a string",
                        vm->function_name_.c_str(), luaL_typename(L, 2));
    }
  }
  return 0;
}

void LuaVm::ReadField(lua_State* L, int index, const char* name,
                      std::string_view original,
                      std::optional<std::string>* out) {
  const int type = lua_getfield(L, index, name);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (type != LUA_TSTRING && type != LUA_TNUMBER) {
    luaL_error(L, "message field %s is a %s, want a string", name,
               lua_typename(L, type));
  }
  size_t n;
  const char* s = lua_tolstring(L, -1, &n);
  const std::string_view value(s, n);
  if (!SameBytes(value, original)) out->emplace(value);
  lua_pop(L, 1);
}

void LuaVm::ReadHeaders(lua_State* L, int index, const Message& input,
                        std::optional<std::vector<HeaderField>>* out) {
  const int type = lua_getfield(L, index, "headers");
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (type != LUA_TTABLE) {
    luaL_error(L, "message field headers is a %s, want an array of pairs",
               lua_typename(L, type));
  }
  const int headers = lua_gettop(L);
  const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, headers));
  std::vector<HeaderField>& h = out->emplace();
  h.reserve(n);
  for (lua_Integer i = 1; i <= n; ++i) {
    if (lua_rawgeti(L, headers, i) != LUA_TTABLE) {
      luaL_error(L, "headers[%d] is a %s, want a {key, value} pair",
                 static_cast<int>(i), luaL_typename(L, -1));
    }
    const int kt = lua_rawgeti(L, -1, 1);
    const int vt = lua_rawgeti(L, -2, 2);
    if ((kt != LUA_TSTRING && kt != LUA_TNUMBER) ||
        (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
      luaL_error(L, "headers[%d] is not a {key, value} pair of strings",
                 static_cast<int>(i));
    }
    size_t kn, vn;
    const char* k = lua_tolstring(L, -2, &kn);
    const char* v = lua_tolstring(L, -1, &vn);
    if (!IsHeaderKey(std::string_view(k, kn))) {
      luaL_error(L,
                 "headers[%d]: \"%s\" is not a header key (1 to 64 token "
                 "characters)",
                 static_cast<int>(i), k);
    }
    h.push_back({std::string(k, kn), std::string(v, vn)});
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  if (h == input.headers()) out->reset();
}

// Refuses a key the table at `index` may not have: a message table
// (`message`) has only the four message fields; an array of messages only
// [1] to [length]. Without this a typo ({paylod = "x"}) was ignored: the
// input's payload went out, or a top-level table of no known field was an
// empty array and the message was dropped, both silently.
void LuaVm::CheckKeys(lua_State* L, int index, bool message,
                      lua_Integer length) {
  LuaVm* vm = From(L);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pop(L, 1);  // the value; the key stays for lua_next
    if (message && lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char* k = lua_tolstring(L, -1, &n);  // a string: no conversion
      const std::string_view key(k, n);
      if (key == "topic" || key == "reply_to" || key == "payload" ||
          key == "headers") {
        continue;
      }
    }
    if (!message && lua_isinteger(L, -1)) {
      const lua_Integer i = lua_tointeger(L, -1);
      if (i >= 1 && i <= length) continue;
    }
    // luaL_tolstring pushes a copy: the key itself is not converted.
    const char* shown = luaL_tolstring(L, -1, nullptr);
    luaL_error(L,
               message ? "%s returned a message table with key %s: a message "
                         "has only topic, reply_to, payload and headers"
                       : "%s returned a table with key %s: want a message "
                         "(topic, reply_to, payload, headers) or an array of "
                         "messages",
               vm->function_name_.c_str(), shown);
  }
}

void LuaVm::ReadMessage(lua_State* L, int index) {
  LuaVm* vm = From(L);
  const Message& in = *vm->input_;
  CheckKeys(L, index, /*message=*/true, 0);
  EmittedMessage& e = vm->emitted_.emplace_back();
  ReadField(L, index, "topic", in.topic(), &e.topic);
  ReadField(L, index, "reply_to", in.reply_to(), &e.reply_to);
  ReadField(L, index, "payload", in.payload(), &e.payload);
  ReadHeaders(L, index, in, &e.headers);
}

int LuaVm::CallTransform(lua_State* L) {
  LuaVm* vm = From(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm->function_ref_);
  PushMessage(L, *vm->input_);
  lua_call(L, 1, 1);  // the result at 1
  const int type = lua_type(L, 1);
  if (type == LUA_TNIL) return 0;
  if (type != LUA_TTABLE) {
    return luaL_error(L,
                      "%s returned a %s, want nil, a message or an array of "
                      "messages",
                      vm->function_name_.c_str(), luaL_typename(L, 1));
  }
  bool is_message = false;
  for (const char* field : {"topic", "reply_to", "payload", "headers"}) {
    lua_pushstring(L, field);
    is_message = is_message || lua_rawget(L, 1) != LUA_TNIL;
    lua_pop(L, 1);
  }
  if (is_message) {
    ReadMessage(L, 1);
    return 0;
  }
  const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, 1));
  CheckKeys(L, 1, /*message=*/false, n);
  for (lua_Integer i = 1; i <= n; ++i) {
    if (lua_rawgeti(L, 1, i) != LUA_TTABLE) {
      return luaL_error(L, "%s returned an array whose [%d] is a %s",
                        vm->function_name_.c_str(), static_cast<int>(i),
                        luaL_typename(L, -1));
    }
    ReadMessage(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  return 0;
}

// ---- Create and calls ----

absl::StatusOr<std::string> ReadScript(std::string_view name,
                                       const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(AV(name), ": cannot read script \"", path,
                     "\": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat(AV(name), ": error reading script \"", path, "\""));
  }
  return contents.str();
}

absl::StatusOr<std::unique_ptr<LuaVm>> LuaVm::Create(
    Kind kind, const PluginConfig& config) {
  const std::string_view name = KindName(kind);
  auto with_name = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(AV(name), ": ", s.message()));
  };
  if (absl::Status s =
          config.CheckOnly({"script", "source", "function",
                            "instruction_budget", "memory_limit_bytes"});
      !s.ok()) {
    return with_name(s);
  }
  const std::string* script = config.Find("script");
  const std::string* source = config.Find("source");
  if ((script == nullptr) == (source == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        AV(name), ": give exactly one of \"script\" (a file) or \"source\""));
  }
  absl::StatusOr<int64_t> budget =
      config.GetInt("instruction_budget", kDefaultBudget);
  if (!budget.ok()) return with_name(budget.status());
  if (*budget < 1 || *budget > kMaxBudget) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(name), ": instruction_budget ", *budget,
                     " is out of range (1 .. ", kMaxBudget, ")"));
  }
  absl::StatusOr<int64_t> memory =
      config.GetInt("memory_limit_bytes", kDefaultMemoryLimit);
  if (!memory.ok()) return with_name(memory.status());
  if (*memory < kMinMemoryLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(name), ": memory_limit_bytes ", *memory,
                     " is below the minimum ", kMinMemoryLimit));
  }
  std::string code;
  std::string chunk_name;
  if (script != nullptr) {
    absl::StatusOr<std::string> read = ReadScript(name, *script);
    if (!read.ok()) return read.status();
    code = *std::move(read);
    chunk_name = "@" + *script;  // errors read "path:line: ..."
  } else {
    code = *source;
    chunk_name = "=source";  // errors read "source:line: ..."
  }

  std::unique_ptr<LuaVm> vm(
      new LuaVm(kind, *budget, static_cast<size_t>(*memory)));
  vm->function_name_ = config.GetString(
      "function", kind == Kind::kFilter ? "filter" : "transform");
  if (absl::Status s = vm->Init(code, chunk_name); !s.ok()) return s;
  return vm;
}

absl::Status LuaVm::Init(std::string_view code, const std::string& chunk_name) {
  const std::string_view name = KindName(kind_);
  L_ = lua_newstate(&Alloc, this);
  if (L_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat(AV(name), ": cannot create a Lua state"));
  }
  *static_cast<LuaVm**>(lua_getextraspace(L_)) = this;
  lua_atpanic(L_, &Panic);

  int status = Protected(&OpenSandbox);
  if (status != LUA_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(name), ": memory_limit_bytes of ", memory_limit_,
                     " is too small for Lua's libraries"));
  }
  // Text only: a precompiled (binary) chunk can break the VM's invariants.
  status =
      luaL_loadbufferx(L_, code.data(), code.size(), chunk_name.c_str(), "t");
  if (status != LUA_OK) {
    // A syntax error: Lua's message names the chunk and the line.
    return absl::InvalidArgumentError(
        CallError(status, absl::StatusCode::kInvalidArgument).message());
  }
  // Run the top level (it defines the function, maybe globals) under the
  // budget, like a message.
  budget_exceeded_ = false;
  lua_sethook(L_, &BudgetHook, LUA_MASKCOUNT, static_cast<int>(budget_));
  status = lua_pcall(L_, 0, 0, 0);
  if (status != LUA_OK) {
    absl::Status s = CallError(status, absl::StatusCode::kInvalidArgument);
    return absl::InvalidArgumentError(
        absl::StrCat(s.message(), " (running the script's top level)"));
  }
  status = Protected(&FindFunction);
  if (status != LUA_OK) {
    return absl::InvalidArgumentError(
        CallError(status, absl::StatusCode::kInvalidArgument).message());
  }
  return absl::OkStatus();
}

absl::StatusOr<Verdict> LuaVm::RunFilter(const Message& message) {
  input_ = &message;
  const int status = Protected(&CallFilter);
  input_ = nullptr;
  // budget_exceeded_ with LUA_OK: the script caught the budget error with a
  // pcall in tail position. The budget was still overrun.
  if (status != LUA_OK || budget_exceeded_) {
    return CallError(status, absl::StatusCode::kInternal);
  }
  lua_settop(L_, 0);
  return keep_ ? Verdict::Keep() : Verdict::Drop(reason_);
}

absl::Status LuaVm::RunTransform(const Message& message) {
  input_ = &message;
  emitted_.clear();
  const int status = Protected(&CallTransform);
  input_ = nullptr;
  if (status != LUA_OK || budget_exceeded_) {
    emitted_.clear();
    return CallError(status, absl::StatusCode::kInternal);
  }
  lua_settop(L_, 0);
  return absl::OkStatus();
}

class LuaFilter final : public Filter {
 public:
  explicit LuaFilter(std::unique_ptr<LuaVm> vm) : vm_(std::move(vm)) {}
  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    return vm_->RunFilter(message);
  }

 private:
  std::unique_ptr<LuaVm> vm_;
};

class LuaTransform final : public Transform {
 public:
  explicit LuaTransform(std::unique_ptr<LuaVm> vm) : vm_(std::move(vm)) {}
  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    if (absl::Status s = vm_->RunTransform(message); !s.ok()) return s;
    AppendEmitted(std::move(message), vm_->emitted(), out);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<LuaVm> vm_;
};

class LuaFilterFactory final : public FilterFactory {
 public:
  std::string_view name() const override { return "lua_filter"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    absl::StatusOr<std::unique_ptr<LuaVm>> vm =
        LuaVm::Create(Kind::kFilter, config);
    if (!vm.ok()) return vm.status();
    return std::make_unique<LuaFilter>(*std::move(vm));
  }
};

class LuaTransformFactory final : public TransformFactory {
 public:
  std::string_view name() const override { return "lua_transform"; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    absl::StatusOr<std::unique_ptr<LuaVm>> vm =
        LuaVm::Create(Kind::kTransform, config);
    if (!vm.ok()) return vm.status();
    return std::make_unique<LuaTransform>(*std::move(vm));
  }
};

}  // namespace

std::unique_ptr<FilterFactory> MakeLuaFilterFactory() {
  return std::make_unique<LuaFilterFactory>();
}

std::unique_ptr<TransformFactory> MakeLuaTransformFactory() {
  return std::make_unique<LuaTransformFactory>();
}

}  // namespace sift::plugin
