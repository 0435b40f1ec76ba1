/* clipadapt.h — the one public header of clipadapt: few-shot adaptation of CLIP in C11.
 *
 * Opaque handles with constructor/destructor pairs (`*_free(NULL)` is a no-op), options as plain
 * structs with a `*_default_params()` function, and `ca_status` return codes. The library never
 * prints and never exits; a failing call leaves a one-line detail in `ca_last_error()`.
 * Compiles as C11 and as C++ (tests/test_header_cpp.cpp checks it).
 */
#ifndef CLIPADAPT_H
#define CLIPADAPT_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(CA_BUILD_SHARED)
#define CA_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CA_API __attribute__((visibility("default")))
#else
#define CA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CA_VERSION "0.1.0"

/* ======================================================================================== */
/* Status codes and errors                                                                  */
/* ======================================================================================== */

typedef enum {
    CA_OK = 0,          /* success */
    CA_E_IO,            /* a file could not be opened, read, written or renamed */
    CA_E_FORMAT,        /* a file is malformed: bad header, bad JSON, truncated data, bad image */
    CA_E_SHAPE,         /* a tensor has the wrong shape or dtype for its role */
    CA_E_NOMEM,         /* an allocation failed or a size overflowed */
    CA_E_ARG,           /* a caller passed an invalid argument */
    CA_E_NOTFOUND,      /* a named thing (tensor, class, method, split) does not exist */
    CA_E_UNSUPPORTED,   /* valid input that this build does not handle (dtype, layout, codec) */
    CA_E_RANGE,         /* a value is outside its allowed range (image too large, text too long) */
    CA_E_INTERNAL       /* a bug in clipadapt: please report it */
} ca_status;

/* Short, static description of a status code ("I/O error", ...). Never NULL. */
CA_API const char *ca_strerror(ca_status st);

/* Detailed one-line message for the last failing call on this thread, naming the file, tensor
 * and the expected vs found values where known (e.g. "cars.safetensors: tensor 'val.labels':
 * shape [588] but 'val.features' has 590 rows"). Empty string when none. The pointer stays valid
 * until the next failing call on the same thread. Thread-safe (per-thread storage). */
CA_API const char *ca_last_error(void);

/* Optional log sink for progress and diagnostics; the library calls it instead of printing.
 * level: 0 = debug, 1 = info, 2 = warning. Set once before use; not thread-safe to change. */
typedef void (*ca_log_fn)(int level, const char *msg, void *user);
CA_API void ca_set_log(ca_log_fn fn, void *user);

/* Progress callback for long work: stage name, done units, total units. Return non-zero to
 * cancel (the call then fails with CA_E_ARG and "cancelled"). */
typedef int (*ca_progress_fn)(const char *stage, int64_t done, int64_t total, void *user);

/* ======================================================================================== */
/* safetensors: read (memory-mapped) and write                                              */
/* ======================================================================================== */

typedef enum {
    CA_DT_F32 = 0, CA_DT_F16, CA_DT_BF16, CA_DT_F64,
    CA_DT_I64, CA_DT_I32, CA_DT_I16, CA_DT_I8, CA_DT_U8, CA_DT_BOOL
} ca_dtype;

#define CA_MAX_DIMS 8

/* Name of a dtype as written in safetensors headers ("F32", "BF16", ...). */
CA_API const char *ca_dtype_name(ca_dtype dt);
/* Bytes per element of a dtype. */
CA_API size_t ca_dtype_size(ca_dtype dt);

typedef struct {
    const char *name;            /* owned by the file handle */
    ca_dtype dtype;
    int ndim;
    int64_t shape[CA_MAX_DIMS];
    int64_t numel;
    const void *data;            /* raw little-endian bytes inside the mapping */
    size_t nbytes;
} ca_tensor_info;

typedef struct ca_st_file ca_st_file;

/* Open and validate a safetensors file: JSON header well-formed, every dtype known, every
 * shape × dtype size equal to its byte range, ranges inside the file, non-overlapping and
 * covering the data section, no overflow. The data stays memory-mapped until ca_st_close.
 * Returns NULL on failure (*st set, detail in ca_last_error()). Caller frees with ca_st_close. */
CA_API ca_st_file *ca_st_open(const char *path, ca_status *st);
CA_API void ca_st_close(ca_st_file *f);
CA_API const char *ca_st_path(const ca_st_file *f);
CA_API int ca_st_count(const ca_st_file *f);
/* Tensor i (0 <= i < count) in header order; NULL when out of range. */
CA_API const ca_tensor_info *ca_st_at(const ca_st_file *f, int i);
/* Tensor by name, or NULL when absent (no error is recorded). */
CA_API const ca_tensor_info *ca_st_find(const ca_st_file *f, const char *name);
/* `__metadata__` value for key, or NULL. */
CA_API const char *ca_st_metadata(const ca_st_file *f, const char *key);
CA_API int ca_st_metadata_count(const ca_st_file *f);
CA_API const char *ca_st_metadata_key(const ca_st_file *f, int i);

/* Convert n elements of a tensor to float32 / int64 into dst (any numeric dtype). n must equal
 * the tensor's numel. */
CA_API ca_status ca_tensor_to_f32(const ca_tensor_info *t, float *dst, int64_t n);
CA_API ca_status ca_tensor_to_i64(const ca_tensor_info *t, int64_t *dst, int64_t n);

/* Look a tensor up by name, check its rank (and each dim where expect[i] >= 0), and return a
 * malloc'd float32 copy (caller frees). Errors name file, tensor, expected and found shapes. */
CA_API float *ca_st_load_f32(const ca_st_file *f, const char *name, int ndim,
                             const int64_t *expect, int64_t *shape_out, ca_status *st);

typedef struct ca_st_writer ca_st_writer;
CA_API ca_st_writer *ca_st_writer_new(void);
CA_API void ca_st_writer_free(ca_st_writer *w);
/* Add a tensor. The data is copied, so the caller may free it at once. */
CA_API ca_status ca_st_writer_add(ca_st_writer *w, const char *name, ca_dtype dt, int ndim,
                                  const int64_t *shape, const void *data);
CA_API ca_status ca_st_writer_metadata(ca_st_writer *w, const char *key, const char *value);
/* Write to path atomically (temporary file in the same folder, fsync, rename). */
CA_API ca_status ca_st_writer_save(const ca_st_writer *w, const char *path);

/* ======================================================================================== */
/* Feature sets (schema of ../shared/features: train.{K}shot.*, val.*, test.*, text.weights) */
/* ======================================================================================== */

typedef struct ca_featureset ca_featureset;

typedef struct {
    int n, dim;
    const float *x;          /* (n, dim) row-major float32, borrowed from the feature set */
    const int32_t *y;        /* (n) class index in [0, num_classes) */
    int views;               /* V when augmented views exist (train splits only), else 0 */
    const float *xv;         /* (V, n, dim) augmented views, or NULL */
} ca_split;

/* Load and validate a feature set; all tensors are converted to float32/int32 once. */
CA_API ca_featureset *ca_features_load(const char *path, ca_status *st);
CA_API void ca_features_free(ca_featureset *fs);
CA_API int ca_features_num_classes(const ca_featureset *fs);
CA_API int ca_features_dim(const ca_featureset *fs);
/* Sorted list of the available K (train.{K}shot). Returns the count; fills up to max. */
CA_API int ca_features_shots(const ca_featureset *fs, int *shots, int max);
/* Split by name: "val", "test", or "train.{K}shot". */
CA_API ca_status ca_features_split(const ca_featureset *fs, const char *name, ca_split *out);
/* Text classifier (num_classes, dim) or NULL when the set has none. */
CA_API const float *ca_features_text(const ca_featureset *fs);
/* Class name i from metadata ("class_names" JSON array), or NULL when unknown. */
CA_API const char *ca_features_class_name(const ca_featureset *fs, int i);

/* ======================================================================================== */
/* Few-shot methods and fitted classifiers                                                  */
/* ======================================================================================== */

/* Everything a method may use to fit. Rows of x are L2-normalised CLIP image features. */
typedef struct {
    int num_classes, dim;
    ca_split train;          /* the K-shot set (views optional) */
    ca_split val;            /* for hyper-parameter search and model selection; never test */
    const float *text_w;     /* (num_classes, dim) zero-shot classifier, or NULL */
} ca_fit_data;

/* One struct for every method's options; each method reads the fields it documents. */
typedef struct {
    uint64_t seed;           /* all randomness derives from it */
    int threads;             /* 0 = library default */
    /* Tip-Adapter search grid: beta_i = 0.1 + i*(scale_beta-0.1)/steps_beta, alpha likewise */
    double search_scale_beta, search_scale_alpha;   /* defaults 20, 10 */
    int search_steps_beta, search_steps_alpha;      /* defaults 200, 20 */
    double init_alpha, init_beta;                   /* Tip-Adapter-F training alpha, beta (1, 1) */
    /* training (Tip-Adapter-F, CLIP-Adapter, hypernetwork) */
    int epochs;              /* 0 = the method's default */
    int batch;               /* 0 = the method's default */
    double lr;               /* 0 = the method's default */
    double weight_decay;     /* < 0 = the method's default */
    /* CLIP-Adapter */
    int reduction;           /* bottleneck D/r, default 4 */
    double ratio;            /* residual ratio; < 0 = search on val; see ratio_mode */
    int ratio_mode;          /* 0 fixed, 1 search on val, 2 learnable (hypernetwork) */
    int optimizer;           /* 0 = method default, 1 = SGD momentum, 2 = AdamW */
    int warmup_epochs;       /* -1 = method default */
    ca_progress_fn progress; void *progress_user;
} ca_fit_params;

CA_API ca_fit_params ca_fit_default_params(void);

typedef struct ca_classifier ca_classifier;

/* Names of the available methods ("zero-shot", "tip-adapter", ...), NULL-terminated, static. */
CA_API const char *const *ca_method_names(void);
/* 1 when the method needs text weights, 0 when not, -1 when the method is unknown. */
CA_API int ca_method_needs_text(const char *method);
/* One-line description of a method for --help, or NULL when unknown. */
CA_API const char *ca_method_help(const char *method);

/* Fit a classifier. Deterministic for a given (data, params). Caller frees with
 * ca_classifier_free. Not thread-safe on the same params' progress callback. */
CA_API ca_classifier *ca_fit(const char *method, const ca_fit_data *data,
                             const ca_fit_params *params, ca_status *st);
CA_API void ca_classifier_free(ca_classifier *c);
CA_API const char *ca_classifier_method(const ca_classifier *c);
CA_API int ca_classifier_num_classes(const ca_classifier *c);
CA_API int ca_classifier_dim(const ca_classifier *c);
/* Logits for n L2-normalised features x (n, dim) into out (n, num_classes). Thread-safe. */
CA_API ca_status ca_classifier_logits(const ca_classifier *c, const float *x, int n, float *out);
/* Chosen hyper-parameters and fit statistics (e.g. "alpha", "beta", "val_acc"), by index. */
CA_API int ca_classifier_param_count(const ca_classifier *c);
CA_API const char *ca_classifier_param_name(const ca_classifier *c, int i);
CA_API double ca_classifier_param(const ca_classifier *c, const char *name, double fallback);
/* Save/load as safetensors (method, class names, hyper-parameters in metadata). */
CA_API ca_status ca_classifier_save(const ca_classifier *c, const char *path,
                                    const char *const *class_names);
CA_API ca_classifier *ca_classifier_load(const char *path, ca_status *st);
/* Class name i from a loaded classifier, or NULL when none were saved. */
CA_API const char *ca_classifier_class_name(const ca_classifier *c, int i);

/* Top-1 accuracy in percent of logits (n, num_classes) against labels. */
CA_API double ca_accuracy(const float *logits, const int32_t *labels, int n, int num_classes);

/* ======================================================================================== */
/* Tokenizer (issue: CLIP BPE tokenizer)                                                    */
/* ======================================================================================== */
/* Contract (implementation may add functions, but must keep these signatures). */
typedef struct ca_tokenizer ca_tokenizer;

#define CA_TOKEN_SOT 49406
#define CA_TOKEN_EOT 49407

/* Load from CLIP's gzip merges file (bpe_simple_vocab_16e6.txt.gz; plain text also accepted). */
CA_API ca_tokenizer *ca_tokenizer_load(const char *bpe_path, ca_status *st);
/* Load from Hugging Face vocab.json + merges.txt. */
CA_API ca_tokenizer *ca_tokenizer_load_hf(const char *vocab_json, const char *merges_txt, ca_status *st);
CA_API void ca_tokenizer_free(ca_tokenizer *tok);
/* BPE ids of text (no start/end tokens). Writes at most max_ids ids and returns the full count
 * (so a result > max_ids means truncation), or -1 on error (*st set; invalid UTF-8 is an
 * error naming the byte offset). Not thread-safe on one handle (it keeps a BPE cache). */
CA_API int ca_tokenize(ca_tokenizer *tok, const char *text, int32_t *ids, int max_ids, ca_status *st);
/* Model input rows (n, context): [SOT] + ids[:context-2] + [EOT], zero-padded. When a text is
 * too long: truncate != 0 cuts it (the last kept token becomes EOT, as the reference);
 * truncate == 0 fails with CA_E_RANGE naming the text's index. */
CA_API ca_status ca_tokenize_batch(ca_tokenizer *tok, const char *const *texts, int n, int context,
                                   int truncate, int64_t *out);

/* ======================================================================================== */
/* Images: decoding, preprocessing, augmentation                                            */
/* ======================================================================================== */
/* Contract (implementation may add functions, but must keep these signatures). */
typedef struct ca_image ca_image;  /* decoded pixels in the file's own mode (L, LA, RGB, RGBA) */

typedef struct {
    int64_t max_pixels;      /* refuse larger images before allocating (default 178956970, PIL's limit x2) */
    int exif_rotate;         /* apply EXIF orientation (default 0, like the reference) */
} ca_image_params;
CA_API ca_image_params ca_image_default_params(void);

/* Decode a file / memory buffer (JPEG, PNG; others where built in). name is used in errors. */
CA_API ca_image *ca_image_load(const char *path, const ca_image_params *p, ca_status *st);
CA_API ca_image *ca_image_decode(const void *data, size_t len, const char *name,
                                 const ca_image_params *p, ca_status *st);
/* Wrap caller pixels (copied): channels 1 = L, 2 = LA, 3 = RGB, 4 = RGBA; stride = bytes per row. */
CA_API ca_image *ca_image_from_pixels(const uint8_t *pixels, int width, int height, int channels,
                                      size_t stride, ca_status *st);
CA_API void ca_image_free(ca_image *img);
CA_API int ca_image_width(const ca_image *img);
CA_API int ca_image_height(const ca_image *img);
CA_API int ca_image_channels(const ca_image *img);

/* CLIP preprocessing as the reference: PIL bicubic resize of the shorter side to size, centre
 * crop size x size, convert to RGB, scale to [0,1], normalise with CLIP's mean/std.
 * out: (3, size, size) float32. Thread-safe. */
CA_API ca_status ca_preprocess(const ca_image *img, int size, float *out);
/* Augmented view: RandomResizedCrop(size, scale (0.5,1), ratio (3/4,4/3), bicubic) and a
 * horizontal flip with p = 0.5, then normalised as above. The same (seed, image_index,
 * view_index) always yields the same view, whatever the thread count. Thread-safe. */
CA_API ca_status ca_augment(const ca_image *img, int size, uint64_t seed, uint64_t image_index,
                            uint64_t view_index, float *out);

/* ======================================================================================== */
/* CLIP models: loading and encoding                                                        */
/* ======================================================================================== */
/* Contract (implementation may add functions, but must keep these signatures). */
typedef struct ca_model ca_model;

typedef struct {
    int load_vision;         /* default 1 */
    int load_text;           /* default 1 */
    const char *config_path; /* Hugging Face config.json, optional (NULL: infer from shapes) */
    int threads;             /* 0 = library default */
} ca_model_params;
CA_API ca_model_params ca_model_default_params(void);

typedef struct {
    int has_vision, has_text;
    int is_vit;                      /* 1 ViT, 0 ModifiedResNet */
    int image_size, patch_size;      /* patch_size 0 for ResNet */
    int vision_width, vision_layers, vision_heads;
    int rn_layers[4];                /* ResNet stage depths */
    int text_width, text_layers, text_heads, context_length, vocab_size;
    int embed_dim;
    int64_t n_params;
    ca_dtype dtype;                  /* stored weight dtype */
    const char *naming;              /* "openai" or "hf" */
} ca_model_info;

/* Load a CLIP checkpoint (safetensors, OpenAI/OpenCLIP or Hugging Face names; F32/F16/BF16),
 * inferring the architecture from tensor shapes. Caller frees with ca_model_free. */
CA_API ca_model *ca_model_load(const char *path, const ca_model_params *p, ca_status *st);
CA_API void ca_model_free(ca_model *m);
CA_API ca_status ca_model_get_info(const ca_model *m, ca_model_info *out);
/* images (n, 3, R, R) preprocessed -> out (n, embed_dim), projected, NOT normalised.
 * One handle is used by one thread at a time (it owns scratch buffers). */
CA_API ca_status ca_model_encode_images(ca_model *m, const float *images, int n, float *out);
/* tokens (n, context_length) -> out (n, embed_dim), projected, NOT normalised. */
CA_API ca_status ca_model_encode_text(ca_model *m, const int64_t *tokens, int n, float *out);
/* The checkpoint's logit scale, exp(logit_scale) (the reference's zero-shot temperature, 100 for
 * trained CLIP), or 100 when the file has no logit_scale. Thread-safe. */
CA_API float ca_model_logit_scale(const ca_model *m);

/* Compute path of the encoders (issue 8). CA_COMPUTE_FAST (the default): packed weights (built
 * on the first encode call, about one more float32 copy of the weights), AVX-512 GEMMs with
 * fused epilogues, fused attention, NHWC ResNet, text cut at the end token. Same float32
 * numerics up to summation order. CA_COMPUTE_REFERENCE: the plain kernels, for checking.
 * CA_COMPUTE_BF16: the fast path with weights and GEMM inputs rounded to bfloat16 (float32
 * accumulation; about 1.9x the GEMM throughput; features within about 1% — see docs/perf.md);
 * CA_E_UNSUPPORTED on CPUs without AVX512-BF16. Switching repacks on the next encode call.
 * Not thread-safe with a concurrent encode on the same handle. */
#define CA_COMPUTE_FAST 0
#define CA_COMPUTE_REFERENCE 1
#define CA_COMPUTE_BF16 2
CA_API ca_status ca_model_set_compute(ca_model *m, int mode);

#ifdef __cplusplus
}
#endif
#endif /* CLIPADAPT_H */
