// Declarations of the few parts of the wasmtime C API (wasmtime-go v39.0.1,
// headers in <module>/build/include) that this package uses. They are copied
// by hand, faithfully to those headers, because a cgo file cannot portably
// name the include directory inside the Go module cache (see doc.go). The
// symbols themselves come from the libwasmtime.a that wasmtime-go links.
//
// decls_test.go compiles check.c, which includes the real <wasmtime.h> first
// and then this file with WASILET_DECLS_CHECK defined: every prototype below
// must be compatible with the real one (or the compiler fails), every
// function must be declared by the real headers (-Wredundant-decls proves it)
// and every struct below must have the real size and field offsets.
//
// When wasmtime-go is upgraded, run `go test ./runtime/internal/wasmtimec/
// -run TestDecls` and fix this file until it passes.

#ifndef WASILET_WASMTIMEC_DECLS_H
#define WASILET_WASMTIMEC_DECLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ---- opaque handles (repeating a typedef is valid C11) ----
typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_config_t wasm_config_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasi_config_t wasi_config_t;
typedef struct wasmtime_pooling_allocation_config_t
    wasmtime_pooling_allocation_config_t;
typedef struct wasmtime_component_t wasmtime_component_t;
typedef struct wasmtime_component_export_index_t
    wasmtime_component_export_index_t;
typedef struct wasmtime_component_linker_t wasmtime_component_linker_t;
typedef struct wasmtime_component_linker_instance_t
    wasmtime_component_linker_instance_t;
typedef struct wasmtime_component_func_type_t wasmtime_component_func_type_t;
typedef struct wasmtime_component_type_t wasmtime_component_type_t;
typedef uint8_t wasmtime_update_deadline_kind_t;
typedef size_t wasi_dir_perms;
typedef size_t wasi_file_perms;

// ---- structs with a layout (each defined once through a macro so the check
// can instantiate the very same body under another tag) ----

// wasm.h: WASM_DECLARE_VEC(byte, ) with wasm_byte_t = char.
#define WASILET_DEF_BYTE_VEC(tag)                                              \
  struct tag {                                                                 \
    size_t size;                                                               \
    char *data;                                                                \
  }

// wasmtime/component/instance.h
#define WASILET_DEF_COMPONENT_INSTANCE(tag)                                    \
  struct tag {                                                                 \
    uint64_t store_id;                                                         \
    uint32_t __private;                                                        \
  }

// wasmtime/component/func.h
#define WASILET_DEF_COMPONENT_FUNC(tag)                                        \
  struct tag {                                                                 \
    struct {                                                                   \
      uint64_t store_id;                                                       \
      uint32_t __private1;                                                     \
    };                                                                         \
    uint32_t __private2;                                                       \
  }

// wasmtime/component/val.h: wasmtime_component_val_t, every member of its
// union (f32 and f64 under their C types), and the vec types it holds.
#define WASILET_DEF_COMPONENT_VEC(tag, type)                                   \
  struct tag {                                                                 \
    size_t size;                                                               \
    type *data;                                                                \
  }
#define WASILET_DEF_COMPONENT_VAL(tag)                                         \
  struct tag {                                                                 \
    uint8_t kind;                                                              \
    union {                                                                    \
      bool boolean;                                                            \
      int8_t s8;                                                               \
      uint8_t u8;                                                              \
      int16_t s16;                                                             \
      uint16_t u16;                                                            \
      int32_t s32;                                                             \
      uint32_t u32;                                                            \
      int64_t s64;                                                             \
      uint64_t u64;                                                            \
      float f32;                                                               \
      double f64;                                                              \
      uint32_t character;                                                      \
      wasm_name_t string;                                                      \
      wasmtime_component_vallist_t list;                                       \
      wasmtime_component_valrecord_t record;                                   \
      wasmtime_component_valtuple_t tuple;                                     \
      struct {                                                                 \
        wasm_name_t discriminant;                                              \
        struct wasmtime_component_val *val;                                    \
      } variant;                                                               \
      wasm_name_t enumeration;                                                 \
      struct wasmtime_component_val *option;                                   \
      struct {                                                                 \
        bool is_ok;                                                            \
        struct wasmtime_component_val *val;                                    \
      } result;                                                                \
      wasmtime_component_valflags_t flags;                                     \
      void *resource;                                                          \
    } of;                                                                      \
  }

// wasmtime/component/types/component.h: wasmtime_component_item_t, an
// import's or export's type. It is only handed back to
// wasmtime_component_item_delete; the union holds a pointer, or a
// wasmtime_component_valtype_t (a u8 kind and a pointer).
#define WASILET_DEF_COMPONENT_ITEM(tag)                                        \
  struct tag {                                                                 \
    uint8_t kind;                                                              \
    union {                                                                    \
      void *ptr;                                                               \
      struct {                                                                 \
        uint8_t kind;                                                          \
        void *ptr;                                                             \
      } type;                                                                  \
    } of;                                                                      \
  }

// wasmtime/component/val.h: wasmtime_component_valrecord_entry_t.
#define WASILET_DEF_COMPONENT_RECORD_ENTRY(tag)                                \
  struct tag {                                                                 \
    wasm_name_t name;                                                          \
    wasmtime_component_val_t val;                                              \
  }

// Value kinds (WASMTIME_COMPONENT_BOOL ... WASMTIME_COMPONENT_RESOURCE).
#define WASILET_COMPONENT_BOOL 0
#define WASILET_COMPONENT_S8 1
#define WASILET_COMPONENT_U8 2
#define WASILET_COMPONENT_S16 3
#define WASILET_COMPONENT_U16 4
#define WASILET_COMPONENT_S32 5
#define WASILET_COMPONENT_U32 6
#define WASILET_COMPONENT_S64 7
#define WASILET_COMPONENT_U64 8
#define WASILET_COMPONENT_F32 9
#define WASILET_COMPONENT_F64 10
#define WASILET_COMPONENT_CHAR 11
#define WASILET_COMPONENT_STRING 12
#define WASILET_COMPONENT_LIST 13
#define WASILET_COMPONENT_RECORD 14
#define WASILET_COMPONENT_TUPLE 15
#define WASILET_COMPONENT_VARIANT 16
#define WASILET_COMPONENT_ENUM 17
#define WASILET_COMPONENT_OPTION 18
#define WASILET_COMPONENT_RESULT 19
#define WASILET_COMPONENT_FLAGS 20
#define WASILET_COMPONENT_RESOURCE 21
#define WASILET_WASI_DIR_PERMS_READ 1
#define WASILET_WASI_DIR_PERMS_WRITE 2
#define WASILET_WASI_FILE_PERMS_READ 1
#define WASILET_WASI_FILE_PERMS_WRITE 2
#define WASILET_UPDATE_DEADLINE_CONTINUE 0

#ifndef WASILET_DECLS_CHECK
typedef WASILET_DEF_BYTE_VEC(wasm_byte_vec_t) wasm_byte_vec_t;
typedef wasm_byte_vec_t wasm_name_t;
typedef WASILET_DEF_COMPONENT_INSTANCE(wasmtime_component_instance)
    wasmtime_component_instance_t;
typedef WASILET_DEF_COMPONENT_FUNC(wasmtime_component_func)
    wasmtime_component_func_t;
typedef WASILET_DEF_COMPONENT_VEC(wasmtime_component_vallist,
                                  struct wasmtime_component_val)
    wasmtime_component_vallist_t;
typedef WASILET_DEF_COMPONENT_VEC(wasmtime_component_valrecord,
                                  struct wasmtime_component_valrecord_entry)
    wasmtime_component_valrecord_t;
typedef WASILET_DEF_COMPONENT_VEC(wasmtime_component_valtuple,
                                  struct wasmtime_component_val)
    wasmtime_component_valtuple_t;
typedef WASILET_DEF_COMPONENT_VEC(wasmtime_component_valflags, wasm_name_t)
    wasmtime_component_valflags_t;
typedef WASILET_DEF_COMPONENT_VAL(wasmtime_component_val)
    wasmtime_component_val_t;
typedef WASILET_DEF_COMPONENT_RECORD_ENTRY(wasmtime_component_valrecord_entry)
    wasmtime_component_valrecord_entry_t;
typedef WASILET_DEF_COMPONENT_ITEM(wasmtime_component_item_t)
    wasmtime_component_item_t;
#endif

// ---- functions ----

// wasm.h
void wasm_byte_vec_delete(wasm_byte_vec_t *);
void wasm_byte_vec_new(wasm_byte_vec_t *out, size_t, const char *);

// wasmtime/error.h
wasmtime_error_t *wasmtime_error_new(const char *);
void wasmtime_error_delete(wasmtime_error_t *error);
void wasmtime_error_message(const wasmtime_error_t *error,
                            wasm_name_t *message);
bool wasmtime_error_exit_status(const wasmtime_error_t *, int *status);

// wasmtime/engine.h
void wasmtime_engine_increment_epoch(wasm_engine_t *engine);
bool wasmtime_engine_is_pulley(wasm_engine_t *engine);

// wasmtime/config.h
void wasmtime_config_wasm_component_model_set(wasm_config_t *, bool);
void wasmtime_config_epoch_interruption_set(wasm_config_t *, bool);
void wasmtime_config_memory_reservation_set(wasm_config_t *, uint64_t);
void wasmtime_config_memory_guard_size_set(wasm_config_t *, uint64_t);
void wasmtime_config_memory_reservation_for_growth_set(wasm_config_t *,
                                                       uint64_t);
wasmtime_pooling_allocation_config_t *
wasmtime_pooling_allocation_config_new(void);
void wasmtime_pooling_allocation_config_delete(
    wasmtime_pooling_allocation_config_t *);
void wasmtime_pooling_allocation_config_total_component_instances_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_config_total_core_instances_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_config_total_memories_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_config_total_tables_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_config_max_memory_size_set(
    wasmtime_pooling_allocation_config_t *, size_t);
void wasmtime_pooling_allocation_config_max_memories_per_component_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
void wasmtime_pooling_allocation_strategy_set(
    wasm_config_t *, const wasmtime_pooling_allocation_config_t *);

// wasmtime/module.h (used by the engine-pointer test)
wasmtime_error_t *wasmtime_module_deserialize(wasm_engine_t *engine,
                                              const uint8_t *bytes,
                                              size_t bytes_len,
                                              wasmtime_module_t **ret);
void wasmtime_module_delete(wasmtime_module_t *m);

// wasmtime/store.h
wasmtime_store_t *wasmtime_store_new(wasm_engine_t *engine, void *data,
                                     void (*finalizer)(void *));
wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *store);
void wasmtime_store_limiter(wasmtime_store_t *store, int64_t memory_size,
                            int64_t table_elements, int64_t instances,
                            int64_t tables, int64_t memories);
void wasmtime_store_delete(wasmtime_store_t *store);
void *wasmtime_context_get_data(const wasmtime_context_t *context);
wasmtime_error_t *wasmtime_context_set_wasi(wasmtime_context_t *context,
                                            wasi_config_t *wasi);
void wasmtime_context_set_epoch_deadline(wasmtime_context_t *context,
                                         uint64_t ticks_beyond_current);
void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
                              uint64_t *epoch_deadline_delta,
                              wasmtime_update_deadline_kind_t *update_kind),
    void *data, void (*finalizer)(void *));

// wasi.h
void wasi_config_delete(wasi_config_t *);
wasi_config_t *wasi_config_new(void);
bool wasi_config_set_argv(wasi_config_t *config, size_t argc,
                          const char *argv[]);
bool wasi_config_set_env(wasi_config_t *config, size_t envc,
                         const char *names[], const char *values[]);
bool wasi_config_set_stdin_file(wasi_config_t *config, const char *path);
bool wasi_config_set_stdout_file(wasi_config_t *config, const char *path);
bool wasi_config_set_stderr_file(wasi_config_t *config, const char *path);
bool wasi_config_preopen_dir(wasi_config_t *config, const char *host_path,
                             const char *guest_path, wasi_dir_perms dir_perms,
                             wasi_file_perms file_perms);

// wasmtime/component/component.h
wasmtime_error_t *wasmtime_component_new(const wasm_engine_t *engine,
                                         const uint8_t *buf, size_t len,
                                         wasmtime_component_t **component_out);
wasmtime_error_t *
wasmtime_component_serialize(const wasmtime_component_t *component,
                             wasm_byte_vec_t *ret);
wasmtime_error_t *
wasmtime_component_deserialize(const wasm_engine_t *engine, const uint8_t *buf,
                               size_t len,
                               wasmtime_component_t **component_out);
wasmtime_error_t *
wasmtime_component_deserialize_file(const wasm_engine_t *engine,
                                    const char *path,
                                    wasmtime_component_t **component_out);
void wasmtime_component_delete(wasmtime_component_t *component);
wasmtime_component_export_index_t *wasmtime_component_get_export_index(
    const wasmtime_component_t *component,
    const wasmtime_component_export_index_t *instance_export_index,
    const char *name, size_t name_len);
void wasmtime_component_export_index_delete(
    wasmtime_component_export_index_t *export_index);
wasmtime_component_type_t *
wasmtime_component_type(const wasmtime_component_t *component);

// wasmtime/component/types/component.h
void wasmtime_component_type_delete(wasmtime_component_type_t *ty);
size_t wasmtime_component_type_import_count(const wasmtime_component_type_t *ty,
                                            const wasm_engine_t *engine);
bool wasmtime_component_type_import_nth(
    const wasmtime_component_type_t *ty, const wasm_engine_t *engine,
    size_t nth, const char **name_ret, size_t *name_len_ret,
    struct wasmtime_component_item_t *type_ret);
void wasmtime_component_item_delete(struct wasmtime_component_item_t *ptr);

// wasmtime/component/linker.h
wasmtime_component_linker_t *
wasmtime_component_linker_new(const wasm_engine_t *engine);
wasmtime_error_t *wasmtime_component_linker_instantiate(
    const wasmtime_component_linker_t *linker, wasmtime_context_t *context,
    const wasmtime_component_t *component,
    wasmtime_component_instance_t *instance_out);
void wasmtime_component_linker_delete(wasmtime_component_linker_t *linker);
wasmtime_error_t *
wasmtime_component_linker_add_wasip2(wasmtime_component_linker_t *linker);
wasmtime_component_linker_instance_t *
wasmtime_component_linker_root(wasmtime_component_linker_t *linker);
wasmtime_error_t *wasmtime_component_linker_instance_add_instance(
    wasmtime_component_linker_instance_t *linker_instance, const char *name,
    size_t name_len,
    wasmtime_component_linker_instance_t **linker_instance_out);
wasmtime_error_t *wasmtime_component_linker_instance_add_func(
    wasmtime_component_linker_instance_t *linker_instance, const char *name,
    size_t name_len,
    wasmtime_error_t *(*callback)(void *, wasmtime_context_t *,
                                  const wasmtime_component_func_type_t *,
                                  wasmtime_component_val_t *, size_t,
                                  wasmtime_component_val_t *, size_t),
    void *data, void (*finalizer)(void *));
void wasmtime_component_linker_instance_delete(
    wasmtime_component_linker_instance_t *linker_instance);

// wasmtime/component/instance.h
wasmtime_component_export_index_t *wasmtime_component_instance_get_export_index(
    const wasmtime_component_instance_t *instance, wasmtime_context_t *context,
    const wasmtime_component_export_index_t *instance_export_index,
    const char *name, size_t name_len);
bool wasmtime_component_instance_get_func(
    const wasmtime_component_instance_t *instance, wasmtime_context_t *context,
    const wasmtime_component_export_index_t *export_index,
    wasmtime_component_func_t *func_out);

// wasmtime/component/func.h
wasmtime_error_t *wasmtime_component_func_call(
    const wasmtime_component_func_t *func, wasmtime_context_t *context,
    const wasmtime_component_val_t *args, size_t args_size,
    wasmtime_component_val_t *results, size_t results_size);
wasmtime_error_t *
wasmtime_component_func_post_return(const wasmtime_component_func_t *func,
                                    wasmtime_context_t *context);

// wasmtime/component/val.h
void wasmtime_component_val_delete(wasmtime_component_val_t *value);
wasmtime_component_val_t *
wasmtime_component_val_new(wasmtime_component_val_t *val);
void wasmtime_component_vallist_new_uninit(wasmtime_component_vallist_t *out,
                                           size_t size);
void wasmtime_component_valrecord_new_uninit(
    wasmtime_component_valrecord_t *out, size_t size);
void wasmtime_component_valtuple_new_uninit(wasmtime_component_valtuple_t *out,
                                            size_t size);
void wasmtime_component_valflags_new_uninit(wasmtime_component_valflags_t *out,
                                            size_t size);

#endif // WASILET_WASMTIMEC_DECLS_H
