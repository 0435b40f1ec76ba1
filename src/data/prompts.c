/* prompts.c — per-class prompt lists (CuPL / APE JSON: {"class": ["prompt", ...]}): parsing,
 * validation and lookup by class name. It does not encode text (textclf.c does). */
#include "core/core.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <string.h>

typedef struct {
    char *key, *norm;        /* as written; lower-cased, '_' -> ' ', trimmed */
    char **prompts;
    int n;
} entry;

struct ca_prompts {
    entry *e;
    int n;
    char *name;              /* the file, for messages */
};

void ca_prompts_free(ca_prompts *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        for (int j = 0; j < p->e[i].n; j++) free(p->e[i].prompts[j]);
        free(p->e[i].prompts); free(p->e[i].key); free(p->e[i].norm);
    }
    free(p->e);
    free(p->name);
    free(p);
}

/* lower-case ASCII, '_' as ' ', runs of spaces as one, no leading/trailing space */
static char *normalise(const char *s) {
    char *o = malloc(strlen(s) + 1);
    if (!o) return NULL;
    size_t n = 0;
    for (; *s; s++) {
        char c = *s == '_' ? ' ' : (char)tolower((unsigned char)*s);
        if (c == ' ' && (n == 0 || o[n - 1] == ' ')) continue;
        o[n++] = c;
    }
    while (n && o[n - 1] == ' ') n--;
    o[n] = 0;
    return o;
}

ca_prompts *ca_prompts_parse(const char *json, size_t len, const char *name, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    if (!name) name = "prompts";
    if (!json) { *st = ca_fail(CA_E_ARG, "%s: no data", name); return NULL; }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) { *st = ca_fail(CA_E_FORMAT, "%s: not valid JSON (near byte %zu)", name, (size_t)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0)); return NULL; }
    ca_prompts *p = calloc(1, sizeof *p);
    int n = cJSON_GetArraySize(root);
    *st = CA_OK;
    if (!p) *st = ca_fail(CA_E_NOMEM, "out of memory");
    else if (!cJSON_IsObject(root)) *st = ca_fail(CA_E_FORMAT, "%s: expected a JSON object {\"class name\": [\"prompt\", ...]}", name);
    else if (n == 0) *st = ca_fail(CA_E_FORMAT, "%s: no classes", name);
    else if (!(p->e = calloc((size_t)n, sizeof *p->e)) || !(p->name = strdup(name))) *st = ca_fail(CA_E_NOMEM, "out of memory");
    for (cJSON *it = *st == CA_OK ? root->child : NULL; it && *st == CA_OK; it = it->next) {
        const char *key = it->string ? it->string : "";
        for (int i = 0; i < p->n; i++)
            if (!strcmp(p->e[i].key, key)) { *st = ca_fail(CA_E_FORMAT, "%s: class '%s' appears twice", name, key); break; }
        if (*st != CA_OK) break;
        int m = cJSON_GetArraySize(it);
        if (!cJSON_IsArray(it) || m == 0) { *st = ca_fail(CA_E_FORMAT, "%s: class '%s': expected a non-empty array of prompt strings", name, key); break; }
        entry *e = &p->e[p->n++];
        if (!(e->key = strdup(key)) || !(e->norm = normalise(key)) || !(e->prompts = calloc((size_t)m, sizeof(char *)))) { *st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
        for (cJSON *q = it->child; q; q = q->next) {
            if (!cJSON_IsString(q) || !q->valuestring[0]) { *st = ca_fail(CA_E_FORMAT, "%s: class '%s': prompt %d is not a non-empty string", name, key, e->n); break; }
            if (!(e->prompts[e->n] = strdup(q->valuestring))) { *st = ca_fail(CA_E_NOMEM, "out of memory"); break; }
            e->n++;
        }
    }
    cJSON_Delete(root);
    if (*st != CA_OK) { ca_prompts_free(p); return NULL; }
    return p;
}

ca_prompts *ca_prompts_load(const char *path, ca_status *st) {
    CA_ENTER();
    ca_status s_;
    if (!st) st = &s_;
    size_t len;
    char *text = ca_read_file(path, &len, st);
    if (!text) return NULL;
    ca_prompts *p = ca_prompts_parse(text, len, path, st);
    free(text);
    return p;
}

int ca_prompts_count(const ca_prompts *p) { return p ? p->n : 0; }

const char *ca_prompts_name(const ca_prompts *p) { return p && p->name ? p->name : "prompts"; }

const char *const *ca_prompts_for(const ca_prompts *p, const char *class_name, int *count) {
    if (count) *count = 0;
    if (!p || !class_name) return NULL;
    const entry *hit = NULL;
    for (int i = 0; i < p->n && !hit; i++)
        if (!strcmp(p->e[i].key, class_name)) hit = &p->e[i];
    if (!hit) {
        char *nm = normalise(class_name);
        int matches = 0;
        for (int i = 0; nm && i < p->n; i++)
            if (!strcmp(p->e[i].norm, nm)) { hit = &p->e[i]; matches++; }
        free(nm);
        if (matches != 1) hit = NULL;   /* ambiguous keys never pick one silently */
    }
    if (!hit) return NULL;
    if (count) *count = hit->n;
    return (const char *const *)hit->prompts;
}
