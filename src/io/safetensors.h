/* safetensors.h — internal additions to the safetensors reader of include/clipadapt.h, for
 * callers that stream a whole checkpoint once (the model loader). Not public API. */
#ifndef CA_IO_SAFETENSORS_H
#define CA_IO_SAFETENSORS_H

#include "core/core.h"

/* Hint that tensor t of f has been read and will not be again soon: the file pages holding its
 * bytes leave this process's resident memory (they stay valid: touching them again re-reads them
 * from the file / page cache). Lets a loader converting tensor by tensor hold only its output,
 * not the output plus the whole mapped file. No-op where madvise is unavailable. */
void ca_st_drop_pages(const ca_st_file *f, const ca_tensor_info *t);

/* ---- building a handle from another format: every checkpoint format is read into one
 * ca_st_file, so the model loader, `clipadapt convert` and `info` read any of them alike. Tensor
 * descriptors point INTO the memory-mapped file wherever the bytes are stored as-is
 * (safetensors, stored zip entries, legacy torch storages); only deflated zip entries and
 * non-contiguous views are copied, into buffers the handle owns. ---- */

/* An empty handle named path (copied), of the given static format name. Caller closes. */
ca_st_file *ca_st_new(const char *path, const char *format);
void ca_st_set_format(ca_st_file *f, const char *format);
/* The handle owns (munmaps at close) one read-only file mapping; ca_st_drop_pages works in it. */
ca_status ca_st_keep_map(ca_st_file *f, void *map, size_t len);
/* The handle owns (frees at close) a malloc'd buffer; freed at once when this fails. */
ca_status ca_st_keep_buf(ca_st_file *f, void *buf);
/* The handle owns (closes at close) another handle: the shards of a sharded checkpoint. */
ca_status ca_st_keep_file(ca_st_file *f, ca_st_file *kid);
/* Add a tensor descriptor (name copied; data borrowed: it must live in a mapping or buffer the
 * handle owns). nbytes must equal numel x dtype size. */
ca_status ca_st_add(ca_st_file *f, const char *name, ca_dtype dt, int ndim, const int64_t *shape,
                    const void *data, size_t nbytes);
ca_status ca_st_add_metadata(ca_st_file *f, const char *key, const char *val);
/* CA_E_FORMAT naming the first tensor name that appears twice. */
ca_status ca_st_check_unique(const ca_st_file *f);

#endif
