// Compiled by TestDecls against the real headers of wasmtime-go's module:
// checks that decls.h agrees with them (see the comment at the top of
// decls.h). Not part of the package build (testdata is ignored by go build).
#include <stddef.h>
#include <wasmtime.h>

#define WASILET_DECLS_CHECK
#include "../decls.h"

#define SAME_LAYOUT(real, mine)                                                \
  _Static_assert(sizeof(real) == sizeof(mine), "size of " #real);              \
  _Static_assert(_Alignof(real) == _Alignof(mine), "alignment of " #real)
#define SAME_OFFSET(real, mine, field)                                         \
  _Static_assert(offsetof(real, field) == offsetof(mine, field),              \
                 "offset of " #real "." #field)

WASILET_DEF_BYTE_VEC(check_byte_vec);
SAME_LAYOUT(wasm_byte_vec_t, struct check_byte_vec);
SAME_OFFSET(wasm_byte_vec_t, struct check_byte_vec, size);
SAME_OFFSET(wasm_byte_vec_t, struct check_byte_vec, data);

WASILET_DEF_COMPONENT_INSTANCE(check_instance);
SAME_LAYOUT(wasmtime_component_instance_t, struct check_instance);

WASILET_DEF_COMPONENT_FUNC(check_func);
SAME_LAYOUT(wasmtime_component_func_t, struct check_func);

WASILET_DEF_COMPONENT_VAL(check_val);
SAME_LAYOUT(wasmtime_component_val_t, struct check_val);
SAME_LAYOUT(wasmtime_component_valunion_t,
            ((struct check_val *)0)->of);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, kind);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.result.is_ok);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.result.val);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.boolean);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.s32);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.u64);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.string.size);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.string.data);

_Static_assert(WASILET_COMPONENT_RESULT == WASMTIME_COMPONENT_RESULT, "kind");
_Static_assert(WASILET_WASI_DIR_PERMS_READ == WASMTIME_WASI_DIR_PERMS_READ, "");
_Static_assert(WASILET_WASI_DIR_PERMS_WRITE == WASMTIME_WASI_DIR_PERMS_WRITE, "");
_Static_assert(WASILET_WASI_FILE_PERMS_READ == WASMTIME_WASI_FILE_PERMS_READ, "");
_Static_assert(WASILET_WASI_FILE_PERMS_WRITE == WASMTIME_WASI_FILE_PERMS_WRITE, "");
_Static_assert(WASILET_UPDATE_DEADLINE_CONTINUE == WASMTIME_UPDATE_DEADLINE_CONTINUE, "");
