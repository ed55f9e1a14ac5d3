/*
 * Broken or misbehaving plugins for dynamic_plugin_test, one source built
 * several ways (see BUILD):
 *
 *   -DSIFT_BAD_VERSION   reports ABI version 999.
 *   -DSIFT_NO_FILTER     says it provides a filter but exports no
 *                        sift_plugin_filter.
 *   -DSIFT_NO_VERSION    exports no sift_plugin_abi_version at all.
 *   -DSIFT_MISBEHAVE     loads, but fails or misbehaves on request, by
 *                        payload: filter "error", "bad", "verdict";
 *                        transform "malformed", "partial".
 *
 * The first three must never get past the loader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/plugin/sift_plugin.h"

#ifndef SIFT_NO_VERSION
SIFT_PLUGIN_EXPORT uint32_t sift_plugin_abi_version(void) {
#ifdef SIFT_BAD_VERSION
  return 999;
#else
  return SIFT_PLUGIN_ABI_VERSION;
#endif
}
#endif

SIFT_PLUGIN_EXPORT int32_t sift_plugin_describe(sift_plugin_info* info) {
  info->name = "bad";
  info->kinds = SIFT_PLUGIN_KIND_FILTER;
#ifdef SIFT_MISBEHAVE
  info->kinds |= SIFT_PLUGIN_KIND_TRANSFORM;
#endif
  return SIFT_PLUGIN_OK;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_create(const sift_plugin_config* config,
                                              void** instance, char* error,
                                              size_t error_len) {
  (void)config;
#ifdef SIFT_MISBEHAVE
  (void)error;
  (void)error_len;
  *instance = malloc(1);
  return *instance != NULL ? SIFT_PLUGIN_OK : SIFT_PLUGIN_NO_MEMORY;
#else
  (void)instance;
  snprintf(error, error_len, "never loaded");
  return SIFT_PLUGIN_ERROR;
#endif
}

#ifndef SIFT_NO_FILTER
/* True if the message's payload is `s`. */
static int payload_is(const sift_plugin_message* m, const char* s) {
  return m->payload.size == strlen(s) &&
         memcmp(m->payload.data, s, m->payload.size) == 0;
}
#endif

#ifndef SIFT_NO_FILTER
SIFT_PLUGIN_EXPORT int32_t sift_plugin_filter(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, sift_plugin_verdict* verdict) {
  (void)instance;
  if (payload_is(message, "error")) {
    snprintf(call->error, call->error_len, "asked to fail");
    return SIFT_PLUGIN_ERROR;
  }
  if (payload_is(message, "bad")) {
    snprintf(call->error, call->error_len, "not my format");
    return SIFT_PLUGIN_BAD_MESSAGE;
  }
  if (payload_is(message, "verdict")) verdict->verdict = 7;
  return SIFT_PLUGIN_OK;
}
#endif

#ifdef SIFT_MISBEHAVE
SIFT_PLUGIN_EXPORT int32_t sift_plugin_transform(
    void* instance, const sift_plugin_call* call,
    const sift_plugin_message* message, const sift_plugin_emitter* out) {
  sift_plugin_message m = *message;
  (void)instance;
  if (payload_is(message, "malformed")) {
    m.payload.data = NULL;
    m.payload.size = 5;
    out->emit(out->host_ctx, &m); /* ignores the refusal */
    return SIFT_PLUGIN_OK;
  }
  if (payload_is(message, "partial")) {
    out->emit(out->host_ctx, &m);
    return SIFT_PLUGIN_NO_MEMORY; /* no text: the host names the code */
  }
  (void)call;
  return out->emit(out->host_ctx, &m);
}
#endif

SIFT_PLUGIN_EXPORT void sift_plugin_destroy(void* instance) { free(instance); }
