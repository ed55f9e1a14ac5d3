/*
 * An example plugin for sift's C ABI (broker/plugin/sift_plugin.h), built as
 * libsift_example_plugin.so. Plain C99; it depends on nothing but libc.
 *
 * Name "example", two kinds:
 *
 *   filter:    drops messages whose payload contains `keyword` (required,
 *              non-empty); the drop reason is "keyword".
 *   transform: rewrites each message: `uppercase` ("true"/"false", default
 *              "true") upper-cases ASCII letters of the payload; `header`
 *              and `value` (optional) append that header; `split` (one
 *              byte, optional) splits the payload at that byte and emits one
 *              message per piece (empty pieces included).
 *
 * Every setting not listed is refused, naming the key.
 *
 * Thread-safety (as the ABI asks): no global mutable state; an instance's
 * scratch buffers are used by one call at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/plugin/sift_plugin.h"

typedef struct example_instance {
  uint32_t kind;
  /* filter */
  char* keyword;
  size_t keyword_len;
  /* transform */
  int uppercase;
  char* header_key;
  char* header_value;
  int split; /* 1 if split_byte is set */
  char split_byte;
  char* payload_buf; /* scratch: the rewritten payload */
  size_t payload_cap;
  sift_plugin_header* headers_buf; /* scratch: headers plus the added one */
  size_t headers_cap;
} example_instance;

static void set_error(char* error, size_t error_len, const char* a,
                      const char* b) {
  if (error_len == 0) return;
  snprintf(error, error_len, "%s%s", a, b ? b : "");
}

static char* copy_string(const char* s) {
  size_t n = strlen(s);
  char* out = (char*)malloc(n + 1);
  if (out != NULL) memcpy(out, s, n + 1);
  return out;
}

static void free_instance(example_instance* inst) {
  if (inst == NULL) return;
  free(inst->keyword);
  free(inst->header_key);
  free(inst->header_value);
  free(inst->payload_buf);
  free(inst->headers_buf);
  free(inst);
}

/* True if `needle` (non-empty) occurs in `hay`. */
static int contains(const char* hay, size_t hay_len, const char* needle,
                    size_t needle_len) {
  size_t i;
  if (needle_len == 0 || hay_len < needle_len) return 0;
  for (i = 0; i + needle_len <= hay_len; ++i) {
    if (hay[i] == needle[0] && memcmp(hay + i, needle, needle_len) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Replaces *slot by a copy of value; 0 if out of memory. */
static int replace_string(char** slot, const char* value) {
  char* copy = copy_string(value);
  if (copy == NULL) return 0;
  free(*slot);
  *slot = copy;
  return 1;
}

SIFT_PLUGIN_EXPORT uint32_t sift_plugin_abi_version(void) {
  return SIFT_PLUGIN_ABI_VERSION;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_describe(sift_plugin_info* info) {
  if (SIFT_PLUGIN_HAS_FIELD(info, sift_plugin_info, name)) {
    info->name = "example";
  }
  if (SIFT_PLUGIN_HAS_FIELD(info, sift_plugin_info, description)) {
    info->description =
        "keyword filter and upper-case/header/split transform (example)";
  }
  if (SIFT_PLUGIN_HAS_FIELD(info, sift_plugin_info, kinds)) {
    info->kinds = SIFT_PLUGIN_KIND_FILTER | SIFT_PLUGIN_KIND_TRANSFORM;
  }
  return SIFT_PLUGIN_OK;
}

static int32_t configure_filter(example_instance* inst,
                                const sift_plugin_setting* s, char* error,
                                size_t error_len) {
  if (strcmp(s->key, "keyword") == 0) {
    if (s->value[0] == '\0') {
      set_error(error, error_len, "setting \"keyword\" must not be empty",
                NULL);
      return SIFT_PLUGIN_INVALID_CONFIG;
    }
    if (!replace_string(&inst->keyword, s->value)) return SIFT_PLUGIN_NO_MEMORY;
    inst->keyword_len = strlen(inst->keyword);
    return SIFT_PLUGIN_OK;
  }
  set_error(error, error_len, "unknown setting (known: keyword): ", s->key);
  return SIFT_PLUGIN_INVALID_CONFIG;
}

static int32_t configure_transform(example_instance* inst,
                                   const sift_plugin_setting* s, char* error,
                                   size_t error_len) {
  if (strcmp(s->key, "uppercase") == 0) {
    if (strcmp(s->value, "true") == 0) {
      inst->uppercase = 1;
    } else if (strcmp(s->value, "false") == 0) {
      inst->uppercase = 0;
    } else {
      set_error(error, error_len,
                "setting \"uppercase\" must be true or false, not ", s->value);
      return SIFT_PLUGIN_INVALID_CONFIG;
    }
    return SIFT_PLUGIN_OK;
  }
  if (strcmp(s->key, "header") == 0 || strcmp(s->key, "value") == 0) {
    char** slot = s->key[0] == 'h' ? &inst->header_key : &inst->header_value;
    if (!replace_string(slot, s->value)) return SIFT_PLUGIN_NO_MEMORY;
    return SIFT_PLUGIN_OK;
  }
  if (strcmp(s->key, "split") == 0) {
    if (strlen(s->value) != 1) {
      set_error(error, error_len,
                "setting \"split\" must be exactly one byte, not ", s->value);
      return SIFT_PLUGIN_INVALID_CONFIG;
    }
    inst->split = 1;
    inst->split_byte = s->value[0];
    return SIFT_PLUGIN_OK;
  }
  set_error(
      error, error_len,
      "unknown setting (known: uppercase, header, value, split): ", s->key);
  return SIFT_PLUGIN_INVALID_CONFIG;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_create(const sift_plugin_config* config,
                                              void** instance, char* error,
                                              size_t error_len) {
  example_instance* inst;
  size_t i;
  if (config->kind != SIFT_PLUGIN_KIND_FILTER &&
      config->kind != SIFT_PLUGIN_KIND_TRANSFORM) {
    set_error(error, error_len, "unsupported plugin kind", NULL);
    return SIFT_PLUGIN_UNSUPPORTED;
  }
  inst = (example_instance*)calloc(1, sizeof(*inst));
  if (inst == NULL) return SIFT_PLUGIN_NO_MEMORY;
  inst->kind = config->kind;
  inst->uppercase = 1;
  for (i = 0; i < config->setting_count; ++i) {
    const sift_plugin_setting* s = &config->settings[i];
    int32_t rc = inst->kind == SIFT_PLUGIN_KIND_FILTER
                     ? configure_filter(inst, s, error, error_len)
                     : configure_transform(inst, s, error, error_len);
    if (rc != SIFT_PLUGIN_OK) {
      free_instance(inst);
      return rc;
    }
  }
  if (inst->kind == SIFT_PLUGIN_KIND_FILTER && inst->keyword == NULL) {
    set_error(error, error_len, "missing setting \"keyword\"", NULL);
    free_instance(inst);
    return SIFT_PLUGIN_INVALID_CONFIG;
  }
  if ((inst->header_key == NULL) != (inst->header_value == NULL)) {
    set_error(error, error_len, "settings \"header\" and \"value\" go together",
              NULL);
    free_instance(inst);
    return SIFT_PLUGIN_INVALID_CONFIG;
  }
  *instance = inst;
  return SIFT_PLUGIN_OK;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_filter(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, sift_plugin_verdict* verdict) {
  const example_instance* inst = (const example_instance*)instance;
  (void)call;
  if (contains(message->payload.data, message->payload.size, inst->keyword,
               inst->keyword_len)) {
    verdict->verdict = SIFT_PLUGIN_DROP;
    verdict->reason = "keyword";
  } else {
    verdict->verdict = SIFT_PLUGIN_KEEP;
  }
  return SIFT_PLUGIN_OK;
}

/* Grows the instance's scratch buffers to hold `payload` bytes and
 * `headers` entries; 0 if out of memory. */
static int reserve(example_instance* inst, size_t payload, size_t headers) {
  if (payload > inst->payload_cap) {
    size_t cap = payload < 256 ? 256 : payload;
    char* p = (char*)realloc(inst->payload_buf, cap);
    if (p == NULL) return 0;
    inst->payload_buf = p;
    inst->payload_cap = cap;
  }
  if (headers > inst->headers_cap) {
    size_t cap = headers < 8 ? 8 : headers;
    sift_plugin_header* h = (sift_plugin_header*)realloc(
        inst->headers_buf, cap * sizeof(sift_plugin_header));
    if (h == NULL) return 0;
    inst->headers_buf = h;
    inst->headers_cap = cap;
  }
  return 1;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_transform(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, const sift_plugin_emitter* out) {
  example_instance* inst = (example_instance*)instance;
  sift_plugin_message m = *message;
  const char* payload = message->payload.data;
  size_t size = message->payload.size;
  size_t i, start;
  m.struct_size = sizeof(m);

  if (!reserve(inst, size, message->header_count + 1)) {
    snprintf(call->error, call->error_len, "out of memory");
    return SIFT_PLUGIN_NO_MEMORY;
  }
  if (inst->uppercase && size > 0) {
    for (i = 0; i < size; ++i) {
      char c = payload[i];
      inst->payload_buf[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    payload = inst->payload_buf;
  }
  if (inst->header_key != NULL) {
    if (message->header_count > 0) {
      memcpy(inst->headers_buf, message->headers,
             message->header_count * sizeof(sift_plugin_header));
    }
    inst->headers_buf[message->header_count].key.data = inst->header_key;
    inst->headers_buf[message->header_count].key.size =
        strlen(inst->header_key);
    inst->headers_buf[message->header_count].value.data = inst->header_value;
    inst->headers_buf[message->header_count].value.size =
        strlen(inst->header_value);
    m.headers = inst->headers_buf;
    m.header_count = message->header_count + 1;
  }
  m.payload.data = payload;
  m.payload.size = size;
  if (!inst->split) return out->emit(out->host_ctx, &m);

  start = 0;
  for (i = 0; i <= size; ++i) {
    if (i == size || payload[i] == inst->split_byte) {
      int32_t rc;
      m.payload.data = payload == NULL ? NULL : payload + start;
      m.payload.size = i - start;
      rc = out->emit(out->host_ctx, &m);
      if (rc != SIFT_PLUGIN_OK) return rc;
      start = i + 1;
    }
  }
  return SIFT_PLUGIN_OK;
}

SIFT_PLUGIN_EXPORT void sift_plugin_destroy(void* instance) {
  free_instance((example_instance*)instance);
}
