/* templates.h — internal pieces of the text classifier, exposed for tests. */
#ifndef CA_TEMPLATES_H
#define CA_TEMPLATES_H

#include "core/core.h"

/* emb: (T, D) raw text embeddings of one class -> out (D): L2-normalise each row, average,
 * L2-normalise the mean (CLIP's zero-shot classifier construction). */
void ca_text_class_vector(const float *emb, int T, int D, float *out);
/* The file a prompt set came from (its name for ca_prompts_parse), for messages. */
const char *ca_prompts_name(const ca_prompts *p);

#endif
