// C helpers of package wasmtimec (implemented in shim.c). They keep whole
// sequences of wasmtime C calls on the C side so that a run costs one cgo
// call and no Go pointer is ever stored by C.
#ifndef WASILET_WASMTIMEC_SHIM_H
#define WASILET_WASMTIMEC_SHIM_H

#include "decls.h"

// A cancellation flag shared by the Go goroutine that watches a context and
// the epoch-deadline callback of one store. Allocated in C memory.
typedef struct wasmtimec_cancel wasmtimec_cancel_t;
wasmtimec_cancel_t *wasmtimec_cancel_new(void);
void wasmtimec_cancel_set(wasmtimec_cancel_t *c);
bool wasmtimec_cancel_is_set(wasmtimec_cancel_t *c);
void wasmtimec_cancel_free(wasmtimec_cancel_t *c);

// Takes the message of err (a NUL-terminated copy allocated with malloc,
// never NULL) and deletes err.
char *wasmtimec_error_take(wasmtime_error_t *err);

// What one run ended with.
enum {
  WASILET_RUN_RETURNED = 0,    // run returned; exit_code is 0 (ok) or 1 (err)
  WASILET_RUN_EXITED = 1,      // the guest called wasi:cli/exit; exit_code set
  WASILET_RUN_FAILED = 2,      // trap or other error while running; message
  WASILET_RUN_CANCELLED = 3,   // stopped through the cancellation flag
  WASILET_RUN_INSTANTIATE = 4, // instantiation failed; message
  WASILET_RUN_SETUP = 5,       // the host could not set up the store; message
};

typedef struct wasmtimec_run_result {
  int status;
  int exit_code;
  char *message; // malloc'd or NULL; the caller frees it
} wasmtimec_run_result_t;

// Runs the `run` function (run_func: an export index of the component,
// looked up with wasmtimec_lookup_run) of a fresh instance of component in a
// fresh store. wasi is consumed. memory_limit <= 0 means no limit. Every
// handle created here is released before returning.
void wasmtimec_run(wasm_engine_t *engine, const wasmtime_component_t *component,
                 const wasmtime_component_linker_t *linker,
                 const wasmtime_component_export_index_t *run_func,
                 wasi_config_t *wasi, int64_t memory_limit,
                 wasmtimec_cancel_t *cancel, wasmtimec_run_result_t *out);

// Finds the `run` function of the `wasi:cli/run@0.2.x` export of
// component. Returns NULL if there is none. The caller deletes the index.
wasmtime_component_export_index_t *
wasmtimec_lookup_run(const wasmtime_component_t *component);

// Creates a component linker with WASI p2 defined. On failure returns NULL
// and sets *err_msg (malloc'd).
wasmtime_component_linker_t *wasmtimec_linker_new(const wasm_engine_t *engine,
                                                char **err_msg);

#endif
