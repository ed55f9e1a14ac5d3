/*
 * Deliberately broken plugins for dynamic_plugin_test, one source built
 * several ways (see BUILD):
 *
 *   -DSIFT_BAD_VERSION   reports ABI version 999.
 *   -DSIFT_NO_FILTER     says it provides a filter but exports no
 *                        sift_plugin_filter.
 *   -DSIFT_NO_VERSION    exports no sift_plugin_abi_version at all.
 *
 * None of these must get past the loader; create() would fail loudly if
 * ever called.
 */
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
  return SIFT_PLUGIN_OK;
}

SIFT_PLUGIN_EXPORT int32_t sift_plugin_create(const sift_plugin_config* config,
                                              void** instance, char* error,
                                              size_t error_len) {
  (void)config;
  (void)instance;
  (void)error;
  (void)error_len;
  return SIFT_PLUGIN_ERROR;
}

#ifndef SIFT_NO_FILTER
SIFT_PLUGIN_EXPORT int32_t sift_plugin_filter(void* instance,
                                              const sift_plugin_call* call,
                                              const sift_plugin_message* message,
                                              sift_plugin_verdict* verdict) {
  (void)instance;
  (void)call;
  (void)message;
  (void)verdict;
  return SIFT_PLUGIN_ERROR;
}
#endif

SIFT_PLUGIN_EXPORT void sift_plugin_destroy(void* instance) { (void)instance; }
