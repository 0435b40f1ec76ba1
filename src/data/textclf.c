/* textclf.c — CLIP's zero-shot text classifier from class names and prompt templates: tokenize,
 * encode with the text tower, then ca_text_class_vector per class. Separate from templates.c so
 * that template handling links without the model. */
#include "data/templates.h"

#include <string.h>

ca_status ca_text_classifier(const ca_model *m, ca_tokenizer *tok, const char *const *class_names, int C,
                             const char *const *templates, int T, float *out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_text_classifier: bad argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_text_classifier(s, tok, class_names, C, templates, T, out);
    ca_session_free(s);
    return st;
}

ca_status ca_session_text_classifier(ca_session *s, ca_tokenizer *tok, const char *const *class_names, int C,
                                     const char *const *templates, int T, float *out) {
    CA_ENTER();
    const ca_model *m = s ? ca_session_model(s) : NULL;
    if (!m || !tok || !class_names || !templates || !out || C < 1 || T < 1)
        return ca_fail(CA_E_ARG, "ca_text_classifier: bad argument");
    ca_model_info info;
    ca_status st = ca_model_get_info(m, &info);
    if (st != CA_OK) return st;
    if (!info.has_text) return ca_fail(CA_E_ARG, "text classifier: the model has no text tower");
    int D = info.embed_dim, L = info.context_length;
    int64_t *tokens = ca_malloc2((size_t)T * (size_t)L, sizeof(int64_t));
    float *emb = ca_malloc2((size_t)T * (size_t)D, sizeof(float));
    char **texts = calloc((size_t)T, sizeof(char *));
    if (!tokens || !emb || !texts) st = ca_fail(CA_E_NOMEM, "out of memory");
    for (int c = 0; st == CA_OK && c < C; c++) {
        for (int t = 0; t < T; t++) {
            free(texts[t]);
            if (!(texts[t] = ca_template_format(templates[t], class_names[c]))) {
                st = ca_fail(CA_E_ARG, "template %d ('%s') must contain \"{}\" exactly once", t, templates[t]);
                break;
            }
        }
        /* Too-long prompts are an error, as in the reference's clip.tokenize (truncate=False):
         * cutting them would silently change the classifier. */
        if (st == CA_OK) {
            st = ca_tokenize_batch(tok, (const char *const *)texts, T, L, 0, tokens);
            if (st != CA_OK) st = ca_fail(st, "class %d ('%s'): %s", c, class_names[c], ca_last_error());
        }
        if (st == CA_OK) st = ca_session_encode_text(s, tokens, T, emb);
        if (st == CA_OK) ca_text_class_vector(emb, T, D, out + (size_t)c * D);
    }
    if (texts) for (int t = 0; t < T; t++) free(texts[t]);
    free(texts); free(tokens); free(emb);
    return st;
}
