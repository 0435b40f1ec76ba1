/* torchfile.h — the PyTorch checkpoint reader (torchfile.c), for the format dispatcher
 * (tensorfile.c, ca_weights_open) and the fuzz target. Not public API. */
#ifndef CA_IO_TORCHFILE_H
#define CA_IO_TORCHFILE_H

#include "io/safetensors.h"

/* PyTorch checkpoints (torchfile.c): `torch.save` zip archives (>= 1.6), TorchScript archives
 * (`torch.jit.save`, OpenAI's `clip.load` files) and the legacy pre-1.6 stream, read through a
 * restricted pickle machine that builds data only and refuses every other global (CA_E_UNSAFE).
 * `data`/`len` is the whole file, mapped by the caller; on success the handle owns the mapping
 * (map/map_len, munmapped at close; pass map = NULL when data is borrowed for the handle's life,
 * as the fuzz target does); on failure the caller still owns it. Wrapped training checkpoints
 * ({'state_dict': ...}, {'model': ...}) are unwrapped and a 'module.' prefix on every name is
 * stripped. */
ca_st_file *ca_torch_open_mem(const char *path, const uint8_t *data, size_t len, void *map, size_t map_len,
                              ca_status *st);
/* 1 when the first bytes look like a PyTorch file (zip local header, or a pickle protocol 2+
 * stream starting with the legacy magic number). */
int ca_torch_sniff(const uint8_t *p, size_t n);

#endif
