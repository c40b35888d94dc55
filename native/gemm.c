// factrl_gemm: OpenBLAS sgemm on tensors that live in the tfjs wasm backend's memory.
//
// The wasm backend keeps every tensor in one WebAssembly.Memory; JS passes that memory's
// ArrayBuffer plus byte offsets, so the product is computed in place with no copies.
// Only plain node_api.h is used, so the addon needs no npm dependency.
#include <cblas.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

// Declared here too because some cblas.h variants (reference CBLAS) do not declare them.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);

enum { ACTIVATION_LINEAR = 0, ACTIVATION_RELU = 1, ACTIVATION_RELU6 = 2 };

#define THROW_IF(cond, code, msg)                                                                  \
  do {                                                                                             \
    if (cond) {                                                                                    \
      napi_throw_range_error(env, code, msg);                                                      \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

#define NAPI_OK(call)                                                                              \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_type_error(env, "FACTRL_GEMM_ARG", "factrl_gemm: invalid argument: " #call);     \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

// Non-negative integer argument (offsets and sizes are < 2^53, fit int64).
static bool get_count(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(int64_t)d) return false;
  *out = (int64_t)d;
  return true;
}

static bool fits(int64_t offset, int64_t floats, size_t heap_bytes) {
  return floats == 0 || (offset >= 0 && offset % 4 == 0 &&
                         (uint64_t)offset + (uint64_t)floats * 4u <= (uint64_t)heap_bytes);
}

// gemm(heap, aOffset, bOffset, outOffset, batchA, batchB, m, n, k, transposeA, transposeB,
//      biasOffset, biasSize, activation)
// a: [batchA, m, k] ([batchA, k, m] if transposeA); b: [batchB, k, n] ([batchB, n, k] if
// transposeB); out: [max(batchA, batchB), m, n]. A batch of 1 broadcasts. biasSize 0 = no bias,
// 1 = scalar, n = per column. All offsets are in bytes.
static napi_value gemm(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  THROW_IF(argc != 14, "FACTRL_GEMM_ARGC", "factrl_gemm.gemm expects 14 arguments");

  void *heap_data;
  size_t heap_bytes;
  bool is_ab = false;
  NAPI_OK(napi_is_arraybuffer(env, argv[0], &is_ab));
  THROW_IF(!is_ab, "FACTRL_GEMM_HEAP", "factrl_gemm.gemm: heap must be an ArrayBuffer");
  NAPI_OK(napi_get_arraybuffer_info(env, argv[0], &heap_data, &heap_bytes));

  int64_t v[13];
  for (int i = 0; i < 13; i++) {
    if (i == 8 || i == 9) continue;  // booleans
    THROW_IF(!get_count(env, argv[i + 1], &v[i]), "FACTRL_GEMM_ARG",
             "factrl_gemm.gemm: offsets and sizes must be non-negative integers");
  }
  bool trans_a, trans_b;
  NAPI_OK(napi_get_value_bool(env, argv[9], &trans_a));
  NAPI_OK(napi_get_value_bool(env, argv[10], &trans_b));
  const int64_t a_off = v[0], b_off = v[1], out_off = v[2], batch_a = v[3], batch_b = v[4];
  const int64_t m = v[5], n = v[6], k = v[7], bias_off = v[10], bias_size = v[11];
  const int64_t activation = v[12];

  THROW_IF(batch_a != batch_b && batch_a != 1 && batch_b != 1, "FACTRL_GEMM_BATCH",
           "factrl_gemm.gemm: batch sizes must be equal or one of them 1");
  THROW_IF(m > INT32_MAX || n > INT32_MAX || k > INT32_MAX, "FACTRL_GEMM_SIZE",
           "factrl_gemm.gemm: dimension exceeds 2^31-1");
  THROW_IF(bias_size != 0 && bias_size != 1 && bias_size != n, "FACTRL_GEMM_BIAS",
           "factrl_gemm.gemm: bias size must be 0, 1 or n");
  THROW_IF(activation > ACTIVATION_RELU6, "FACTRL_GEMM_ACTIVATION",
           "factrl_gemm.gemm: unknown activation code");
  const int64_t batch = batch_a == 1 ? batch_b : batch_a;
  THROW_IF(!fits(a_off, batch_a * m * k, heap_bytes) || !fits(b_off, batch_b * k * n, heap_bytes) ||
               !fits(out_off, batch * m * n, heap_bytes) || !fits(bias_off, bias_size, heap_bytes),
           "FACTRL_GEMM_BOUNDS", "factrl_gemm.gemm: operand outside the heap or misaligned");

  if (batch * m * n == 0) return NULL;
  uint8_t *base = heap_data;
  const float *a = (const float *)(base + a_off);
  const float *b = (const float *)(base + b_off);
  float *out = (float *)(base + out_off);
  if (k == 0) {
    memset(out, 0, (size_t)(batch * m * n) * sizeof(float));
  } else if (batch_b == 1 && !trans_a) {
    // A shared right operand and row-major, untransposed left operands: the batches stack
    // into one tall product, which BLAS runs faster than many small ones.
    THROW_IF(batch_a * m > INT32_MAX, "FACTRL_GEMM_SIZE", "factrl_gemm.gemm: batch*m exceeds 2^31-1");
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)(batch_a * m),
                (int)n, (int)k, 1.0f, a, (int)k, b, trans_b ? (int)k : (int)n, 0.0f, out, (int)n);
  } else {
    const int lda = trans_a ? (int)m : (int)k;
    const int ldb = trans_b ? (int)k : (int)n;
    for (int64_t i = 0; i < batch; i++) {
      const float *ai = a + (batch_a == 1 ? 0 : i * m * k);
      const float *bi = b + (batch_b == 1 ? 0 : i * k * n);
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                  trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, ai,
                  lda > 0 ? lda : 1, bi, ldb > 0 ? ldb : 1, 0.0f, out + i * m * n,
                  n > 0 ? (int)n : 1);
    }
  }

  if (bias_size > 0 || activation != ACTIVATION_LINEAR) {
    const float *bias = bias_size > 0 ? (const float *)(base + bias_off) : NULL;
    const int64_t rows = batch * m;
    for (int64_t r = 0; r < rows; r++) {
      float *row = out + r * n;
      for (int64_t c = 0; c < n; c++) {
        float x = row[c];
        if (bias) x += bias[bias_size == 1 ? 0 : c];
        if (activation == ACTIVATION_RELU) x = x > 0.0f ? x : 0.0f;
        if (activation == ACTIVATION_RELU6) x = x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f;
        row[c] = x;
      }
    }
  }
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t threads;
  THROW_IF(argc != 1 || !get_count(env, argv[0], &threads) || threads < 1 || threads > 1024,
           "FACTRL_GEMM_THREADS", "factrl_gemm.setThreads expects an integer in [1, 1024]");
  openblas_set_num_threads((int)threads);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  NAPI_OK(napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

static napi_value blas_config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  const char *config = openblas_get_config();
  NAPI_OK(napi_create_string_utf8(env, config ? config : "unknown", NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gemm", NULL, gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"blasConfig", NULL, blas_config, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
