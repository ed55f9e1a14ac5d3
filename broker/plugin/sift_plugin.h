/*
 * sift's plugin ABI: filters and transforms built outside the broker, as
 * shared libraries that siftd loads with dlopen. Plain C (C99 and C++): no
 * C++ or abseil type crosses the library boundary, so a plugin may be built
 * with any compiler, standard library or language that can export C symbols.
 *
 * A library exports the functions declared at the end of this file:
 *
 *   sift_plugin_abi_version()  -> SIFT_PLUGIN_ABI_VERSION it was built for.
 *                                 siftd checks it first and refuses a library
 *                                 built for another version without calling
 *                                 anything else in it.
 *   sift_plugin_describe(info) -> its name and the kinds it provides
 *                                 (filter, transform or both).
 *   sift_plugin_create(...)    -> a new instance from key/value settings.
 *   sift_plugin_filter(...)    -> keep or drop one message    (kind FILTER).
 *   sift_plugin_transform(...) -> emit 0..n messages for one  (kind TRANSFORM).
 *   sift_plugin_destroy(inst)  -> frees an instance.
 *
 * sift_plugin_filter is required when describe() lists SIFT_PLUGIN_KIND_FILTER,
 * sift_plugin_transform when it lists SIFT_PLUGIN_KIND_TRANSFORM; the others
 * always. A missing symbol refuses the library at load time.
 *
 * Versioning. SIFT_PLUGIN_ABI_VERSION changes only for incompatible changes
 * (a function's signature, a field's meaning or place). Compatible growth
 * happens by appending fields to the structs below, each of which starts with
 * `uint32_t struct_size`: whoever fills a struct sets struct_size to the
 * sizeof() it was compiled with, and whoever reads it reads only the fields
 * that fit (SIFT_PLUGIN_HAS_FIELD); fields never move or change meaning. A
 * struct the host hands the plugin to fill (sift_plugin_info,
 * sift_plugin_verdict) comes zeroed with the host's struct_size, and the
 * plugin writes only the fields that fit in it.
 *
 * Memory ownership. Everything the host passes in (settings, messages, the
 * call context) is borrowed for the duration of the call: copy what you keep.
 * Everything a plugin hands out (info strings, verdict reasons, emitted
 * messages, error text) stays the plugin's: the host copies it, by the time
 * the call that received it returns (emit() copies before returning).
 * Instances are allocated by the plugin in create() and freed in destroy();
 * the host never frees plugin memory and the plugin never frees host memory.
 * Byte strings (sift_plugin_bytes) are NOT NUL-terminated and may contain
 * any bytes; `data` may be NULL when `size` is 0.
 *
 * Threads. abi_version() and describe() may be called from any thread, more
 * than once. create() may be called from any thread (siftd loads its config
 * off the routing thread), possibly while another instance of the same
 * library is processing a message: keep no unsynchronized mutable global
 * state. filter() and transform() are called on the broker's routing thread
 * only, one call at a time per instance, so an instance may keep state
 * between messages without locks. destroy() is called once per instance,
 * from any thread, never during a call on that instance. The library stays
 * loaded while any of its instances lives.
 *
 * Rules for calls. A call should take microseconds: do not block, sleep or
 * do I/O on the routing thread. Do not let a C++ exception or a longjmp
 * escape a call. A plugin runs inside siftd's process with its rights: a
 * crash or a stray write takes the broker down. Load only libraries you trust
 * (the script plugins, lua_filter and lua_transform, are the sandboxed
 * alternative).
 *
 * Stability: everything in this file is stable for ABI version 1, except
 * what is labelled UNSTABLE.
 */
#ifndef SIFT_BROKER_PLUGIN_SIFT_PLUGIN_H_
#define SIFT_BROKER_PLUGIN_SIFT_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define SIFT_PLUGIN_ABI_VERSION 1

/* Marks the functions a plugin exports (visible even when the library is
 * built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define SIFT_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SIFT_PLUGIN_EXPORT
#endif

/* True when the struct at `ptr` (whose struct_size says how much of it its
 * writer knew) contains `field` of `type`. */
#define SIFT_PLUGIN_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))

/* Return codes, of every function that returns int32_t below and of the
 * host's emit() callback. Values are fixed; new codes may be added (a host
 * treats an unknown code as SIFT_PLUGIN_ERROR). */
enum sift_plugin_rc {
  /* Success. */
  SIFT_PLUGIN_OK = 0,
  /* The call failed for a reason the plugin describes in the error buffer
   * (a bug, a state it cannot handle). Per message: the message fails
   * (siftd dead-letters it and counts an error; other messages go on). */
  SIFT_PLUGIN_ERROR = 1,
  /* create() only: the settings are wrong (unknown key, bad value, missing
   * key). The error buffer names the key. siftd refuses the config. */
  SIFT_PLUGIN_INVALID_CONFIG = 2,
  /* Per message: this message cannot be handled (e.g. its payload is not
   * the format the plugin expects). The message fails, as for
   * SIFT_PLUGIN_ERROR, but the fault is the message's, not the plugin's.
   * From emit(): the emitted message was malformed (NULL data with a
   * non-zero size, a struct_size too small, a header key that is not 1 to
   * 64 token characters); stop and return it. */
  SIFT_PLUGIN_BAD_MESSAGE = 3,
  /* Out of memory (or of another resource). The call failed; the instance
   * is still usable. */
  SIFT_PLUGIN_NO_MEMORY = 4,
  /* create(): asked for a kind the library does not provide. */
  SIFT_PLUGIN_UNSUPPORTED = 5
};

/* Plugin kinds, as bit flags in sift_plugin_info.kinds and as the single
 * value in sift_plugin_config.kind. */
enum sift_plugin_kind {
  SIFT_PLUGIN_KIND_FILTER = 1,
  SIFT_PLUGIN_KIND_TRANSFORM = 2
};

/* A filter's decision, in sift_plugin_verdict.verdict. */
enum sift_plugin_verdict_value { SIFT_PLUGIN_KEEP = 0, SIFT_PLUGIN_DROP = 1 };

/* A borrowed byte string: `size` bytes at `data`, not NUL-terminated. */
typedef struct sift_plugin_bytes {
  const char* data;
  size_t size;
} sift_plugin_bytes;

/* One header. Keys are tokens (docs/protocol.md section 8.1); values any
 * bytes. A message may carry the same key more than once, in order. */
typedef struct sift_plugin_header {
  sift_plugin_bytes key;
  sift_plugin_bytes value;
} sift_plugin_header;

/* A message, in (filter, transform) or out (emit). reply_to.size == 0 means
 * no reply subject. */
typedef struct sift_plugin_message {
  uint32_t struct_size; /* sizeof(sift_plugin_message) of its writer */
  sift_plugin_bytes topic;
  sift_plugin_bytes reply_to;
  sift_plugin_bytes payload;
  const sift_plugin_header* headers; /* header_count entries (NULL if 0) */
  size_t header_count;
} sift_plugin_message;

/* What the plugin knows about a call besides the message, and where it
 * writes an error. */
typedef struct sift_plugin_call {
  uint32_t struct_size;
  /* The routing loop's clock for this message, nanoseconds since the Unix
   * epoch. */
  int64_t now_unix_nanos;
  /* Per-subscription chains only (size 0 / 0 on a route chain): the
   * subscriber's client id and the subscription's sid. */
  sift_plugin_bytes client_id;
  uint64_t sid;
  /* On a non-OK return, the plugin may write a NUL-terminated reason here
   * (at most error_len bytes including the NUL; longer text is cut).
   * Starts as the empty string. */
  char* error;
  size_t error_len;
} sift_plugin_call;

/* Filled by sift_plugin_describe (the host zeroes it and sets struct_size).
 * The strings are static: valid while the library is loaded. */
typedef struct sift_plugin_info {
  uint32_t struct_size;
  /* The plugin's name, used in siftd's config and logs: [a-z0-9_]+,
   * at most 64 bytes. */
  const char* name;
  /* One line for humans; may be NULL. */
  const char* description;
  /* SIFT_PLUGIN_KIND_* flags: the kinds the library provides (non-zero). */
  uint32_t kinds;
} sift_plugin_info;

/* One setting: NUL-terminated strings (the host refuses settings that
 * contain a NUL byte before calling create()). */
typedef struct sift_plugin_setting {
  const char* key;
  const char* value;
} sift_plugin_setting;

/* What create() is given. Keys may repeat (in config order); a plugin must
 * refuse keys it does not know (SIFT_PLUGIN_INVALID_CONFIG naming the key),
 * so that a typo fails at load time, not silently. */
typedef struct sift_plugin_config {
  uint32_t struct_size;
  /* The kind to create: exactly one SIFT_PLUGIN_KIND_* value. */
  uint32_t kind;
  const sift_plugin_setting* settings; /* setting_count entries */
  size_t setting_count;
} sift_plugin_config;

/* A filter's output (the host zeroes it, sets struct_size; verdict starts
 * as SIFT_PLUGIN_KEEP). */
typedef struct sift_plugin_verdict {
  uint32_t struct_size;
  /* SIFT_PLUGIN_KEEP or SIFT_PLUGIN_DROP; any other value fails the call. */
  int32_t verdict;
  /* Why it was dropped: a short NUL-terminated string (logs, stats), or
   * NULL. Must stay valid until the call returns; the host copies it. */
  const char* reason;
} sift_plugin_verdict;

/* Where a transform puts what it emits. emit() copies `message` (and all it
 * points to) before it returns, so the plugin may reuse or free its buffers
 * right after; passing back the input message, or fields of it, is allowed
 * (the host then keeps the original bytes without a copy). emit() returns
 * SIFT_PLUGIN_OK, SIFT_PLUGIN_BAD_MESSAGE (malformed message) or
 * SIFT_PLUGIN_NO_MEMORY; on an error the plugin should stop and return that
 * code (the host fails the message either way). Valid during the
 * transform() call only. */
typedef struct sift_plugin_emitter {
  uint32_t struct_size;
  void* host_ctx;
  int32_t (*emit)(void* host_ctx, const sift_plugin_message* message);
} sift_plugin_emitter;

/* ---- Functions a plugin library exports ---- */

/* Returns SIFT_PLUGIN_ABI_VERSION as the library saw it when built. */
SIFT_PLUGIN_EXPORT uint32_t sift_plugin_abi_version(void);

/* Fills *info (name, kinds, description). Returns SIFT_PLUGIN_OK, or
 * SIFT_PLUGIN_ERROR (the library refuses to be loaded). */
SIFT_PLUGIN_EXPORT int32_t sift_plugin_describe(sift_plugin_info* info);

/* Makes an instance of config->kind from config's settings and stores it in
 * *instance (an opaque pointer the host passes back; must not be NULL on
 * success). Returns SIFT_PLUGIN_OK; SIFT_PLUGIN_INVALID_CONFIG (settings
 * wrong; write why, naming the key, to `error`); SIFT_PLUGIN_UNSUPPORTED
 * (kind not provided); SIFT_PLUGIN_NO_MEMORY; SIFT_PLUGIN_ERROR. On an error
 * *instance is ignored and destroy() is not called. `error` holds error_len
 * bytes (at least 1), starts as "", and must be NUL-terminated on return. */
SIFT_PLUGIN_EXPORT int32_t sift_plugin_create(const sift_plugin_config* config,
                                              void** instance, char* error,
                                              size_t error_len);

/* Keeps or drops `message`: writes verdict->verdict (and optionally
 * verdict->reason). Returns SIFT_PLUGIN_OK, or an error code (with text in
 * call->error) that fails this message: SIFT_PLUGIN_BAD_MESSAGE,
 * SIFT_PLUGIN_NO_MEMORY, SIFT_PLUGIN_ERROR. */
SIFT_PLUGIN_EXPORT int32_t sift_plugin_filter(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, sift_plugin_verdict* verdict);

/* Rewrites `message`, emitting what replaces it through out->emit: the
 * rewritten message once, nothing (drops it), or several messages (splits
 * it). Returns SIFT_PLUGIN_OK, or an error code as for sift_plugin_filter;
 * on an error whatever was emitted is discarded. */
SIFT_PLUGIN_EXPORT int32_t sift_plugin_transform(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, const sift_plugin_emitter* out);

/* Frees an instance made by sift_plugin_create. */
SIFT_PLUGIN_EXPORT void sift_plugin_destroy(void* instance);

/* The same functions as pointer types, for hosts that look them up with
 * dlsym. */
typedef uint32_t (*sift_plugin_abi_version_fn)(void);
typedef int32_t (*sift_plugin_describe_fn)(sift_plugin_info*);
typedef int32_t (*sift_plugin_create_fn)(const sift_plugin_config*, void**,
                                         char*, size_t);
typedef int32_t (*sift_plugin_filter_fn)(void*, const sift_plugin_call*,
                                         const sift_plugin_message*,
                                         sift_plugin_verdict*);
typedef int32_t (*sift_plugin_transform_fn)(void*, const sift_plugin_call*,
                                            const sift_plugin_message*,
                                            const sift_plugin_emitter*);
typedef void (*sift_plugin_destroy_fn)(void*);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SIFT_BROKER_PLUGIN_SIFT_PLUGIN_H_ */
