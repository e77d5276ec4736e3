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


// ---- typed calls into long-lived instances (instance.c) ----
//
// Component values cross the cgo boundary in one flat little-endian
// encoding, so that a call is one cgo call each way and Go never touches
// the C union: kind (u8, WASILET_COMPONENT_*), then bool: u8; integers and
// char: u64; f32/f64: the f64 bits as u64; string/enum: u32 length + bytes;
// list/tuple: u32 count + values; record: u32 count + (u32 length + name +
// value) each; variant: u32 length + name + u8 has + value; option: u8 has
// + value; result: u8 is_ok + u8 has + value; flags: u32 count + (u32
// length + name) each. Resources are not supported.

typedef struct wasmtimec_buf {
  uint8_t *data; // malloc'd
  size_t len;
} wasmtimec_buf_t;

// A store with one instance of a component, called many times.
typedef struct wasmtimec_instance wasmtimec_instance_t;

// Instantiates component in a new store whose data is store_data (given to
// host functions). wasi is consumed. On failure returns NULL, sets *status
// (WASILET_RUN_INSTANTIATE or WASILET_RUN_SETUP) and *err_msg (malloc'd).
wasmtimec_instance_t *wasmtimec_instance_new(
    wasm_engine_t *engine, const wasmtime_component_t *component,
    const wasmtime_component_linker_t *linker, wasi_config_t *wasi,
    int64_t memory_limit, wasmtimec_cancel_t *cancel, uintptr_t store_data,
    int *status, char **err_msg);
void wasmtimec_instance_delete(wasmtimec_instance_t *inst);

// Calls function fname of the exported instance iface (NULL: a root
// export) with the encoded arguments args (nargs values) and encodes its
// nresults results into *out. Returns WASILET_RUN_RETURNED, or
// WASILET_RUN_FAILED / WASILET_RUN_CANCELLED / WASILET_RUN_EXITED /
// WASILET_RUN_SETUP with *err_msg (malloc'd).
int wasmtimec_instance_call(wasmtimec_instance_t *inst, const char *iface,
                            const char *fname, const uint8_t *args,
                            size_t args_len, size_t nargs, size_t nresults,
                            wasmtimec_buf_t *out, char **err_msg);

// Defines, in linker, an empty instance iface (an interface of types only)
// and an instance holding host function fname, served by the Go function
// wasmtimecHostCall with data (an opaque handle). Either name may be NULL.
// Returns NULL or an error message (malloc'd).
char *wasmtimec_linker_define(wasmtime_component_linker_t *linker,
                              const char *types_iface, const char *func_iface,
                              const char *fname, uintptr_t data);

#endif
