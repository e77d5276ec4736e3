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

WASILET_DEF_COMPONENT_RECORD_ENTRY(check_entry);
SAME_LAYOUT(wasmtime_component_valrecord_entry_t, struct check_entry);
SAME_OFFSET(wasmtime_component_valrecord_entry_t, struct check_entry, name);
SAME_OFFSET(wasmtime_component_valrecord_entry_t, struct check_entry, val);
#define SAME_VEC(real, field)                                                  \
  SAME_LAYOUT(real, ((struct check_val *)0)->of.field);                        \
  SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.field.size);      \
  SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.field.data)
WASILET_DEF_COMPONENT_VEC(check_vallist, struct wasmtime_component_val);
SAME_LAYOUT(wasmtime_component_vallist_t, struct check_vallist);
SAME_OFFSET(wasmtime_component_vallist_t, struct check_vallist, size);
SAME_OFFSET(wasmtime_component_vallist_t, struct check_vallist, data);
WASILET_DEF_COMPONENT_VEC(check_valrecord, struct wasmtime_component_valrecord_entry);
SAME_LAYOUT(wasmtime_component_valrecord_t, struct check_valrecord);
SAME_OFFSET(wasmtime_component_valrecord_t, struct check_valrecord, data);
WASILET_DEF_COMPONENT_VEC(check_valflags, wasm_name_t);
SAME_LAYOUT(wasmtime_component_valflags_t, struct check_valflags);
SAME_OFFSET(wasmtime_component_valflags_t, struct check_valflags, data);
SAME_VEC(wasm_name_t, string);
SAME_VEC(wasmtime_component_vallist_t, list);
SAME_VEC(wasmtime_component_valrecord_t, record);
SAME_VEC(wasmtime_component_valtuple_t, tuple);
SAME_VEC(wasm_name_t, enumeration);
SAME_VEC(wasmtime_component_valflags_t, flags);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.variant.discriminant);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.variant.val);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.option);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.resource);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.f32);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.f64);
SAME_OFFSET(wasmtime_component_val_t, struct check_val, of.character);
_Static_assert(sizeof(((wasmtime_component_val_t *)0)->of.f32) == sizeof(float), "f32");
_Static_assert(sizeof(((wasmtime_component_val_t *)0)->of.f64) == sizeof(double), "f64");
#define SAME_KIND(k) _Static_assert(WASILET_COMPONENT_##k == WASMTIME_COMPONENT_##k, #k)
SAME_KIND(BOOL); SAME_KIND(S8); SAME_KIND(U8); SAME_KIND(S16); SAME_KIND(U16);
SAME_KIND(S32); SAME_KIND(U32); SAME_KIND(S64); SAME_KIND(U64); SAME_KIND(F32);
SAME_KIND(F64); SAME_KIND(CHAR); SAME_KIND(STRING); SAME_KIND(LIST);
SAME_KIND(RECORD); SAME_KIND(TUPLE); SAME_KIND(VARIANT); SAME_KIND(ENUM);
SAME_KIND(OPTION); SAME_KIND(RESULT); SAME_KIND(FLAGS); SAME_KIND(RESOURCE);
_Static_assert(WASILET_WASI_DIR_PERMS_READ == WASMTIME_WASI_DIR_PERMS_READ, "");
_Static_assert(WASILET_WASI_DIR_PERMS_WRITE == WASMTIME_WASI_DIR_PERMS_WRITE, "");
_Static_assert(WASILET_WASI_FILE_PERMS_READ == WASMTIME_WASI_FILE_PERMS_READ, "");
_Static_assert(WASILET_WASI_FILE_PERMS_WRITE == WASMTIME_WASI_FILE_PERMS_WRITE, "");
_Static_assert(WASILET_UPDATE_DEADLINE_CONTINUE == WASMTIME_UPDATE_DEADLINE_CONTINUE, "");

WASILET_DEF_COMPONENT_ITEM(check_item);
SAME_LAYOUT(wasmtime_component_item_t, struct check_item);
SAME_LAYOUT(wasmtime_component_item_union_t, ((struct check_item *)0)->of);
SAME_LAYOUT(wasmtime_component_valtype_t, ((struct check_item *)0)->of.type);
SAME_OFFSET(wasmtime_component_item_t, struct check_item, kind);
SAME_OFFSET(wasmtime_component_item_t, struct check_item, of);
SAME_OFFSET(wasmtime_component_item_t, struct check_item, of.type.kind);
_Static_assert(offsetof(wasmtime_component_item_t, of.type.of) ==
                   offsetof(struct check_item, of.type.ptr),
               "offset of wasmtime_component_item_t.of.type.of");
