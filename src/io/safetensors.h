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

#endif
