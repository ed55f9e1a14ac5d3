// Script plugins: filters and transforms written in Lua 5.4, run in a
// sandbox with an instruction budget and a memory limit per plugin.
//
// Why Lua 5.4 and not LuaJIT: the budget is a count hook (lua_sethook with
// LUA_MASKCOUNT) that raises an error after N VM instructions. LuaJIT's count
// hooks do not fire inside JIT-compiled traces, so a runaway loop that gets
// compiled (`while true do end` is compiled almost at once) cannot be stopped
// reliably; PUC Lua 5.4 interprets every instruction and its count hook
// always fires. We trade LuaJIT's speed for a bound we can promise.
//
// Factories: "lua_filter" (MakeLuaFilterFactory) and "lua_transform"
// (MakeLuaTransformFactory). Settings:
//   script              path of a .lua file, read at Create    } exactly
//   source              the Lua code itself (inline)           } one
//   function            the global function to call per message (default
//                       "filter" / "transform"); must exist after the
//                       script's top level has run
//   instruction_budget  VM instructions per message (default 1,000,000;
//                       1 .. 1,000,000,000); the script's top level gets
//                       the same budget at Create
//   memory_limit_bytes  bytes the plugin's Lua state may hold, its
//                       libraries and globals included (default 16 MiB;
//                       at least 256 KiB); an allocation beyond it fails
//                       with a Lua memory error
//
// The function is called as f(msg), where msg is a fresh table:
//   msg.topic, msg.reply_to ("" if none), msg.payload   strings
//   msg.headers  an array of {key, value} pairs in message order, e.g.
//                { {"content-type", "json"}, {"x", "1"}, {"x", "2"} }
//                (an array, not a map, so repeated keys and order survive)
// A filter returns true (keep) or false (drop), optionally with a reason
// string as second value (default "lua_filter"; the Verdict's reason stays
// valid until the plugin's next call); anything but a boolean first is an
// error (a forgotten `return` must not drop everything silently). A transform returns nil (drop the message), one message table,
// or an array of message tables (split). A table with a topic, reply_to,
// payload or headers field is one message; any other table is an array of
// them ({} emits nothing). A field a message table lacks is taken from the
// input message, so `return {payload = "x"}` and `msg.payload = "x"; return
// msg` are the same. Fields must be strings (numbers are converted); headers
// an array of {key, value} pairs whose keys are valid header keys
// (header_key.h). Parts equal to the input's keep the input's bytes.
//
// Sandbox: the state opens only base (without dofile, loadfile, load,
// loadstring, require, collectgarbage, print, warn), string (without
// string.dump), table, math and utf8. No io, os, package, debug or coroutine
// (coroutines each carry their own instruction count, so a loop resuming
// fresh coroutines could run far past the budget). Globals persist between
// calls of one plugin (a script may keep counters); each plugin instance has
// its own lua_State.
//
// Errors: Create refuses a missing or unreadable script (FailedPrecondition),
// a syntax error (InvalidArgument with Lua's message, which carries the line:
// "lua_filter: rules.lua:3: '=' expected near 'x'"), a top-level runtime
// error or a missing function (InvalidArgument), bad settings
// (InvalidArgument naming the key). Per message, Apply returns
// ResourceExhausted for "lua_filter: instruction budget of N exceeded" or
// "...: memory limit of N bytes exceeded", Internal for a runtime error or a
// wrong return value (with Lua's message and line). After any of these the
// state stays usable: the next message runs normally (globals the failed
// call changed before failing stay changed).
//
// Limits not enforced: time spent inside one C library call (a pathological
// string.find pattern on a long payload backtracks without executing VM
// instructions) is bounded by the memory limit and Lua's pattern recursion
// limit, not by the budget.
//
// Threads: factories may be used from any thread (one Create at a time);
// each Filter / Transform is called on the routing thread, one message at a
// time, as plugin.h says. Cost: a small filter costs about a microsecond per
// message (//broker/plugin:script_bench); the message table is built anew
// for each call.
#ifndef SIFT_BROKER_PLUGIN_LUA_PLUGIN_H_
#define SIFT_BROKER_PLUGIN_LUA_PLUGIN_H_

#include <memory>

#include "broker/plugin/plugin.h"

namespace sift::plugin {

std::unique_ptr<FilterFactory> MakeLuaFilterFactory();
std::unique_ptr<TransformFactory> MakeLuaTransformFactory();

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_LUA_PLUGIN_H_
