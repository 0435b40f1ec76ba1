/* templates.c — prompt templates (built-in sets as CoOp/Tip-Adapter prompt the 11 few-shot
 * benchmarks, the 7-template ImageNet ensemble, or a user file) and the text classifier built
 * from them: per class the re-normalised mean of normalised prompt embeddings.
 */
#include "data/templates.h"

#include <math.h>
#include <string.h>

static const char *const T_SIMPLE[] = {"a photo of a {}.", NULL};
static const char *const T_IMAGENET[] = {
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.", NULL};
static const char *const T_PETS[] = {"a photo of a {}, a type of pet.", NULL};
static const char *const T_FLOWERS[] = {"a photo of a {}, a type of flower.", NULL};
static const char *const T_AIRCRAFT[] = {"a photo of a {}, a type of aircraft.", NULL};
static const char *const T_FOOD[] = {"a photo of {}, a type of food.", NULL};
static const char *const T_DTD[] = {"{} texture.", NULL};
static const char *const T_EUROSAT[] = {"a centered satellite photo of {}.", NULL};
static const char *const T_UCF[] = {"a photo of a person doing {}.", NULL};
static const char *const T_CARS8[] = {
    "a photo of a {}.", "a photo of the {}.", "a photo of my {}.", "i love my {}!",
    "a photo of my dirty {}.", "a photo of my clean {}.", "a photo of my new {}.", "a photo of my old {}.", NULL};

static const struct { const char *name; const char *const *t; } SETS[] = {
    {"simple", T_SIMPLE},
    {"imagenet", T_IMAGENET},
    {"caltech101", T_SIMPLE},
    {"dtd", T_DTD},
    {"eurosat", T_EUROSAT},
    {"fgvc_aircraft", T_AIRCRAFT},
    {"food101", T_FOOD},
    {"oxford_flowers", T_FLOWERS},
    {"oxford_pets", T_PETS},
    {"stanford_cars", T_SIMPLE},
    {"stanford_cars8", T_CARS8},
    {"sun397", T_SIMPLE},
    {"ucf101", T_UCF},
};
#define N_SETS (sizeof SETS / sizeof SETS[0])

const char *const *ca_template_set_names(void) {
    static const char *names[N_SETS + 1];
    for (size_t i = 0; i < N_SETS; i++) names[i] = SETS[i].name;
    names[N_SETS] = NULL;
    return names;
}

const char *const *ca_templates_builtin(const char *name, int *count) {
    for (size_t i = 0; name && i < N_SETS; i++)
        if (strcmp(SETS[i].name, name) == 0) {
            int n = 0;
            while (SETS[i].t[n]) n++;
            if (count) *count = n;
            return SETS[i].t;
        }
    if (count) *count = 0;
    return NULL;
}

void ca_templates_free(char **templates, int count) {
    if (!templates) return;
    for (int i = 0; i < count; i++) free(templates[i]);
    free(templates);
}

/* Exactly one "{}" and no other braces' meaning: the reference uses str.format with one field. */
static int valid_template(const char *t) {
    const char *p = strstr(t, "{}");
    return p && !strstr(p + 2, "{}");
}

char *ca_template_format(const char *tmpl, const char *class_name) {
    CA_ENTER();
    if (!tmpl || !class_name || !valid_template(tmpl)) return NULL;
    const char *p = strstr(tmpl, "{}");
    size_t a = (size_t)(p - tmpl), b = strlen(class_name), c = strlen(p + 2);
    char *s = malloc(a + b + c + 1);
    if (!s) return NULL;
    memcpy(s, tmpl, a);
    memcpy(s + a, class_name, b);
    memcpy(s + a + b, p + 2, c + 1);
    return s;
}

char **ca_templates_load(const char *name_or_path, int *count, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    *count = 0;
    if (!name_or_path) { *st = ca_fail(CA_E_ARG, "templates: NULL name"); return NULL; }
    int n = 0;
    const char *const *b = ca_templates_builtin(name_or_path, &n);
    if (b) {
        char **v = calloc((size_t)n, sizeof(char *));
        for (int i = 0; v && i < n; i++)
            if (!(v[i] = strdup(b[i]))) { ca_templates_free(v, i); v = NULL; }
        if (!v) { *st = ca_fail(CA_E_NOMEM, "out of memory"); return NULL; }
        *count = n; *st = CA_OK;
        return v;
    }
    size_t len;
    char *text = ca_read_file(name_or_path, &len, st);
    if (!text) {
        *st = ca_fail(CA_E_NOTFOUND, "templates '%s': neither a built-in set nor a readable file (%s)", name_or_path, ca_last_error());
        return NULL;
    }
    if (strlen(text) != len) { free(text); *st = ca_fail(CA_E_FORMAT, "%s: contains a NUL byte", name_or_path); return NULL; }
    char **v = NULL;
    int cap = 0, line = 0;
    *st = CA_OK;
    for (char *l = text, *nl; l && *st == CA_OK; l = nl) {
        nl = strchr(l, '\n');
        if (nl) *nl++ = 0;
        line++;
        size_t ll = strlen(l);
        while (ll && (l[ll - 1] == '\r' || l[ll - 1] == ' ' || l[ll - 1] == '\t')) l[--ll] = 0;
        while (*l == ' ' || *l == '\t') l++;
        if (!*l || *l == '#') continue;
        if (!valid_template(l)) { *st = ca_fail(CA_E_FORMAT, "%s:%d: template must contain \"{}\" exactly once: '%s'", name_or_path, line, l); break; }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, sizeof(char *) * (size_t)cap);
            if (!nv) { *st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
            v = nv;
        }
        if (!(v[n] = strdup(l))) *st = ca_fail(CA_E_NOMEM, "out of memory");
        else n++;
    }
    free(text);
    if (*st == CA_OK && n == 0) *st = ca_fail(CA_E_FORMAT, "%s: no templates (one per line, each with \"{}\")", name_or_path);
    if (*st != CA_OK) { ca_templates_free(v, n); return NULL; }
    *count = n;
    return v;
}

/* emb: (T, D) raw text embeddings of one class -> out (D): normalise rows, mean, normalise. */
void ca_text_class_vector(const float *emb, int T, int D, float *out) {
    for (int d = 0; d < D; d++) out[d] = 0;
    for (int t = 0; t < T; t++) {
        const float *e = emb + (size_t)t * D;
        float inv = ca_inv_norm(e, D);
        for (int d = 0; d < D; d++) out[d] += e[d] * inv;
    }
    for (int d = 0; d < D; d++) out[d] /= (float)T;
    ca_l2_normalize(out, D);
}
