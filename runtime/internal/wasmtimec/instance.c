// Long-lived component instances and typed calls; see shim.h.
#include "shim.h"
#include "_cgo_export.h"

#include <stdlib.h>
#include <string.h>

char *wasmtimec_error_take(wasmtime_error_t *err);

static char *dup_str(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (out == NULL)
    abort();
  memcpy(out, s, n + 1);
  return out;
}

// ---- encoding ----

typedef struct {
  uint8_t *data;
  size_t len, cap;
} wbuf;

static void w_bytes(wbuf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n)
      cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL)
      abort();
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void w_u8(wbuf *b, uint8_t v) { w_bytes(b, &v, 1); }
static void w_u32(wbuf *b, uint32_t v) {
  uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};
  w_bytes(b, x, 4);
}
static void w_u64(wbuf *b, uint64_t v) {
  w_u32(b, (uint32_t)v);
  w_u32(b, (uint32_t)(v >> 32));
}
static void w_name(wbuf *b, const wasm_name_t *n) {
  w_u32(b, (uint32_t)n->size);
  w_bytes(b, n->data, n->size);
}

// Encodes v; returns false for a value it cannot encode (a resource).
static bool encode(wbuf *b, const wasmtime_component_val_t *v) {
  w_u8(b, v->kind);
  switch (v->kind) {
  case WASILET_COMPONENT_BOOL:
    w_u8(b, v->of.boolean);
    return true;
  case WASILET_COMPONENT_S8:
    w_u64(b, (uint64_t)(int64_t)v->of.s8);
    return true;
  case WASILET_COMPONENT_U8:
    w_u64(b, v->of.u8);
    return true;
  case WASILET_COMPONENT_S16:
    w_u64(b, (uint64_t)(int64_t)v->of.s16);
    return true;
  case WASILET_COMPONENT_U16:
    w_u64(b, v->of.u16);
    return true;
  case WASILET_COMPONENT_S32:
    w_u64(b, (uint64_t)(int64_t)v->of.s32);
    return true;
  case WASILET_COMPONENT_U32:
    w_u64(b, v->of.u32);
    return true;
  case WASILET_COMPONENT_S64:
    w_u64(b, (uint64_t)v->of.s64);
    return true;
  case WASILET_COMPONENT_U64:
    w_u64(b, v->of.u64);
    return true;
  case WASILET_COMPONENT_CHAR:
    w_u64(b, v->of.character);
    return true;
  case WASILET_COMPONENT_F32: {
    double d = v->of.f32;
    uint64_t u;
    memcpy(&u, &d, 8);
    w_u64(b, u);
    return true;
  }
  case WASILET_COMPONENT_F64: {
    uint64_t u;
    memcpy(&u, &v->of.f64, 8);
    w_u64(b, u);
    return true;
  }
  case WASILET_COMPONENT_STRING:
    w_name(b, &v->of.string);
    return true;
  case WASILET_COMPONENT_ENUM:
    w_name(b, &v->of.enumeration);
    return true;
  case WASILET_COMPONENT_LIST:
  case WASILET_COMPONENT_TUPLE: {
    const wasmtime_component_vallist_t *l =
        (const wasmtime_component_vallist_t *)&v->of.list;
    w_u32(b, (uint32_t)l->size);
    for (size_t i = 0; i < l->size; i++)
      if (!encode(b, &l->data[i]))
        return false;
    return true;
  }
  case WASILET_COMPONENT_RECORD:
    w_u32(b, (uint32_t)v->of.record.size);
    for (size_t i = 0; i < v->of.record.size; i++) {
      w_name(b, &v->of.record.data[i].name);
      if (!encode(b, &v->of.record.data[i].val))
        return false;
    }
    return true;
  case WASILET_COMPONENT_VARIANT:
    w_name(b, (const wasm_name_t *)&v->of.variant.discriminant);
    w_u8(b, v->of.variant.val != NULL);
    return v->of.variant.val == NULL || encode(b, v->of.variant.val);
  case WASILET_COMPONENT_OPTION:
    w_u8(b, v->of.option != NULL);
    return v->of.option == NULL || encode(b, v->of.option);
  case WASILET_COMPONENT_RESULT:
    w_u8(b, v->of.result.is_ok);
    w_u8(b, v->of.result.val != NULL);
    return v->of.result.val == NULL || encode(b, v->of.result.val);
  case WASILET_COMPONENT_FLAGS:
    w_u32(b, (uint32_t)v->of.flags.size);
    for (size_t i = 0; i < v->of.flags.size; i++)
      w_name(b, &v->of.flags.data[i]);
    return true;
  }
  return false;
}

// ---- decoding (input comes from this package's Go encoder) ----

typedef struct {
  const uint8_t *p;
  size_t left;
  bool bad;
} rbuf;

static const uint8_t *r_take(rbuf *r, size_t n) {
  if (r->bad || r->left < n) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  r->left -= n;
  return p;
}
static uint8_t r_u8(rbuf *r) {
  const uint8_t *p = r_take(r, 1);
  return p ? p[0] : 0;
}
static uint32_t r_u32(rbuf *r) {
  const uint8_t *p = r_take(r, 4);
  return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24
           : 0;
}
static uint64_t r_u64(rbuf *r) {
  uint64_t lo = r_u32(r);
  return lo | (uint64_t)r_u32(r) << 32;
}
static void r_name(rbuf *r, wasm_name_t *out) {
  uint32_t n = r_u32(r);
  const uint8_t *p = r_take(r, n);
  wasm_byte_vec_new(out, p ? n : 0, (const char *)p);
}

// Decodes one value into *v (always left deletable with
// wasmtime_component_val_delete, even when r goes bad).
static void decode(rbuf *r, wasmtime_component_val_t *v, int depth) {
  memset(v, 0, sizeof *v);
  if (depth > 64) {
    r->bad = true;
    return;
  }
  uint8_t kind = r_u8(r);
  if (r->bad)
    return;
  switch (kind) {
  case WASILET_COMPONENT_BOOL:
    v->of.boolean = r_u8(r) != 0;
    break;
  case WASILET_COMPONENT_S8:
    v->of.s8 = (int8_t)r_u64(r);
    break;
  case WASILET_COMPONENT_U8:
    v->of.u8 = (uint8_t)r_u64(r);
    break;
  case WASILET_COMPONENT_S16:
    v->of.s16 = (int16_t)r_u64(r);
    break;
  case WASILET_COMPONENT_U16:
    v->of.u16 = (uint16_t)r_u64(r);
    break;
  case WASILET_COMPONENT_S32:
    v->of.s32 = (int32_t)r_u64(r);
    break;
  case WASILET_COMPONENT_U32:
    v->of.u32 = (uint32_t)r_u64(r);
    break;
  case WASILET_COMPONENT_S64:
    v->of.s64 = (int64_t)r_u64(r);
    break;
  case WASILET_COMPONENT_U64:
    v->of.u64 = r_u64(r);
    break;
  case WASILET_COMPONENT_CHAR:
    v->of.character = (uint32_t)r_u64(r);
    break;
  case WASILET_COMPONENT_F32: {
    uint64_t u = r_u64(r);
    double d;
    memcpy(&d, &u, 8);
    v->of.f32 = (float)d;
    break;
  }
  case WASILET_COMPONENT_F64: {
    uint64_t u = r_u64(r);
    memcpy(&v->of.f64, &u, 8);
    break;
  }
  case WASILET_COMPONENT_STRING:
    r_name(r, &v->of.string);
    break;
  case WASILET_COMPONENT_ENUM:
    r_name(r, &v->of.enumeration);
    break;
  case WASILET_COMPONENT_LIST:
  case WASILET_COMPONENT_TUPLE: {
    uint32_t n = r_u32(r);
    if (r->bad || n > r->left) { // every value takes at least one byte
      r->bad = true;
      break;
    }
    wasmtime_component_vallist_t *l = (wasmtime_component_vallist_t *)&v->of.list;
    if (kind == WASILET_COMPONENT_LIST)
      wasmtime_component_vallist_new_uninit(l, n);
    else
      wasmtime_component_valtuple_new_uninit(
          (wasmtime_component_valtuple_t *)&v->of.tuple, n);
    if (n > 0)
      memset(l->data, 0, n * sizeof *l->data);
    v->kind = kind;
    for (uint32_t i = 0; i < n; i++)
      decode(r, &l->data[i], depth + 1);
    return;
  }
  case WASILET_COMPONENT_RECORD: {
    uint32_t n = r_u32(r);
    if (r->bad || n > r->left) {
      r->bad = true;
      break;
    }
    wasmtime_component_valrecord_new_uninit(
        (wasmtime_component_valrecord_t *)&v->of.record, n);
    if (n > 0)
      memset(v->of.record.data, 0, n * sizeof *v->of.record.data);
    v->kind = kind;
    for (uint32_t i = 0; i < n; i++) {
      r_name(r, &v->of.record.data[i].name);
      decode(r, &v->of.record.data[i].val, depth + 1);
    }
    return;
  }
  case WASILET_COMPONENT_VARIANT: {
    r_name(r, (wasm_name_t *)&v->of.variant.discriminant);
    v->kind = kind;
    if (r_u8(r)) {
      wasmtime_component_val_t inner;
      decode(r, &inner, depth + 1);
      v->of.variant.val = wasmtime_component_val_new(&inner);
    }
    return;
  }
  case WASILET_COMPONENT_OPTION:
    v->kind = kind;
    if (r_u8(r)) {
      wasmtime_component_val_t inner;
      decode(r, &inner, depth + 1);
      v->of.option = wasmtime_component_val_new(&inner);
    }
    return;
  case WASILET_COMPONENT_RESULT:
    v->kind = kind;
    v->of.result.is_ok = r_u8(r) != 0;
    if (r_u8(r)) {
      wasmtime_component_val_t inner;
      decode(r, &inner, depth + 1);
      v->of.result.val = wasmtime_component_val_new(&inner);
    }
    return;
  case WASILET_COMPONENT_FLAGS: {
    uint32_t n = r_u32(r);
    if (r->bad || n > r->left) {
      r->bad = true;
      break;
    }
    wasmtime_component_valflags_new_uninit(&v->of.flags, n);
    if (n > 0)
      memset(v->of.flags.data, 0, n * sizeof *v->of.flags.data);
    v->kind = kind;
    for (uint32_t i = 0; i < n; i++)
      r_name(r, &v->of.flags.data[i]);
    return;
  }
  default:
    r->bad = true;
    return;
  }
  v->kind = kind;
}

// ---- instances ----

struct wasmtimec_instance {
  wasmtime_store_t *store;
  wasmtime_context_t *context;
  wasmtime_component_instance_t instance;
  wasmtimec_cancel_t *cancel;
};

wasmtime_error_t *wasmtimec_epoch_callback(wasmtime_context_t *context,
                                           void *data, uint64_t *delta,
                                           wasmtime_update_deadline_kind_t *kind);

wasmtimec_instance_t *wasmtimec_instance_new(
    wasm_engine_t *engine, const wasmtime_component_t *component,
    const wasmtime_component_linker_t *linker, wasi_config_t *wasi,
    int64_t memory_limit, wasmtimec_cancel_t *cancel, uintptr_t store_data,
    int *status, char **err_msg) {
  wasmtimec_instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL)
    abort();
  inst->cancel = cancel;
  inst->store = wasmtime_store_new(engine, (void *)store_data, NULL);
  inst->context = wasmtime_store_context(inst->store);
  if (memory_limit > 0)
    wasmtime_store_limiter(inst->store, memory_limit, -1, -1, -1, -1);
  wasmtime_store_epoch_deadline_callback(inst->store, wasmtimec_epoch_callback,
                                         cancel, NULL);
  wasmtime_context_set_epoch_deadline(inst->context, 0); // as in wasmtimec_run
  wasmtime_error_t *err = wasmtime_context_set_wasi(inst->context, wasi);
  if (err != NULL) {
    *status = WASILET_RUN_SETUP;
    *err_msg = wasmtimec_error_take(err);
    goto fail;
  }
  err = wasmtime_component_linker_instantiate(linker, inst->context, component,
                                              &inst->instance);
  if (err != NULL) {
    *status = WASILET_RUN_INSTANTIATE;
    *err_msg = wasmtimec_error_take(err);
    goto fail;
  }
  return inst;
fail:
  wasmtime_store_delete(inst->store);
  free(inst);
  return NULL;
}

void wasmtimec_instance_delete(wasmtimec_instance_t *inst) {
  wasmtime_store_delete(inst->store);
  free(inst);
}

static int call_failed(wasmtimec_instance_t *inst, wasmtime_error_t *err,
                       char **err_msg) {
  int code = 0;
  if (wasmtime_error_exit_status(err, &code)) {
    wasmtime_error_delete(err);
    *err_msg = dup_str(code == 0 ? "the guest exited (status 0) during the call"
                                 : "the guest exited (non-zero status) during the call");
    return WASILET_RUN_EXITED;
  }
  *err_msg = wasmtimec_error_take(err);
  if (inst->cancel != NULL && wasmtimec_cancel_is_set(inst->cancel))
    return WASILET_RUN_CANCELLED;
  return WASILET_RUN_FAILED;
}

int wasmtimec_instance_call(wasmtimec_instance_t *inst, const char *iface,
                            const char *fname, const uint8_t *args,
                            size_t args_len, size_t nargs, size_t nresults,
                            wasmtimec_buf_t *out, char **err_msg) {
  out->data = NULL;
  out->len = 0;
  wasmtime_component_export_index_t *iidx = NULL;
  if (iface != NULL) {
    iidx = wasmtime_component_instance_get_export_index(
        &inst->instance, inst->context, NULL, iface, strlen(iface));
    if (iidx == NULL) {
      *err_msg = dup_str("the component does not export that interface");
      return WASILET_RUN_SETUP;
    }
  }
  wasmtime_component_export_index_t *fidx =
      wasmtime_component_instance_get_export_index(
          &inst->instance, inst->context, iidx, fname, strlen(fname));
  if (iidx != NULL)
    wasmtime_component_export_index_delete(iidx);
  if (fidx == NULL) {
    *err_msg = dup_str("the component does not export that function");
    return WASILET_RUN_SETUP;
  }
  wasmtime_component_func_t func;
  bool ok = wasmtime_component_instance_get_func(&inst->instance, inst->context,
                                                 fidx, &func);
  wasmtime_component_export_index_delete(fidx);
  if (!ok) {
    *err_msg = dup_str("the export is not a function");
    return WASILET_RUN_SETUP;
  }

  wasmtime_component_val_t *argv =
      calloc(nargs ? nargs : 1, sizeof(wasmtime_component_val_t));
  wasmtime_component_val_t *resv =
      calloc(nresults ? nresults : 1, sizeof(wasmtime_component_val_t));
  if (argv == NULL || resv == NULL)
    abort();
  rbuf r = {args, args_len, false};
  for (size_t i = 0; i < nargs; i++)
    decode(&r, &argv[i], 0);
  int status = WASILET_RUN_RETURNED;
  bool filled = false;
  if (r.bad || r.left != 0) {
    *err_msg = dup_str("wasilet: bad argument encoding");
    status = WASILET_RUN_SETUP;
    goto done;
  }
  wasmtime_error_t *err = wasmtime_component_func_call(
      &func, inst->context, argv, nargs, resv, nresults);
  if (err != NULL) {
    status = call_failed(inst, err, err_msg);
    goto done;
  }
  filled = true;
  wbuf b = {NULL, 0, 0};
  bool encoded = true;
  for (size_t i = 0; i < nresults && encoded; i++)
    encoded = encode(&b, &resv[i]);
  err = wasmtime_component_func_post_return(&func, inst->context);
  if (!encoded) {
    free(b.data);
    *err_msg = dup_str("wasilet: the function returned a resource (unsupported)");
    status = WASILET_RUN_SETUP;
  } else if (err != NULL) {
    free(b.data);
    status = call_failed(inst, err, err_msg);
    err = NULL;
  } else {
    out->data = b.data;
    out->len = b.len;
  }
  if (err != NULL)
    wasmtime_error_delete(err);
done:
  for (size_t i = 0; i < nargs; i++)
    wasmtime_component_val_delete(&argv[i]);
  // Results are only filled when the call returned.
  if (filled)
    for (size_t i = 0; i < nresults; i++)
      wasmtime_component_val_delete(&resv[i]);
  free(argv);
  free(resv);
  return status;
}

// ---- host functions ----

static wasmtime_error_t *host_call(void *data, wasmtime_context_t *context,
                                   const wasmtime_component_func_type_t *ty,
                                   wasmtime_component_val_t *args,
                                   size_t nargs,
                                   wasmtime_component_val_t *results,
                                   size_t nresults) {
  (void)ty;
  wbuf b = {NULL, 0, 0};
  for (size_t i = 0; i < nargs; i++)
    if (!encode(&b, &args[i])) {
      free(b.data);
      return wasmtime_error_new("wasilet: host function got a resource");
    }
  wasmtimec_buf_t res = {NULL, 0};
  char *msg = wasmtimecHostCall((uintptr_t)data,
                                (uintptr_t)wasmtime_context_get_data(context),
                                b.data, b.len, &res);
  free(b.data);
  if (msg != NULL) {
    wasmtime_error_t *err = wasmtime_error_new(msg);
    free(msg);
    free(res.data);
    return err;
  }
  rbuf r = {res.data, res.len, false};
  for (size_t i = 0; i < nresults; i++)
    decode(&r, &results[i], 0);
  bool bad = r.bad || r.left != 0;
  free(res.data);
  if (bad)
    return wasmtime_error_new("wasilet: host function returned a bad encoding");
  return NULL;
}

char *wasmtimec_linker_define(wasmtime_component_linker_t *linker,
                              const char *types_iface, const char *func_iface,
                              const char *fname, uintptr_t data) {
  wasmtime_component_linker_instance_t *root =
      wasmtime_component_linker_root(linker);
  wasmtime_error_t *err = NULL;
  wasmtime_component_linker_instance_t *li = NULL;
  if (types_iface != NULL) {
    err = wasmtime_component_linker_instance_add_instance(
        root, types_iface, strlen(types_iface), &li);
    if (err != NULL)
      goto done;
    wasmtime_component_linker_instance_delete(li);
    li = NULL;
  }
  if (func_iface != NULL) {
    err = wasmtime_component_linker_instance_add_instance(
        root, func_iface, strlen(func_iface), &li);
    if (err != NULL)
      goto done;
    err = wasmtime_component_linker_instance_add_func(
        li, fname, strlen(fname), host_call, (void *)data, NULL);
    wasmtime_component_linker_instance_delete(li);
  }
done:
  wasmtime_component_linker_instance_delete(root);
  return err ? wasmtimec_error_take(err) : NULL;
}
