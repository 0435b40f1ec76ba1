/* textclf.c — CLIP's zero-shot text classifier from class names and prompt templates, or from
 * per-class prompt lists: tokenize, encode with the text tower, then ca_text_class_vector per
 * class. Separate from templates.c and prompts.c so that those link without the model. */
#include "data/templates.h"

#include <string.h>

/* One class: encode its T prompts on the session and reduce them into out (D). tokens (T,L), emb
 * (T,D) scratch. The session's encode checks its cancel flag on entry and at chunk boundaries. */
static ca_status class_vector(ca_session *s, ca_tokenizer *tok, const char *class_name, const char *const *texts,
                              int T, int L, int D, int64_t *tokens, float *emb, float *out) {
    /* Too-long prompts are an error, as in the reference's clip.tokenize (truncate=False):
     * cutting them would silently change the classifier. */
    ca_status st = ca_tokenize_batch(tok, texts, T, L, 0, tokens);
    if (st != CA_OK) return ca_fail(st, "class '%s': %s", class_name, ca_last_error());
    if ((st = ca_session_encode_text(s, tokens, T, emb)) != CA_OK) return st;
    ca_text_class_vector(emb, T, D, out);
    return CA_OK;
}

static ca_status text_dims(const ca_model *m, int *D, int *L) {
    ca_model_info info;
    ca_status st = ca_model_get_info(m, &info);
    if (st != CA_OK) return st;
    if (!info.has_text) return ca_fail(CA_E_ARG, "text classifier: the model has no text tower");
    *D = info.embed_dim; *L = info.context_length;
    return CA_OK;
}

ca_status ca_session_text_classifier(ca_session *s, ca_tokenizer *tok, const char *const *class_names, int C,
                                     const char *const *templates, int T, float *out) {
    CA_ENTER();
    if (!s || !tok || !class_names || !templates || !out || C < 1 || T < 1)
        return ca_fail(CA_E_ARG, "ca_session_text_classifier: bad argument");
    int D = 0, L = 0;
    ca_status st = text_dims(ca_session_model(s), &D, &L);
    if (st != CA_OK) return st;
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
        if (st == CA_OK) st = class_vector(s, tok, class_names[c], (const char *const *)texts, T, L, D, tokens, emb, out + (size_t)c * D);
    }
    if (texts) for (int t = 0; t < T; t++) free(texts[t]);
    free(texts); free(tokens); free(emb);
    return st;
}

ca_status ca_session_text_classifier_prompts(ca_session *s, ca_tokenizer *tok, const char *const *class_names,
                                             int C, const ca_prompts *prompts, float *out) {
    CA_ENTER();
    if (!s || !tok || !class_names || !prompts || !out || C < 1)
        return ca_fail(CA_E_ARG, "ca_session_text_classifier_prompts: bad argument");
    int D = 0, L = 0, Tmax = 0;
    ca_status st = text_dims(ca_session_model(s), &D, &L);
    if (st != CA_OK) return st;
    /* every class must have its prompts before any encoding starts */
    for (int c = 0; c < C; c++) {
        int T = 0;
        if (!ca_prompts_for(prompts, class_names[c], &T))
            return ca_fail(CA_E_NOTFOUND, "%s: no prompts for class '%s'", ca_prompts_name(prompts), class_names[c]);
        if (T > Tmax) Tmax = T;
    }
    int64_t *tokens = ca_malloc2((size_t)Tmax * (size_t)L, sizeof(int64_t));
    float *emb = ca_malloc2((size_t)Tmax * (size_t)D, sizeof(float));
    if (!tokens || !emb) st = ca_fail(CA_E_NOMEM, "out of memory");
    for (int c = 0; st == CA_OK && c < C; c++) {
        int T = 0;
        const char *const *texts = ca_prompts_for(prompts, class_names[c], &T);
        st = class_vector(s, tok, class_names[c], texts, T, L, D, tokens, emb, out + (size_t)c * D);
        /* a cancel is the caller's doing, not the file's: its message stays as it is */
        if (st != CA_OK && st != CA_E_NOMEM && st != CA_E_CANCELLED)
            st = ca_fail(st, "%s: %s", ca_prompts_name(prompts), ca_last_error());
    }
    free(tokens); free(emb);
    return st;
}

/* The one-call forms: a session made for the call (the model's default thread budget). */
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

ca_status ca_text_classifier_prompts(const ca_model *m, ca_tokenizer *tok, const char *const *class_names, int C,
                                     const ca_prompts *prompts, float *out) {
    CA_ENTER();
    if (!m) return ca_fail(CA_E_ARG, "ca_text_classifier_prompts: bad argument");
    ca_status st;
    ca_session *s = ca_session_new(m, NULL, &st);
    if (!s) return st;
    st = ca_session_text_classifier_prompts(s, tok, class_names, C, prompts, out);
    ca_session_free(s);
    return st;
}
