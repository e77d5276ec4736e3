// C helpers of package wasmtimec; see shim.h.
#include "shim.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct wasmtimec_cancel {
  atomic_int set;
};

wasmtimec_cancel_t *wasmtimec_cancel_new(void) {
  wasmtimec_cancel_t *c = malloc(sizeof *c);
  if (c != NULL)
    atomic_init(&c->set, 0);
  return c;
}

void wasmtimec_cancel_set(wasmtimec_cancel_t *c) { atomic_store(&c->set, 1); }

bool wasmtimec_cancel_is_set(wasmtimec_cancel_t *c) {
  return atomic_load(&c->set) != 0;
}

void wasmtimec_cancel_free(wasmtimec_cancel_t *c) { free(c); }

static char *dup_n(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (out == NULL)
    abort();
  if (n > 0)
    memcpy(out, s, n);
  out[n] = 0;
  return out;
}

char *wasmtimec_error_take(wasmtime_error_t *err) {
  wasm_name_t msg = {0, NULL};
  wasmtime_error_message(err, &msg);
  char *out = dup_n(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(err);
  return out;
}

// Called by wasmtime each time the store's epoch deadline is reached (every
// engine tick: the delta is 1). Cheap unless the run was cancelled.
wasmtime_error_t *
wasmtimec_epoch_callback(wasmtime_context_t *context, void *data,
               uint64_t *epoch_deadline_delta,
               wasmtime_update_deadline_kind_t *update_kind) {
  (void)context;
  if (wasmtimec_cancel_is_set((wasmtimec_cancel_t *)data))
    return wasmtime_error_new("wasilet: guest stopped: run cancelled");
  *epoch_deadline_delta = 1;
  *update_kind = WASILET_UPDATE_DEADLINE_CONTINUE;
  return NULL;
}

static const char run_iface[] = "wasi:cli/run@0.2.0";
static const char run_name[] = "run";

wasmtime_component_export_index_t *
wasmtimec_lookup_run(const wasmtime_component_t *component) {
  wasmtime_component_export_index_t *iface =
      wasmtime_component_get_export_index(component, NULL, run_iface,
                                          sizeof run_iface - 1);
  if (iface == NULL)
    return NULL;
  wasmtime_component_export_index_t *fn = wasmtime_component_get_export_index(
      component, iface, run_name, sizeof run_name - 1);
  wasmtime_component_export_index_delete(iface);
  return fn;
}

wasmtime_component_linker_t *wasmtimec_linker_new(const wasm_engine_t *engine,
                                                char **err_msg) {
  wasmtime_component_linker_t *linker = wasmtime_component_linker_new(engine);
  wasmtime_error_t *err = wasmtime_component_linker_add_wasip2(linker);
  if (err != NULL) {
    *err_msg = wasmtimec_error_take(err);
    wasmtime_component_linker_delete(linker);
    return NULL;
  }
  return linker;
}

// Fills out from a failed call or instantiation.
static void failed(wasmtimec_run_result_t *out, wasmtime_error_t *err,
                   wasmtimec_cancel_t *cancel, int status) {
  int code = 0;
  if (wasmtime_error_exit_status(err, &code)) {
    out->status = WASILET_RUN_EXITED;
    out->exit_code = code;
    wasmtime_error_delete(err);
    return;
  }
  if (cancel != NULL && wasmtimec_cancel_is_set(cancel)) {
    out->status = WASILET_RUN_CANCELLED;
    out->exit_code = 1;
    out->message = wasmtimec_error_take(err);
    return;
  }
  out->status = status;
  out->exit_code = 1;
  out->message = wasmtimec_error_take(err);
}

void wasmtimec_run(wasm_engine_t *engine, const wasmtime_component_t *component,
                 const wasmtime_component_linker_t *linker,
                 const wasmtime_component_export_index_t *run_func,
                 wasi_config_t *wasi, int64_t memory_limit,
                 wasmtimec_cancel_t *cancel, wasmtimec_run_result_t *out) {
  out->status = WASILET_RUN_SETUP;
  out->exit_code = 1;
  out->message = NULL;

  wasmtime_store_t *store = wasmtime_store_new(engine, NULL, NULL);
  wasmtime_context_t *context = wasmtime_store_context(store);
  if (memory_limit > 0)
    wasmtime_store_limiter(store, memory_limit, -1, -1, -1, -1);
  // Check the cancellation flag at every epoch tick, from the first
  // instruction of instantiation on: deadline 0 makes the first epoch check
  // call the callback, which sees a flag set before this point (whose epoch
  // increment may have come before the deadline was set).
  wasmtime_store_epoch_deadline_callback(store, wasmtimec_epoch_callback, cancel, NULL);
  wasmtime_context_set_epoch_deadline(context, 0);

  wasmtime_error_t *err = wasmtime_context_set_wasi(context, wasi); // consumes
  if (err != NULL) {
    out->message = wasmtimec_error_take(err);
    goto done;
  }

  wasmtime_component_instance_t instance;
  err = wasmtime_component_linker_instantiate(linker, context, component,
                                              &instance);
  if (err != NULL) {
    failed(out, err, cancel, WASILET_RUN_INSTANTIATE);
    goto done;
  }

  wasmtime_component_func_t func;
  if (!wasmtime_component_instance_get_func(&instance, context, run_func,
                                            &func)) {
    out->message = dup_n("wasi:cli/run#run is not a function",
                         strlen("wasi:cli/run#run is not a function"));
    goto done;
  }

  wasmtime_component_val_t result;
  memset(&result, 0, sizeof result);
  err = wasmtime_component_func_call(&func, context, NULL, 0, &result, 1);
  if (err != NULL) {
    failed(out, err, cancel, WASILET_RUN_FAILED);
    goto done;
  }
  if (result.kind != WASILET_COMPONENT_RESULT) {
    wasmtime_component_val_delete(&result);
    out->status = WASILET_RUN_FAILED;
    out->message = dup_n("wasi:cli/run#run did not return a result",
                         strlen("wasi:cli/run#run did not return a result"));
    goto done;
  }
  out->status = WASILET_RUN_RETURNED;
  out->exit_code = result.of.result.is_ok ? 0 : 1;
  wasmtime_component_val_delete(&result);
  err = wasmtime_component_func_post_return(&func, context);
  if (err != NULL) // the run itself is over; keep its outcome
    wasmtime_error_delete(err);

done:
  wasmtime_store_delete(store);
}
