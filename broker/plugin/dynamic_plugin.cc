#include "broker/plugin/dynamic_plugin.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/emitted.h"
#include "broker/plugin/header_key.h"
#include "broker/plugin/sift_plugin.h"

namespace sift::plugin {
namespace {

// Room for a plugin's error text (create() and per-message calls).
constexpr size_t kErrorBufferSize = 512;

// The dlopen handle and the functions found in it. Shared (shared_ptr) by
// the factories and every instance made from them; the last owner closes the
// library, after every instance has been destroyed. Immutable once made.
struct Library {
  Library(void* handle, std::string path)
      : handle(handle), path(std::move(path)) {}
  ~Library() { dlclose(handle); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  void* const handle;
  const std::string path;
  // Set by LoadDynamicPlugin before the Library is shared.
  std::string name;
  std::string description;
  uint32_t kinds = 0;
  sift_plugin_create_fn create = nullptr;
  sift_plugin_filter_fn filter = nullptr;        // null unless kinds has FILTER
  sift_plugin_transform_fn transform = nullptr;  // ... TRANSFORM
  sift_plugin_destroy_fn destroy = nullptr;
};

std::string_view View(sift_plugin_bytes b) {
  return b.size == 0 ? std::string_view() : std::string_view(b.data, b.size);
}

sift_plugin_bytes Bytes(std::string_view s) { return {s.data(), s.size()}; }

// Looks up `symbol`; FailedPrecondition naming it (and dlerror) if absent.
template <typename Fn>
absl::StatusOr<Fn> Lookup(const Library& lib, const char* symbol,
                          std::string_view why) {
  dlerror();  // clear
  void* p = dlsym(lib.handle, symbol);
  if (p == nullptr) {
    const char* err = dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("plugin ", lib.path, " exports no ", symbol, AV(why), ": ",
                     err != nullptr ? err : "symbol is NULL"));
  }
  return reinterpret_cast<Fn>(p);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

// The error text a plugin wrote to `buffer` (kErrorBufferSize bytes), or a
// stand-in naming the code.
std::string ErrorText(char* buffer, int32_t rc) {
  buffer[kErrorBufferSize - 1] = '\0';
  if (buffer[0] != '\0') return buffer;
  return absl::StrCat("failed (code ", rc, ")");
}

// The Status for a per-message return code other than SIFT_PLUGIN_OK.
absl::Status CallError(const Library& lib, int32_t rc, char* error) {
  std::string text = absl::StrCat(lib.name, ": ", ErrorText(error, rc));
  switch (rc) {
    case SIFT_PLUGIN_BAD_MESSAGE:
      return absl::InvalidArgumentError(text);
    case SIFT_PLUGIN_NO_MEMORY:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::InternalError(text);
  }
}

// Per-instance state shared by the filter and transform wrappers: the
// instance, its library, and buffers reused from call to call.
class Instance {
 public:
  Instance(std::shared_ptr<const Library> lib, void* instance)
      : lib_(std::move(lib)), instance_(instance) {}
  ~Instance() { lib_->destroy(instance_); }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

 protected:
  // Points in_ (and headers_) at `message`'s parts and call_ at a cleared
  // error buffer and `context`.
  void Prepare(const Message& message, const CallContext& context) {
    headers_.clear();
    for (const HeaderField& h : message.headers()) {
      headers_.push_back({Bytes(h.key), Bytes(h.value)});
    }
    in_ = {};
    in_.struct_size = sizeof(in_);
    in_.topic = Bytes(message.topic());
    in_.reply_to = Bytes(message.reply_to());
    in_.payload = Bytes(message.payload());
    in_.headers = headers_.empty() ? nullptr : headers_.data();
    in_.header_count = headers_.size();

    error_[0] = '\0';
    call_ = {};
    call_.struct_size = sizeof(call_);
    call_.now_unix_nanos = absl::ToUnixNanos(context.now);
    call_.client_id = Bytes(context.client_id);
    call_.sid = context.sid;
    call_.error = error_;
    call_.error_len = sizeof(error_);
  }

  const std::shared_ptr<const Library> lib_;
  void* const instance_;
  std::vector<sift_plugin_header> headers_;
  sift_plugin_message in_;
  sift_plugin_call call_;
  char error_[kErrorBufferSize];
};

class DynamicFilter final : public Filter, private Instance {
 public:
  using Instance::Instance;

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    Prepare(message, context);
    sift_plugin_verdict verdict = {};
    verdict.struct_size = sizeof(verdict);
    verdict.verdict = SIFT_PLUGIN_KEEP;
    const int32_t rc = lib_->filter(instance_, &call_, &in_, &verdict);
    if (rc != SIFT_PLUGIN_OK) return CallError(*lib_, rc, error_);
    switch (verdict.verdict) {
      case SIFT_PLUGIN_KEEP:
        return Verdict::Keep();
      case SIFT_PLUGIN_DROP:
        // The reason is the plugin's until the call returns: keep a copy
        // that lives until the next call.
        reason_.assign(verdict.reason != nullptr ? verdict.reason
                                                 : lib_->name.c_str());
        return Verdict::Drop(reason_);
      default:
        return absl::InternalError(absl::StrCat(
            lib_->name, ": returned an unknown verdict ", verdict.verdict));
    }
  }

 private:
  std::string reason_;
};

class DynamicTransform final : public Transform, private Instance {
 public:
  using Instance::Instance;

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    Prepare(message, context);
    emitted_.clear();
    EmitContext ctx{&message, &in_, &emitted_, SIFT_PLUGIN_OK};
    sift_plugin_emitter emitter = {};
    emitter.struct_size = sizeof(emitter);
    emitter.host_ctx = &ctx;
    emitter.emit = &EmitThunk;
    int32_t rc = lib_->transform(instance_, &call_, &in_, &emitter);
    if (ctx.emit_rc != SIFT_PLUGIN_OK) {
      // A refused emit() fails the message even if the plugin went on.
      if (rc == SIFT_PLUGIN_OK) rc = ctx.emit_rc;
      if (error_[0] == '\0') {
        std::snprintf(error_, sizeof(error_),
                      "emitted a malformed message (NULL bytes with a size, "
                      "or an invalid header key)");
      }
    }
    if (rc != SIFT_PLUGIN_OK) {
      emitted_.clear();
      return CallError(*lib_, rc, error_);
    }
    AppendEmitted(std::move(message), &emitted_, out);
    return absl::OkStatus();
  }

 private:
  struct EmitContext {
    const Message* input;
    const sift_plugin_message* input_c;
    std::vector<EmittedMessage>* emitted;
    int32_t emit_rc;  // the first error emit() returned
  };

  static bool Valid(sift_plugin_bytes b) {
    return b.data != nullptr || b.size == 0;
  }

  // host->emit: copies what differs from the input into an EmittedMessage.
  static int32_t Emit(EmitContext* ctx, const sift_plugin_message* m) {
    if (m == nullptr || m->struct_size < sizeof(sift_plugin_message) ||
        !Valid(m->topic) || !Valid(m->reply_to) || !Valid(m->payload) ||
        (m->headers == nullptr && m->header_count > 0)) {
      return SIFT_PLUGIN_BAD_MESSAGE;
    }
    for (size_t i = 0; i < m->header_count; ++i) {
      if (!Valid(m->headers[i].key) || !Valid(m->headers[i].value)) {
        return SIFT_PLUGIN_BAD_MESSAGE;
      }
    }
    const Message& in = *ctx->input;
    EmittedMessage& e = ctx->emitted->emplace_back();
    if (!SameBytes(View(m->topic), in.topic())) e.topic.emplace(View(m->topic));
    if (!SameBytes(View(m->reply_to), in.reply_to())) {
      e.reply_to.emplace(View(m->reply_to));
    }
    if (!SameBytes(View(m->payload), in.payload())) {
      e.payload.emplace(View(m->payload));
    }
    if (m->headers != ctx->input_c->headers ||
        m->header_count != ctx->input_c->header_count) {
      std::vector<HeaderField>& h = e.headers.emplace();
      h.reserve(m->header_count);
      for (size_t i = 0; i < m->header_count; ++i) {
        if (!IsHeaderKey(View(m->headers[i].key))) {
          ctx->emitted->pop_back();
          return SIFT_PLUGIN_BAD_MESSAGE;
        }
        h.push_back({std::string(View(m->headers[i].key)),
                     std::string(View(m->headers[i].value))});
      }
    }
    return SIFT_PLUGIN_OK;
  }

  // C entry point: no exception may cross into the plugin's frames.
  static int32_t EmitThunk(void* host_ctx, const sift_plugin_message* m) {
    auto* ctx = static_cast<EmitContext*>(host_ctx);
    int32_t rc;
    try {
      rc = Emit(ctx, m);
    } catch (const std::bad_alloc&) {
      rc = SIFT_PLUGIN_NO_MEMORY;
    }
    if (rc != SIFT_PLUGIN_OK && ctx->emit_rc == SIFT_PLUGIN_OK) {
      ctx->emit_rc = rc;
    }
    return rc;
  }

  std::vector<EmittedMessage> emitted_;
};

// Calls sift_plugin_create for `kind` with `config`'s settings.
absl::StatusOr<void*> CreateInstance(const Library& lib, uint32_t kind,
                                     const PluginConfig& config) {
  std::vector<sift_plugin_setting> settings;
  settings.reserve(config.entries().size());
  for (const auto& [key, value] : config.entries()) {
    if (key.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          lib.name, ": setting \"", key, "\" contains a NUL byte"));
    }
    settings.push_back({key.c_str(), value.c_str()});
  }
  sift_plugin_config c = {};
  c.struct_size = sizeof(c);
  c.kind = kind;
  c.settings = settings.data();
  c.setting_count = settings.size();
  char error[kErrorBufferSize];
  error[0] = '\0';
  void* instance = nullptr;
  const int32_t rc = lib.create(&c, &instance, error, sizeof(error));
  if (rc == SIFT_PLUGIN_OK && instance != nullptr) return instance;
  if (rc == SIFT_PLUGIN_OK) {
    return absl::InternalError(
        absl::StrCat(lib.name, ": sift_plugin_create returned no instance"));
  }
  std::string text = absl::StrCat(lib.name, ": ", ErrorText(error, rc));
  switch (rc) {
    case SIFT_PLUGIN_INVALID_CONFIG:
      return absl::InvalidArgumentError(text);
    case SIFT_PLUGIN_UNSUPPORTED:
      return absl::FailedPreconditionError(text);
    case SIFT_PLUGIN_NO_MEMORY:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::InternalError(text);
  }
}

class DynamicFilterFactory final : public FilterFactory {
 public:
  explicit DynamicFilterFactory(std::shared_ptr<const Library> lib)
      : lib_(std::move(lib)) {}
  std::string_view name() const override { return lib_->name; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    absl::StatusOr<void*> instance =
        CreateInstance(*lib_, SIFT_PLUGIN_KIND_FILTER, config);
    if (!instance.ok()) return instance.status();
    return std::make_unique<DynamicFilter>(lib_, *instance);
  }

 private:
  const std::shared_ptr<const Library> lib_;
};

class DynamicTransformFactory final : public TransformFactory {
 public:
  explicit DynamicTransformFactory(std::shared_ptr<const Library> lib)
      : lib_(std::move(lib)) {}
  std::string_view name() const override { return lib_->name; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    absl::StatusOr<void*> instance =
        CreateInstance(*lib_, SIFT_PLUGIN_KIND_TRANSFORM, config);
    if (!instance.ok()) return instance.status();
    return std::make_unique<DynamicTransform>(lib_, *instance);
  }

 private:
  const std::shared_ptr<const Library> lib_;
};

}  // namespace

absl::StatusOr<LoadedPlugin> LoadDynamicPlugin(std::string_view path_arg) {
  std::string path(path_arg);
  // dlopen searches the library path for a name without '/'; a plugin path
  // never means that.
  if (path.find('/') == std::string::npos) path = "./" + path;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load plugin ", path, ": ",
                     err != nullptr ? err : "dlopen failed"));
  }
  // From here the Library owns the handle (closes it on every error path).
  auto lib = std::make_shared<Library>(handle, path);

  absl::StatusOr<sift_plugin_abi_version_fn> version =
      Lookup<sift_plugin_abi_version_fn>(*lib, "sift_plugin_abi_version",
                                         " (not a sift plugin?)");
  if (!version.ok()) return version.status();
  const uint32_t abi = (*version)();
  if (abi != SIFT_PLUGIN_ABI_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrCat("plugin ", path, " was built for ABI ", abi,
                     ", siftd speaks ", SIFT_PLUGIN_ABI_VERSION));
  }

  absl::StatusOr<sift_plugin_describe_fn> describe =
      Lookup<sift_plugin_describe_fn>(*lib, "sift_plugin_describe", "");
  if (!describe.ok()) return describe.status();
  sift_plugin_info info = {};
  info.struct_size = sizeof(info);
  if (const int32_t rc = (*describe)(&info); rc != SIFT_PLUGIN_OK) {
    return absl::FailedPreconditionError(absl::StrCat(
        "plugin ", path, ": sift_plugin_describe failed (code ", rc, ")"));
  }
  if (info.name == nullptr || !ValidName(info.name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "plugin ", path, " describes itself with an invalid name \"",
        info.name != nullptr ? info.name : "(null)",
        "\" (want [a-z0-9_]+, at most 64 bytes)"));
  }
  constexpr uint32_t kAllKinds =
      SIFT_PLUGIN_KIND_FILTER | SIFT_PLUGIN_KIND_TRANSFORM;
  if (info.kinds == 0 || (info.kinds & ~kAllKinds) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("plugin ", path, " describes unknown kinds ", info.kinds,
                     " (want filter = 1, transform = 2, or both)"));
  }
  lib->name = info.name;
  lib->description = info.description != nullptr ? info.description : "";
  lib->kinds = info.kinds;

  absl::StatusOr<sift_plugin_create_fn> create =
      Lookup<sift_plugin_create_fn>(*lib, "sift_plugin_create", "");
  if (!create.ok()) return create.status();
  lib->create = *create;
  absl::StatusOr<sift_plugin_destroy_fn> destroy =
      Lookup<sift_plugin_destroy_fn>(*lib, "sift_plugin_destroy", "");
  if (!destroy.ok()) return destroy.status();
  lib->destroy = *destroy;
  if (info.kinds & SIFT_PLUGIN_KIND_FILTER) {
    absl::StatusOr<sift_plugin_filter_fn> filter =
        Lookup<sift_plugin_filter_fn>(*lib, "sift_plugin_filter",
                                      " (it describes itself as a filter)");
    if (!filter.ok()) return filter.status();
    lib->filter = *filter;
  }
  if (info.kinds & SIFT_PLUGIN_KIND_TRANSFORM) {
    absl::StatusOr<sift_plugin_transform_fn> transform =
        Lookup<sift_plugin_transform_fn>(
            *lib, "sift_plugin_transform",
            " (it describes itself as a transform)");
    if (!transform.ok()) return transform.status();
    lib->transform = *transform;
  }

  LoadedPlugin loaded;
  loaded.path = path;
  loaded.name = lib->name;
  loaded.description = lib->description;
  std::shared_ptr<const Library> shared = std::move(lib);
  if (shared->filter != nullptr) {
    loaded.filter_factory = std::make_unique<DynamicFilterFactory>(shared);
  }
  if (shared->transform != nullptr) {
    loaded.transform_factory =
        std::make_unique<DynamicTransformFactory>(shared);
  }
  return loaded;
}

}  // namespace sift::plugin
