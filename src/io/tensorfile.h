/* tensorfile.h — one handle for every checkpoint format: a `ca_st_file` (the safetensors handle of
 * include/clipadapt.h) can also be built by the readers of other formats, so that the model
 * loader, `clipadapt convert` and `info` read any of them through ca_st_count/ca_st_at/ca_st_find.
 * Tensor descriptors point INTO the memory-mapped file wherever the bytes are stored as-is
 * (safetensors, stored zip entries, legacy torch storages); only deflated zip entries and
 * non-contiguous views are copied, into buffers the handle owns. Not public API.
 */
#ifndef CA_IO_TENSORFILE_H
#define CA_IO_TENSORFILE_H

#include "core/core.h"

/* ---- builder, for readers of other formats (safetensors.c implements it) ---- */

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

/* ---- readers ---- */

/* PyTorch checkpoints (torchfile.c): `torch.save` zip archives (>= 1.6), TorchScript archives
 * (`torch.jit.save`, OpenAI's `clip.load` files) and the legacy pre-1.6 stream, read through a
 * restricted pickle machine that builds data only and refuses every other global (CA_E_UNSAFE).
 * `data`/`len` is the whole file, mapped by the caller; on success the handle owns the mapping
 * (map/map_len, munmapped at close; pass map = NULL when data is borrowed for the handle's life,
 * as the fuzz target does); on failure the caller still owns it. Wrapped training checkpoints ({'state_dict': ...}, {'model': ...})
 * are unwrapped and a 'module.' prefix on every name is stripped. */
ca_st_file *ca_torch_open_mem(const char *path, const uint8_t *data, size_t len, void *map, size_t map_len,
                              ca_status *st);
/* 1 when the first bytes look like a PyTorch file (zip local header, or a pickle protocol 2+
 * stream starting with the legacy magic number). */
int ca_torch_sniff(const uint8_t *p, size_t n);

#endif
