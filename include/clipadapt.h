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

#define CA_VERSION "0.2.0" /* major.minor.patch; libclipadapt.so.MAJOR is the SONAME */

/* ======================================================================================== */
/* Status codes and errors                                                                  */
/* ======================================================================================== */

typedef enum {
    /* Numbered once and never renumbered (as SQLite's and curl's codes): a program may store them. */
    CA_OK = 0,              /* success */
    CA_E_IO = 1,            /* a file could not be opened, read, written or renamed */
    CA_E_FORMAT = 2,        /* a file is malformed: bad header, bad JSON, truncated data, bad image */
    CA_E_SHAPE = 3,         /* a tensor has the wrong shape or dtype for its role */
    CA_E_NOMEM = 4,         /* an allocation failed or a size overflowed */
    CA_E_ARG = 5,           /* a caller passed an invalid argument */
    CA_E_NOTFOUND = 6,      /* a named thing (tensor, class, method, split) does not exist */
    CA_E_UNSUPPORTED = 7,   /* valid input that this build does not handle (dtype, layout, codec) */
    CA_E_RANGE = 8,         /* a value is outside its allowed range (image too large, text too long) */
    CA_E_INTERNAL = 9,      /* a bug in clipadapt: please report it */
    CA_E_CANCELLED = 10,    /* a progress callback or a session's cancel flag stopped the call */
    CA_E_NONFINITE = 11,    /* NaN/Inf in weights, features, probabilities or a diverged loss */
    CA_E_UNSAFE = 12        /* a file asks for something clipadapt refuses to do (e.g. a pickle global) */
} ca_status;

/* Short, static description of a status code ("I/O error", ...). Never NULL. */
CA_API const char *ca_strerror(ca_status st);

/* Detailed one-line message of the last failure on this thread, naming the file, tensor and the
 * expected vs found values where known (e.g. "cars.safetensors: tensor 'val.labels': shape [588]
 * but 'val.features' has 590 rows"). Every public call that can fail clears it on entry, so it
 * always belongs to the last call that failed, and is empty after a success. The pointer stays
 * valid until the next public call on the same thread. Thread-safe (per-thread storage). */
CA_API const char *ca_last_error(void);

/* Optional log sink for progress and diagnostics; the library calls it instead of printing.
 * level: 0 = debug, 1 = info, 2 = warning. Set once before use; not thread-safe to change. */
typedef void (*ca_log_fn)(int level, const char *msg, void *user);
CA_API void ca_set_log(ca_log_fn fn, void *user);

/* The version of the library in use ("0.2.0"): with a shared library it can differ from the
 * CA_VERSION a program was compiled with. Static string, never NULL. */
CA_API const char *ca_version(void);

/* The SIMD path the model kernels run on: "generic", "avx2" or "avx512". A portable x86-64
 * build picks the best one this CPU supports at start-up; the environment variable
 * CLIPADAPT_CPU=generic|avx2|avx512 forces one (for tests and comparisons). When it names an
 * unknown path, one this CPU lacks, or one a build with fixed ARCH flags does not have, this
 * returns NULL with CA_E_UNSUPPORTED and the reason in ca_last_error(), the kernels stay on the
 * generic path and ca_model_load refuses the same way. st may be NULL. Thread-safe. */
CA_API const char *ca_cpu_path(ca_status *st);

/* Progress callback for long work: stage name, done units, total units. Return non-zero to
 * cancel (the call then fails with CA_E_CANCELLED). */
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
/* Open any checkpoint clipadapt reads, chosen by content, not by extension, as the same handle:
 * safetensors; PyTorch zip archives (`torch.save` >= 1.6: OpenCLIP `.pt`/`.bin`, HF
 * `pytorch_model.bin`, training checkpoints, whose 'state_dict'/'model' entry is unwrapped and
 * 'module.' prefix stripped) and TorchScript archives (OpenAI's `clip.load` files, tensors named
 * by attribute path, `visual.conv1.weight`); the legacy pre-1.6 `torch.save` stream; a sharded
 * checkpoint's `*.index.json`; or a folder holding one of these (an HF snapshot or OpenCLIP hub
 * folder). Pickles run in a restricted reader that builds data only: any other global fails with
 * CA_E_UNSAFE ("evil.pt: pickle calls 'posix.system': refused") and nothing is executed. Tensor
 * data points into the mapped file where stored as-is (no copy). ca_st_path then names the file
 * actually read. Caller frees with ca_st_close. */
CA_API ca_st_file *ca_weights_open(const char *path, ca_status *st);
/* The files ca_weights_open(path) reads, found without reading a tensor: the file itself, for a
 * folder the checkpoint it holds, and for a sharded checkpoint's index the index and every shard
 * it names. For output policies: a program must not overwrite a file it reads. Returns a
 * NULL-terminated array of malloc'd paths (*count of them; count may be NULL), freed with
 * ca_weights_files_free; NULL when the path cannot be read (*st set). Thread-safe. */
CA_API char **ca_weights_files(const char *path, int *count, ca_status *st);
CA_API void ca_weights_files_free(char **files);
/* Format found by ca_weights_open / ca_st_open: "safetensors", "safetensors-sharded",
 * "pytorch-zip", "torchscript", "pytorch-legacy", "pytorch-sharded". Static string. */
CA_API const char *ca_st_format(const ca_st_file *f);
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
/* Write to path. A regular or new file is written atomically (hidden temporary in the same
 * folder, fsync, rename; the old file's mode is kept); a symbolic link is followed and its
 * target replaced (the link stays); a FIFO or character device is written directly; "-" is
 * standard output; a directory is refused. Errors name path with the system's reason. The same
 * rules hold for every library function that writes a file (ca_classifier_save, ca_write_text). */
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

/* Load and validate a feature set; all tensors are converted to float32/int32 once. Required:
 * a train.{K}shot split and test (0 rows allowed); val.* is optional. */
CA_API ca_featureset *ca_features_load(const char *path, ca_status *st);
CA_API void ca_features_free(ca_featureset *fs);
CA_API int ca_features_num_classes(const ca_featureset *fs);
CA_API int ca_features_dim(const ca_featureset *fs);
/* Sorted list of the available K (train.{K}shot). Returns the count; fills up to max. */
CA_API int ca_features_shots(const ca_featureset *fs, int *shots, int max);
/* Split by name: "val", "test", or "train.{K}shot". CA_E_NOTFOUND for a split the set lacks; val
 * is optional (a set without it serves CA_SELECT_NONE only) and may also have 0 rows. */
CA_API ca_status ca_features_split(const ca_featureset *fs, const char *name, ca_split *out);
/* Text classifier (num_classes, dim) or NULL when the set has none. */
CA_API const float *ca_features_text(const ca_featureset *fs);
/* Class name i from metadata ("class_names" JSON array), or NULL when unknown. */
CA_API const char *ca_features_class_name(const ca_featureset *fs, int i);
/* The signature of the model that produced the features (metadata "model_signature", written by
 * `clipadapt extract`; see ca_model_signature), or NULL when the file has none. */
CA_API const char *ca_features_model_signature(const ca_featureset *fs);

/* Writing a feature set in the schema ca_features_load reads (what `clipadapt extract` writes):
 * make a writer, add the splits (train.{K}shot, val, test), optionally the text classifier,
 * class names and metadata, then save. Everything given is checked (names, labels within
 * [0, num_classes), finite values) and copied, so the caller may free it at once, and a saved
 * file always loads back. One writer per thread; the caller frees it with
 * ca_features_writer_free. */
typedef struct ca_features_writer ca_features_writer;
typedef struct {
    int num_classes;         /* C, 1..100000: labels lie in [0, C); text.weights is (C, dim) */
    int dim;                 /* D, 1..65536: width of every feature row */
    int f16;                 /* store features and views as F16 (half the size); 0: F32 */
} ca_features_writer_params;
CA_API ca_features_writer_params ca_features_writer_default_params(void);
CA_API ca_features_writer *ca_features_writer_new(const ca_features_writer_params *p, ca_status *st);
CA_API void ca_features_writer_free(ca_features_writer *w);
/* Add split name ("train.{K}shot" with K >= 1, "val" or "test"; each once): x (n, dim) features,
 * y (n) labels, n >= 1 (test: n >= 0, an empty test split); xv (views, n, dim) augmented views for train splits (NULL and 0 for
 * none); paths (n) image paths recorded in metadata "image_paths" (NULL: none; the map is
 * written only when every split gave its paths). */
CA_API ca_status ca_features_writer_add_split(ca_features_writer *w, const char *name, const float *x,
                                              const int32_t *y, int n, const float *xv, int views,
                                              const char *const *paths);
/* The text classifier (num_classes, dim), stored as float32 "text.weights". */
CA_API ca_status ca_features_writer_set_text(ca_features_writer *w, const float *text);
/* num_classes class names, stored as metadata "class_names". */
CA_API ca_status ca_features_writer_set_class_names(ca_features_writer *w, const char *const *names);
/* Other metadata ("model", "model_signature", "seed", "templates", ...). The writer sets
 * "format", "num_classes", "class_names", "image_paths" and "views" itself and refuses them. */
CA_API ca_status ca_features_writer_metadata(ca_features_writer *w, const char *key, const char *value);
/* Check that a train split, val and test are present, then write path atomically. */
CA_API ca_status ca_features_writer_save(ca_features_writer *w, const char *path);

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
    /* GDA (gda, gda-zs): CA_COV_TUNED (shrinkage chosen on val) or CA_COV_KS (Wang et al.,
     * ICLR 2024: D·pinv((N−1)·S + tr(S)·I) over every view of every shot); see docs/methods.md */
    int covariance;
    ca_progress_fn progress; void *progress_user;
} ca_fit_params;

enum { CA_COV_TUNED = 0, CA_COV_KS = 1 };

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
/* Signature of the model whose features the classifier was fit on (carried over from the feature
 * set by ca_fit_features, saved and loaded with it), or NULL when unknown. ca_classify_image
 * refuses a model with a different signature. */
CA_API const char *ca_classifier_model_signature(const ca_classifier *c);
/* Logits for n L2-normalised features x (n, dim) into out (n, num_classes). Thread-safe. */
CA_API ca_status ca_classifier_logits(const ca_classifier *c, const float *x, int n, float *out);
/* Chosen hyper-parameters and fit statistics (e.g. "alpha", "beta", "val_acc"), by index. */
CA_API int ca_classifier_param_count(const ca_classifier *c);
CA_API const char *ca_classifier_param_name(const ca_classifier *c, int i);
CA_API double ca_classifier_param(const ca_classifier *c, const char *name, double fallback);
/* The name of an option value that is a name ("adamw" for ("optimizer", 2), "learn" for
 * ("ratio_mode", 2)), or NULL when the parameter is a plain number. Static string. */
CA_API const char *ca_fit_param_value_name(const char *param, double value);
/* Save/load as safetensors (method, class names, hyper-parameters in metadata; named values such
 * as the optimizer stored by name). */
CA_API ca_status ca_classifier_save(const ca_classifier *c, const char *path,
                                    const char *const *class_names);
CA_API ca_classifier *ca_classifier_load(const char *path, ca_status *st);
/* Class name i from a loaded classifier, or NULL when none were saved. */
CA_API const char *ca_classifier_class_name(const ca_classifier *c, int i);

/* Growing a fitted classifier without training (src/adapt/grow.c). A loaded classifier is not
 * changed by these behind anyone's back: to grow one that other threads read, copy it with
 * ca_classifier_clone, grow the copy, and swap it in (what `clipadapt serve` does). None of these
 * is thread-safe on the classifier it changes. */
/* 1 when ca_classifier_add_example works without training: tip-adapter, tip-adapter-f and
 * tip-cache (the example joins the cache: one key, its one-hot value) and prototype (the class
 * mean moves by one example). α, β and every other fitted value stay as they are. */
CA_API int ca_classifier_can_grow(const ca_classifier *c);
/* 1 when the classifier keeps a text classifier (tensor text_w: zero-shot, tip-adapter(-f));
 * a new class then needs its text weight. */
CA_API int ca_classifier_has_text(const ca_classifier *c);
/* Its text classifier (num_classes, dim), owned by c, or NULL when it has none. */
CA_API const float *ca_classifier_text_weights(const ca_classifier *c);
/* Index of the class with this name ("class N" for an unnamed one), or -1. */
CA_API int ca_classifier_class_index(const ca_classifier *c, const char *name);
/* A deep copy (caller frees with ca_classifier_free); NULL on failure. Thread-safe on c. */
CA_API ca_classifier *ca_classifier_clone(const ca_classifier *c, ca_status *st);
/* Append a class named name (new, non-empty) as index num_classes. text_w (dim; normalised
 * here) is required when ca_classifier_has_text, ignored otherwise; the class has no examples
 * yet. Zero-shot, tip-adapter(-f), tip-cache and prototype; others fail with CA_E_UNSUPPORTED. */
CA_API ca_status ca_classifier_add_class(ca_classifier *c, const char *name, const float *text_w);
/* Add one example: feature x (dim; L2-normalised here) of class label. CA_E_UNSUPPORTED when
 * !ca_classifier_can_grow (such a method needs a refit, e.g. ca_fit on ca_classifier_cache_get
 * plus the new examples). */
CA_API ca_status ca_classifier_add_example(ca_classifier *c, const float *x, int label);
/* Number of cached examples (tip-adapter(-f), tip-cache keys; 0 for other methods), and a copy
 * of them: keys_out (n, dim) and labels_out (n), either may be NULL. */
CA_API int ca_classifier_cache_size(const ca_classifier *c);
CA_API ca_status ca_classifier_cache_get(const ca_classifier *c, float *keys_out, int32_t *labels_out);
/* Examples per class (num_classes) into counts: cached keys per label, or for prototype the
 * counts it was fit and grown with; zeros when the method keeps none. */
CA_API ca_status ca_classifier_class_counts(const ca_classifier *c, int64_t *counts);
/* Name class i (copied; replaces any name it had). Not thread-safe on c. */
CA_API ca_status ca_classifier_set_class_name(ca_classifier *c, int i, const char *name);
/* Record a named number saved with the classifier (metadata param.NAME; at most 39 bytes).
 * Changing a value the method reads (alpha, beta, cache_size) changes its logits. */
CA_API ca_status ca_classifier_set_param(ca_classifier *c, const char *name, double value);

/* Top-1 accuracy in percent of logits (n, num_classes) against labels. */
CA_API double ca_accuracy(const float *logits, const int32_t *labels, int n, int num_classes);

/* ======================================================================================== */
/* Few-shot experiments: one run, and its reports (table, JSON, SVG plot)                   */
/* ======================================================================================== */

/* The outcome of fitting one method at one K and scoring it on val and test. */
typedef struct {
    const char *method;          /* static name from the registry */
    int shots;                   /* K */
    double val_acc, test_acc;    /* top-1 accuracy in percent of the fitted classifier; val_acc is
                                    on the val images the method saw (NAN under CA_SELECT_NONE) */
    double seconds;              /* wall time of fit + both evaluations */
    ca_classifier *clf;          /* the fitted classifier, owned by the result (ca_run_free) */
    /* the protocol of the run (ca_run_fewshot_protocol; ca_run_fewshot fills the defaults) */
    uint64_t seed;               /* params->seed: training randomness and every draw below */
    int select;                  /* CA_SELECT_* */
    int resampled;               /* 1 when the K shots were drawn from a larger train split */
    int train_n, val_n;          /* training rows and val images the method was given */
} ca_run_result;

/* Selection regimes: which validation data a method may use for its hyper-parameters, epochs
 * and ensembling weights. Test is evaluated once after fitting under every regime. */
enum {
    CA_SELECT_VAL = 0,           /* the whole val split */
    CA_SELECT_KSHOT_VAL = 1,     /* min(K, kshot_val_max) val images per class, drawn with the seed */
    CA_SELECT_NONE = 2           /* no val at all: ca_fit_data.val.n == 0, each method's published
                                    fixed hyper-parameters (or a CA_E_ARG refusal) */
};
/* Where the K shots come from. */
enum {
    CA_SAMPLE_POOL = 0,          /* K below the largest train split: K of its rows per class, drawn
                                    with the seed (views follow their rows); otherwise the stored split */
    CA_SAMPLE_FIXED = 1          /* always the stored train.{K}shot split */
};

typedef struct {
    int select;                  /* CA_SELECT_* (default CA_SELECT_VAL) */
    int sample;                  /* CA_SAMPLE_* (default CA_SAMPLE_POOL) */
    int kshot_val_max;           /* per-class val cap of CA_SELECT_KSHOT_VAL (default 4) */
} ca_protocol;
CA_API ca_protocol ca_protocol_default_params(void);
/* Name of a selection regime ("val", "kshot-val", "none") or NULL; and back (-1 when unknown). */
CA_API const char *ca_select_name(int select);
CA_API int ca_select_from_name(const char *name);

/* Fit `method` on train.{shots}shot of fs (val for its searches and model selection), then
 * score val and test once. On success fills *out (free with ca_run_free); on failure returns
 * the status with the detail in ca_last_error(). Thread-safe on distinct outputs. */
CA_API ca_status ca_run_fewshot(const ca_featureset *fs, const char *method, int shots,
                                const ca_fit_params *params, ca_run_result *out);
/* The same under a protocol (NULL: defaults). params->seed drives the training randomness, the
 * K-shot draw (CA_SAMPLE_POOL: for each class a seeded permutation of the pool's rows, the first
 * K taken, so K-shot samples of one seed are nested) and the kshot-val draw. Deterministic for a
 * given (fs, method, shots, params, proto) and thread count. ca_run_fewshot is this with
 * CA_SELECT_VAL and CA_SAMPLE_FIXED (the stored split), as before protocols existed. */
CA_API ca_status ca_run_fewshot_protocol(const ca_featureset *fs, const char *method, int shots,
                                         const ca_fit_params *params, const ca_protocol *proto,
                                         ca_run_result *out);
CA_API void ca_run_free(ca_run_result *r);

/* Reports of n runs, as malloc'd NUL-terminated text (caller frees; NULL when out of memory).
 * Table: one row per method, one column per K, "test (val)" accuracy in percent.
 * JSON: one object per run (method, shots, val_acc, test_acc, alpha, beta, seconds, and every
 * classifier parameter under "params"); an array when n != 1, the bare object when n == 1.
 * SVG: test accuracy vs K (log2 axis), one line per method, axes, ticks and a legend. */
CA_API char *ca_report_table(const ca_run_result *runs, int n);
CA_API char *ca_report_json(const ca_run_result *runs, int n, const char *features_path);
CA_API char *ca_plot_svg(const ca_run_result *runs, int n, const char *title);
/* Evaluation of logits (n, num_classes) against labels: top-1 and top-k accuracy, per-class
 * accuracy and the confusion matrix. Filled by ca_eval_logits, freed by ca_eval_report_free. */
typedef struct {
    int n, num_classes, k;       /* rows, classes, the k of topk (min(k asked, num_classes)) */
    double top1, topk;           /* accuracy in percent; top1 equals ca_accuracy */
    int64_t *confusion;          /* (C, C) counts: row = true class, column = top-1 prediction */
    int *class_count;            /* (C) rows of each true class */
    double *class_acc;           /* (C) top-1 accuracy in percent per true class; NaN when it has no rows */
} ca_eval_report;
/* Score logits: labels must be in [0, num_classes) (CA_E_ARG naming the row otherwise). Ties go
 * to the lower class index, as in ca_accuracy and ca_top_k. Thread-safe. */
CA_API ca_status ca_eval_logits(const float *logits, const int32_t *labels, int n, int num_classes, int k,
                                ca_eval_report *out);
CA_API void ca_eval_report_free(ca_eval_report *r);
/* The confusion matrix as CSV (malloc'd, caller frees): a header row of class names, then one
 * row per true class with its counts per predicted class, its row count and accuracy. Names
 * (NULL or a NULL entry: "class i") are quoted as RFC 4180 needs. */
CA_API char *ca_confusion_csv(const ca_eval_report *r, const char *const *class_names);
/* The confusion matrix as an SVG heatmap (cells coloured by the share of the true class's rows,
 * a tooltip per cell, class names on the axes while they fit); malloc'd, caller frees. */
CA_API char *ca_confusion_svg(const ca_eval_report *r, const char *const *class_names, const char *title);

/* Runs over several seeds: when some (method, K) has runs with more than one seed, the table
 * shows "mean ± std" of test accuracy per cell (std: the sample standard deviation, n − 1) and
 * the plot draws the mean with ±std error bars. ca_report_json_ex with aggregate (or several
 * seeds) writes one object: {"features", "select", "seeds": [...], "runs": [per-seed records
 * with "seed", "select", "resampled", "train_n", "val_n"], "aggregate": [per (method, K):
 * "n_seeds", "test_mean", "test_std", "val_mean", "val_std", "test_accs"]}. */
typedef struct {
    const char *features_path;   /* recorded in the JSON, or NULL */
    int timings;                 /* 1 (default): wall-clock fields ("seconds", "*_seconds"); 0: none,
                                    so that the same runs give byte-identical JSON */
    int aggregate;               /* 1: the aggregate object even for one seed (default 0: only
                                    when the runs hold several seeds) */
} ca_report_params;
CA_API ca_report_params ca_report_default_params(void);
CA_API char *ca_report_json_ex(const ca_run_result *runs, int n, const ca_report_params *p);
/* Write text to path atomically (temporary file + rename): no partial output on failure; links,
 * special files and "-" as for ca_st_writer_save. */
CA_API ca_status ca_write_text(const char *path, const char *text);

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
/* As ca_tokenize, for a text of len bytes that may contain NUL characters (text need not be
 * NUL-terminated). */
CA_API int ca_tokenize_n(ca_tokenizer *tok, const char *text, size_t len, int32_t *ids, int max_ids,
                         ca_status *st);
/* One model-input row of len bytes of text into out (context): as ca_tokenize_batch for n = 1.
 * *n_ids (optional) receives the BPE id count before truncation. Not thread-safe on one handle. */
CA_API ca_status ca_tokenize_row(ca_tokenizer *tok, const char *text, size_t len, int context,
                                 int truncate, int64_t *out, int *n_ids);
/* Ids of the start and end tokens in this vocabulary (49406 and 49407 for CLIP's), -1 for NULL. */
CA_API int ca_tokenizer_sot(const ca_tokenizer *tok);
CA_API int ca_tokenizer_eot(const ca_tokenizer *tok);

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

/* Decode a file / memory buffer (JPEG, PNG, GIF, WebP, BMP, TIFF, PPM/PGM/PBM, recognised by
 * content) into the file's own Pillow mode, as Pillow 9.4 opens and loads it (no gamma, tRNS
 * ignored, 16-bit RGB(A) reduced to the high byte, 16-bit grey kept as "I"; GIF, animated WebP
 * and multi-page TIFF: the first frame; a TIFF's Orientation tag applied, as Pillow's load does). Corrupt, truncated, empty or unrecognised data fails with CA_E_FORMAT and a message
 * naming `name` (the path for ca_image_load); more than max_pixels fails with CA_E_RANGE before
 * any pixel buffer is allocated. p may be NULL (defaults). The caller frees the result with
 * ca_image_free. Thread-safe (no shared state); the buffer is only read during the call. */
CA_API ca_image *ca_image_load(const char *path, const ca_image_params *p, ca_status *st);
CA_API ca_image *ca_image_decode(const void *data, size_t len, const char *name,
                                 const ca_image_params *p, ca_status *st);
/* Wrap caller pixels (copied): channels 1 = L, 2 = LA, 3 = RGB, 4 = RGBA; stride = bytes per row.
 * No pixel limit applies. Caller frees with ca_image_free. */
CA_API ca_image *ca_image_from_pixels(const uint8_t *pixels, int width, int height, int channels,
                                      size_t stride, ca_status *st);
CA_API void ca_image_free(ca_image *img);
CA_API int ca_image_width(const ca_image *img);
CA_API int ca_image_height(const ca_image *img);
CA_API int ca_image_channels(const ca_image *img);
/* Pillow mode name of the decoded pixels: "L", "LA", "RGB", "RGBA", "CMYK", "I" (16/32-bit grey,
 * one int32 per pixel; TIFF's "I;16"/"I;16B" likewise), "RGBX" (TIFF; stored as RGB), "P"
 * (palette, stored expanded as RGB) or "1" (stored as L 0/255).
 * Static string; "" for NULL. */
CA_API const char *ca_image_mode(const ca_image *img);
/* Decoded samples, rows of width*channels bytes (modes "I", "I;16", "I;16B": width int32), tightly packed; owned
 * by the image. */
CA_API const uint8_t *ca_image_pixels(const ca_image *img);

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

/* Transformer MLP activation (ca_model_params.activation). OpenAI CLIP uses QuickGELU
 * (x·σ(1.702x)); OpenCLIP's LAION models use exact GELU with the same tensor names and shapes. */
#define CA_ACTIVATION_AUTO 0       /* from the checkpoint: see ca_model_load */
#define CA_ACTIVATION_QUICKGELU 1
#define CA_ACTIVATION_GELU 2

/* Compute path of the encoders, chosen at load (ca_model_params.compute) and fixed for the
 * model's life. CA_COMPUTE_FAST (the default): matrices packed once at load straight from the
 * file (F16-stored weights as F16 panels, others as F32 panels; no float32 copy of them is
 * kept), AVX-512 GEMMs with fused epilogues, fused attention, NHWC ResNet, text cut at the end
 * token. Same float32 numerics as the reference up to summation order. CA_COMPUTE_REFERENCE:
 * float32 weights and the plain kernels, the oracle for checking. CA_COMPUTE_BF16: the fast path
 * with weights and GEMM inputs rounded to bfloat16 (float32 accumulation; about 1.9x the GEMM
 * throughput; features within about 1% — see docs/perf.md); ca_model_load fails with
 * CA_E_UNSUPPORTED on CPUs without AVX512-BF16. */
#define CA_COMPUTE_FAST 0
#define CA_COMPUTE_REFERENCE 1
#define CA_COMPUTE_BF16 2

typedef struct {
    int load_vision;         /* default 1 */
    int load_text;           /* default 1 */
    const char *config_path; /* Hugging Face config.json or OpenCLIP open_clip_config.json, optional
                                (NULL: looked for beside the weights, else inferred from shapes) */
    int threads;             /* default thread budget of sessions made on this model (0 = library
                                default: OpenMP's max threads); also used to pack at load */
    int compute;             /* CA_COMPUTE_* (default CA_COMPUTE_FAST) */
    int activation;          /* CA_ACTIVATION_*: AUTO (default) or an override for both towers */
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
    const char *format;              /* file format read (ca_st_format): "safetensors", "torchscript", ... */
    const char *activation;          /* "quickgelu", "gelu" or "gelu_tanh" (the text tower's when both) */
    const char *activation_source;   /* why: "open_clip_config.json: quick_gelu absent", "assumed ..." */
} ca_model_info;

/* Load a CLIP checkpoint (any file ca_weights_open reads: safetensors, PyTorch zip / TorchScript /
 * legacy files, sharded indexes, folders; OpenAI/OpenCLIP or Hugging Face names; F32/F16/BF16),
 * inferring the architecture from tensor shapes, and pack its weights for p->compute. The
 * activation is never guessed silently: an override in p->activation; else HF names: the config's
 * hidden_act (HF's default quick_gelu); TorchScript archives are OpenAI's: QuickGELU;
 * OpenAI/OpenCLIP names: open_clip_config.json beside the weights (or
 * "<stem>.open_clip_config.json", or p->config_path) decides by model_cfg.quick_gelu (absent =
 * GELU, as OpenCLIP); without one QuickGELU is assumed and said so through the log callback
 * (level 1) and ca_model_info.activation_source. NaN/Inf weights fail with CA_E_NONFINITE naming
 * the tensor, whatever the format. The model is immutable afterwards: any number of threads may
 * use it at once, each through its own ca_session (or the one-call functions below, which make
 * one on the fly). Caller frees with ca_model_free, after every session on it. */
CA_API ca_model *ca_model_load(const char *path, const ca_model_params *p, ca_status *st);
CA_API void ca_model_free(ca_model *m);
CA_API ca_status ca_model_get_info(const ca_model *m, ca_model_info *out);
/* A short text identifying the image tower's weights: "clip-image:E:W:" and the first 16 values of
 * its output projection. Two checkpoints of the same architecture but different training differ
 * here; the same weights stored as F32, F16 or BF16, or under OpenAI or HF names, agree within
 * ca_model_signature_match. Writes at most n bytes (NUL-terminated; 512 is always enough).
 * CA_E_ARG when the image tower is not loaded. */
CA_API ca_status ca_model_signature(const ca_model *m, char *buf, size_t n);
/* 1 when two signatures name the same weights (equal header, values within 1% — storage rounding
 * of F16/BF16 copies), else 0. */
CA_API int ca_model_signature_match(const char *a, const char *b);
/* images (n, 3, R, R) preprocessed -> out (n, embed_dim), projected, NOT normalised. A one-call
 * convenience: runs a session made for the call (the model's default thread budget).
 * Thread-safe: any number of threads may call it on one model. */
CA_API ca_status ca_model_encode_images(const ca_model *m, const float *images, int n, float *out);
/* tokens (n, context_length) -> out (n, embed_dim), projected, NOT normalised. As above. */
CA_API ca_status ca_model_encode_text(const ca_model *m, const int64_t *tokens, int n, float *out);
/* The compute path the model was loaded for (CA_COMPUTE_*). */
CA_API int ca_model_compute(const ca_model *m);
/* The checkpoint's logit scale, exp(logit_scale) (the reference's zero-shot temperature, 100 for
 * trained CLIP), or 100 when the file has no logit_scale. Thread-safe. */
CA_API float ca_model_logit_scale(const ca_model *m);

/* ---- sessions: the per-thread run state over one shared model ---------------------------- */
/* A session holds what running the encoders writes: activation scratch (kept between calls),
 * the thread budget every kernel of its calls uses, and a cancel flag. Make one per thread that
 * encodes; many sessions may share one model concurrently. A session is used by one thread at
 * a time (ca_session_cancel excepted). */
typedef struct ca_session ca_session;

typedef struct {
    int threads;             /* threads each call may use (0 = the model's params.threads, else
                                the library default); passed down to every kernel, never set
                                process-wide */
} ca_session_params;
CA_API ca_session_params ca_session_default_params(void);

/* New session on m (which must outlive it). p may be NULL (defaults). Returns NULL on failure
 * (*st set). Caller frees with ca_session_free. */
CA_API ca_session *ca_session_new(const ca_model *m, const ca_session_params *p, ca_status *st);
/* Frees the scratch; NULL is a no-op. Not while a call on it runs. */
CA_API void ca_session_free(ca_session *s);
CA_API const ca_model *ca_session_model(const ca_session *s);
/* As ca_model_encode_images / ca_model_encode_text, on the session's model with its scratch and
 * budget. CA_E_CANCELLED when the session was cancelled (before or during the call). */
CA_API ca_status ca_session_encode_images(ca_session *s, const float *images, int n, float *out);
CA_API ca_status ca_session_encode_text(ca_session *s, const int64_t *tokens, int n, float *out);
/* Ask the session to stop: a running call returns CA_E_CANCELLED at its next chunk boundary,
 * and so does every later call until ca_session_resume. Callable from any thread. */
CA_API void ca_session_cancel(ca_session *s);
CA_API void ca_session_resume(ca_session *s);


/* ======================================================================================== */
/* End to end: datasets, prompt templates, feature extraction, classification              */
/* ======================================================================================== */

/* A labelled image dataset: image paths with class labels in three splits. Built from an image
 * folder (root/<class>/<image>) or from a CoOp split file (split_zhou_*.json). Read-only after
 * construction, so one handle may be shared by threads. Caller frees with ca_dataset_free. */
typedef struct ca_dataset ca_dataset;

enum { CA_SPLIT_TRAIN = 0, CA_SPLIT_VAL = 1, CA_SPLIT_TEST = 2 };

typedef struct {
    double val_split;        /* fraction of each class's images moved to val (default 0) */
    double test_split;       /* fraction of each class's images moved to test (default 0) */
    uint64_t seed;           /* which images move (default 1) */
    const char *val_dir;     /* a separate folder with the same class folders, or NULL */
    const char *test_dir;    /* likewise for test */
    const char *const *exclude; /* n_exclude image paths (as ca_dataset_path gives them) to leave
                                 out, as if the files were not there (e.g. undecodable ones) */
    int n_exclude;
} ca_dataset_params;
CA_API ca_dataset_params ca_dataset_default_params(void);

/* Image folder: one sub-folder per class (class name = folder name with '_' -> ' '), classes
 * sorted by folder name; images (.jpg .jpeg .png .bmp .gif .webp .ppm .pgm .pbm .pnm .tif
 * .tiff, any case) anywhere below a class folder belong to it, as in torchvision's ImageFolder
 * (links followed, each folder walked once, so link loops end), sorted by path relative to the
 * class folder. Hidden files and folders are skipped. val_split/test_split rank each class's
 * files by a seeded hash of their own path, so removing one file moves at most one other file
 * per boundary. Fails on an empty class or no classes. */
CA_API ca_dataset *ca_dataset_from_folder(const char *root, const ca_dataset_params *p, ca_status *st);
/* CoOp split file {"train": [[relpath, label, classname], ...], "val": ..., "test": ...};
 * paths are relative to image_root. Labels must be 0..C-1 with one class name each. */
CA_API ca_dataset *ca_dataset_from_split_file(const char *json_path, const char *image_root, ca_status *st);
/* A copy of ds without the n given paths (compared with ca_dataset_path), every other image in
 * the split it was in: for split-file datasets, the same as a split file without those entries.
 * Caller frees with ca_dataset_free. */
CA_API ca_dataset *ca_dataset_drop(const ca_dataset *ds, const char *const *paths, int n, ca_status *st);
CA_API void ca_dataset_free(ca_dataset *ds);
CA_API int ca_dataset_num_classes(const ca_dataset *ds);
CA_API const char *ca_dataset_class_name(const ca_dataset *ds, int c);
/* Number of images in a split (CA_SPLIT_*), 0 for an unknown split. */
CA_API int ca_dataset_size(const ca_dataset *ds, int split);
/* Path of image i of a split (joined with the root; owned by ds), or NULL out of range. */
CA_API const char *ca_dataset_path(const ca_dataset *ds, int split, int i);
CA_API int ca_dataset_label(const ca_dataset *ds, int split, int i);

/* Few-shot subset as CoOp's generate_fewshot_dataset with Python's `random` seeded by seed:
 * classes in order of first appearance in the split, random.sample(items, k) per class (all
 * items when a class has fewer). Same seed, same files -> the same images as CoOp picks.
 * Writes indices into the split to *idx (malloc'd, caller frees) and their count to *n. */
CA_API ca_status ca_dataset_fewshot(const ca_dataset *ds, int split, int k, uint64_t seed, int **idx, int *n);
/* CoOp's protocol for train and val in one generator: k from train, then val_k from val. */
CA_API ca_status ca_dataset_fewshot2(const ca_dataset *ds, int k, int val_k, uint64_t seed,
                                     int **train_idx, int *n_train, int **val_idx, int *n_val);

/* Built-in prompt template sets: "imagenet" (the 7-template ensemble), the 11 few-shot
 * benchmarks as CoOp/Tip-Adapter prompt them ("caltech101", "dtd", "eurosat", "fgvc_aircraft",
 * "food101", "oxford_flowers", "oxford_pets", "stanford_cars", "sun397", "ucf101"; "imagenet"),
 * "stanford_cars8" (the 8 car prompts of ../shared/features text.weights) and "simple"
 * ("a photo of a {}."). Returns a static NULL-terminated list, or NULL for an unknown name. */
CA_API const char *const *ca_templates_builtin(const char *name, int *count);
/* Names of the built-in sets, NULL-terminated, static. */
CA_API const char *const *ca_template_set_names(void);
/* A built-in name, or a file with one template per line, each containing "{}" once (blank lines
 * and lines starting with '#' skipped). Returns a malloc'd array (free with ca_templates_free). */
CA_API char **ca_templates_load(const char *name_or_path, int *count, ca_status *st);
CA_API void ca_templates_free(char **templates, int count);
/* Prompt text: template with "{}" replaced by the class name (malloc'd; NULL on bad template). */
CA_API char *ca_template_format(const char *tmpl, const char *class_name);

/* Text classifier as the reference: for each class, encode every template filled with the class
 * name, L2-normalise each embedding, average, re-normalise. out: (C, embed_dim). The model
 * needs its text tower. Thread-safe on one model; not on one tokenizer (its BPE cache). */
CA_API ca_status ca_text_classifier(const ca_model *m, ca_tokenizer *tok, const char *const *class_names, int C,
                                    const char *const *templates, int T, float *out);
/* The same through a session: every text encode runs on its thread budget and scratch, and a
 * ca_session_cancel (from any thread) stops it at the next chunk with CA_E_CANCELLED (out then
 * partly written). Thread-safe across sessions on one model; the tokenizer is the caller's. */
CA_API ca_status ca_session_text_classifier(ca_session *s, ca_tokenizer *tok, const char *const *class_names,
                                            int C, const char *const *templates, int T, float *out);

/* Per-class prompt lists, the CuPL / APE format: a JSON object {"class name": ["prompt", ...],
 * ...}. A class name finds its list by exact key, else by the key equal up to case, '_' vs ' '
 * and surrounding spaces (when that match is unique). Every list must be a non-empty array of
 * strings; duplicate keys are refused. Read-only after loading (shareable by threads); the
 * caller frees with ca_prompts_free. Errors name the file (`name` for ca_prompts_parse). */
typedef struct ca_prompts ca_prompts;
CA_API ca_prompts *ca_prompts_load(const char *path, ca_status *st);
CA_API ca_prompts *ca_prompts_parse(const char *json, size_t len, const char *name, ca_status *st);
CA_API void ca_prompts_free(ca_prompts *p);
/* Number of classes (keys) in the file. */
CA_API int ca_prompts_count(const ca_prompts *p);
/* The prompt list of a class (owned by p) and its length, or NULL when the file has none. */
CA_API const char *const *ca_prompts_for(const ca_prompts *p, const char *class_name, int *count);
/* Text classifier from per-class prompts: per class, encode its prompts, L2-normalise each
 * embedding, average, re-normalise (as ca_text_classifier does for templates). A class without
 * an entry fails with CA_E_NOTFOUND naming the class and the file; a prompt too long for the
 * context fails with CA_E_RANGE naming the class. out: (C, embed_dim). Thread-safe on one model
 * (a session is made for the call); not on one tokenizer. */
CA_API ca_status ca_text_classifier_prompts(const ca_model *m, ca_tokenizer *tok, const char *const *class_names,
                                            int C, const ca_prompts *prompts, float *out);
/* The same through a session (its budget, scratch and cancel flag, as ca_session_text_classifier). */
CA_API ca_status ca_session_text_classifier_prompts(ca_session *s, ca_tokenizer *tok, const char *const *class_names,
                                                    int C, const ca_prompts *prompts, float *out);

/* Encode image files to L2-normalised features, in chunks; optionally with V augmented views
 * (ca_augment with (seed, ids[i], view)), the feature then being the L2-normalised mean of the
 * raw view features (Tip-Adapter's cache keys); each stored view is normalised on its own. With cache_dir set, each finished chunk is stored there and reused by a
 * later call with the same inputs, so an interrupted run resumes. */
typedef struct {
    int views;                /* 0: centre crop (ca_preprocess); V > 0: V augmented views */
    uint64_t seed;            /* augmentation seed (default 1) */
    int chunk;                /* images per chunk on average (default 64): an image ends a chunk
                                 when a hash of its path and id says so (at most 4x chunk), so
                                 one added or removed image leaves the other chunks' keys alone */
    int batch;                /* encoder inputs per model call (default 64; with V views,
                                 max(1, batch / V) images per call) */
    const char *cache_dir;    /* existing folder for chunk files, or NULL */
    uint64_t cache_salt;      /* mixed into chunk keys: identify the model file (e.g. a hash of
                                 its path, size and mtime) so another model's chunks never match */
    const char *stage;        /* progress stage name (default "encode") */
    ca_progress_fn progress; void *progress_user;   /* units: images */
    int64_t progress_base, progress_total;          /* offsets when several calls share one bar */
    int skip_bad;             /* 1: an image that cannot be decoded gets a zero feature (and
                                 views) and a flag in bad_out instead of failing the call */
    uint8_t *bad_out;         /* (n) caller-owned, or NULL: 1 for each image skipped as undecodable */
} ca_encode_params;
CA_API ca_encode_params ca_encode_default_params(void);
/* paths (n), ids (n: augmentation stream per image, e.g. its dataset index; NULL = 0..n-1).
 * feats: (n, D) out; views_out: (V, n, D) out or NULL. chunks_reused (may be NULL) counts the
 * chunks taken from cache_dir. Errors name the image file. Thread-safe on one model (a session
 * is made for the call); a progress callback asking to stop gives CA_E_CANCELLED. */
CA_API ca_status ca_encode_images(const ca_model *m, const char *const *paths, const uint64_t *ids, int n,
                                  const ca_encode_params *p, float *feats, float *views_out,
                                  int *chunks_reused);
/* The same through a session (its budget, also for decoding; its scratch and cancel flag). */
CA_API ca_status ca_session_encode_image_files(ca_session *s, const char *const *paths, const uint64_t *ids,
                                               int n, const ca_encode_params *p, float *feats,
                                               float *views_out, int *chunks_reused);

/* L2-normalised image feature (embed_dim) of one decoded image, centre-cropped as CLIP.
 * Thread-safe on one model. */
CA_API ca_status ca_image_features(const ca_model *m, const ca_image *img, float *out);
/* Classify one image: probs_out (num_classes) = softmax of the classifier's logits on its
 * feature. The classifier's dim must equal the model's embed_dim. Thread-safe on one model. */
CA_API ca_status ca_classify_image(const ca_model *m, const ca_classifier *c, const ca_image *img, float *probs_out);
/* The same two through a session. */
CA_API ca_status ca_session_image_features(ca_session *s, const ca_image *img, float *out);
CA_API ca_status ca_session_classify_image(ca_session *s, const ca_classifier *c, const ca_image *img,
                                           float *probs_out);
/* Indices of the k largest of v (n), largest first (ties: lower index first). k <= n. */
CA_API void ca_top_k(const float *v, int n, int k, int *idx);

/* Fit a method on split "train.{shots}shot" of a feature set (val and text weights as present);
 * the classifier keeps the set's class names. Caller frees with ca_classifier_free. */
CA_API ca_classifier *ca_fit_features(const char *method, const ca_featureset *fs, int shots,
                                      const ca_fit_params *p, ca_status *st);

#ifdef __cplusplus
}
#endif
#endif /* CLIPADAPT_H */
