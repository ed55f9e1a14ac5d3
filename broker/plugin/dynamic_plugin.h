// LoadDynamicPlugin: filters and transforms from a shared library built
// against sift's C ABI (broker/plugin/sift_plugin.h), wrapped as the
// FilterFactory / TransformFactory of plugin.h.
//
// Loading dlopen()s the library (RTLD_NOW | RTLD_LOCAL, so every symbol is
// resolved up front and none leaks into other plugins), checks
// sift_plugin_abi_version() before calling anything else, asks
// sift_plugin_describe() what it provides and looks up every function that
// needs. The library stays loaded while anything made from it lives (the
// factories and every Filter / Transform they created share its handle):
// dropping the LoadedPlugin while chains still use its plugins is safe.
//
// Threads: LoadDynamicPlugin and the factories' Create() may be called from
// any thread (one Create at a time per factory, as plugin.h says); the
// Filters and Transforms they make are called on the routing thread, one
// message at a time, which is what the ABI promises the library. The
// wrappers reuse per-instance buffers, so after warm-up a filter call
// allocates only for a drop reason.
//
// Trust: a loaded library runs in siftd's process with its rights; nothing
// here can contain a crash or a stray write. Load only libraries you trust;
// scripts (lua_plugin.h) are the sandboxed alternative.
#ifndef SIFT_BROKER_PLUGIN_DYNAMIC_PLUGIN_H_
#define SIFT_BROKER_PLUGIN_DYNAMIC_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

// A loaded library: what it says it is and the factories for the kinds it
// provides (a null factory for a kind it does not). Both factories are
// named `name`.
struct LoadedPlugin {
  std::string path;
  std::string name;
  std::string description;
  std::unique_ptr<FilterFactory> filter_factory;
  std::unique_ptr<TransformFactory> transform_factory;
};

// Loads the plugin library at `path`. The path is used as given (relative to
// the working directory unless absolute); it is never searched for in the
// system's library path (a path without '/' is taken as "./path").
//
// Errors (all FailedPrecondition, naming the path): the library cannot be
// loaded (dlerror's reason: no such file, not a shared object, an
// unresolved symbol); it exports no sift_plugin_abi_version ("... exports no
// sift_plugin_abi_version: <dlerror>"); it was built for another ABI ("plugin
// X was built for ABI N, siftd speaks 1"); describe() failed or gave an
// invalid name or no kinds; a function its kinds need is missing (naming the
// symbol).
//
// Each factory's Create(config) hands the config's key/value pairs to
// sift_plugin_create as C strings. Errors: InvalidArgument when the library
// refuses the settings (SIFT_PLUGIN_INVALID_CONFIG, with its text) or a
// setting contains a NUL byte; FailedPrecondition for
// SIFT_PLUGIN_UNSUPPORTED; ResourceExhausted for SIFT_PLUGIN_NO_MEMORY;
// Internal for anything else (or a NULL instance).
//
// Per message, a call's return code maps to the Status the plugin API
// returns: SIFT_PLUGIN_BAD_MESSAGE -> InvalidArgument, SIFT_PLUGIN_NO_MEMORY
// -> ResourceExhausted, SIFT_PLUGIN_ERROR and unknown codes -> Internal;
// the message names the plugin and carries its error text. emit() refuses
// (SIFT_PLUGIN_BAD_MESSAGE, and the message fails) a malformed message: NULL
// data with a size, or a header key that is not 1 to 64 token characters
// (header_key.h). A filter's drop
// reason is copied and stays valid until that filter's next call.
absl::StatusOr<LoadedPlugin> LoadDynamicPlugin(std::string_view path);

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_DYNAMIC_PLUGIN_H_
