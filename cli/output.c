/* output.c — the CLI's output policy, checked before any work: no output may be an input (same
 * device and inode, or inside an input folder), an existing directory, a second output, or sit in
 * a folder that cannot be written; and the final check of standard output. Writing itself is the
 * library's one routine (ca_outfile: atomic replace, links followed, special files written in
 * place, "-" = stdout). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Canonical path of an existing file, or of a new file's folder plus its name. malloc'd; NULL when
 * the folder does not exist (errno set). */
static char *canonical(const char *path) {
    char *r = realpath(path, NULL);
    if (r || errno != ENOENT) return r;
    struct stat sb;
    if (stat(path, &sb) == 0) return strdup(path);   /* exists but has no name (/dev/stdout -> pipe) */
    /* a new file (or a dangling link: its target is created, so resolve the link by hand) */
    char link[PATH_MAX];
    struct stat lb;
    const char *p = path;
    if (lstat(path, &lb) == 0 && S_ISLNK(lb.st_mode)) {
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = 0;
            const char *slash = strrchr(path, '/');
            if (link[0] != '/' && slash) {   /* relative to the link's folder */
                size_t dl = (size_t)(slash - path) + 1, ln = strlen(link);
                if (dl + ln < sizeof link) { memmove(link + dl, link, ln + 1); memcpy(link, path, dl); }
            }
            p = link;
        }
    }
    const char *slash = strrchr(p, '/');
    char dir[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == p) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - p), p);
    char *d = realpath(dir, NULL);
    if (!d) return NULL;
    const char *base = slash ? slash + 1 : p;
    size_t n = strlen(d) + strlen(base) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", strcmp(d, "/") ? d : "", base);
    free(d);
    return out;
}

static int under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

int cli_check_outputs(const cli_file *in, int nin, const cli_file *out, int nout) {
    int to_stdout = -1;
    for (int i = 0; i < nout; i++) {
        const char *path = out[i].path;
        if (!path) continue;
        if (!*path) return cli_error("%s: the output path is empty", out[i].flag);
        if (!strcmp(path, "-")) {
            if (to_stdout >= 0) return cli_error("%s and %s both write to standard output ('-')", out[to_stdout].flag, out[i].flag);
            to_stdout = i;
            continue;
        }
        char *canon = canonical(path);
        if (!canon) {
            if (errno == ENOENT || errno == ENOTDIR) return cli_error("%s: cannot create: its folder does not exist", path);
            return cli_error("%s: cannot resolve: %s", path, strerror(errno));
        }
        struct stat sb;
        int exists = stat(canon, &sb) == 0, rc = CLI_OK;
        if (exists && S_ISDIR(sb.st_mode)) rc = cli_error("%s: is a directory (%s wants a file)", path, out[i].flag);
        for (int j = 0; rc == CLI_OK && j < nin; j++) {
            if (!in[j].path || !strcmp(in[j].path, "-")) continue;
            struct stat ib;
            if (stat(in[j].path, &ib) != 0) continue;   /* a missing input is reported where it is read */
            if (exists && ib.st_dev == sb.st_dev && ib.st_ino == sb.st_ino) {
                rc = cli_error("%s: is the same file as the %s input %s; refusing to overwrite an input", path, in[j].flag, in[j].path);
            } else if (exists && S_ISREG(sb.st_mode) && !in[j].dir) {
                /* a checkpoint read through its folder or its sharded index: every file it names */
                int nf = 0;
                char **fs = ca_weights_files(in[j].path, &nf, NULL);
                for (int k = 0; k < nf && rc == CLI_OK; k++) {
                    struct stat fb;
                    const char *what = nf > 1 ? (k ? "shard" : "index") : "checkpoint";
                    if (stat(fs[k], &fb) == 0 && fb.st_dev == sb.st_dev && fb.st_ino == sb.st_ino)
                        rc = cli_error("%s: is the same file as the %s input's %s %s; refusing to overwrite an input", path,
                                       in[j].flag, what, fs[k]);
                }
                ca_weights_files_free(fs);
            } else if (in[j].dir && S_ISDIR(ib.st_mode)) {
                char *d = realpath(in[j].path, NULL);
                if (d && under(canon, d))
                    rc = cli_error("%s: is inside the %s folder %s; refusing to write into an input folder", path, in[j].flag, in[j].path);
                free(d);
            }
        }
        for (int j = 0; rc == CLI_OK && j < i; j++) {
            char *other = out[j].path && strcmp(out[j].path, "-") ? canonical(out[j].path) : NULL;
            if (other && !strcmp(other, canon)) rc = cli_error("%s: given for both %s and %s", path, out[j].flag, out[i].flag);
            free(other);
        }
        if (rc == CLI_OK) {
            if (exists && !S_ISREG(sb.st_mode)) {   /* FIFO, device: written in place */
                if (access(canon, W_OK) != 0) rc = cli_error("%s: cannot write: %s", path, strerror(errno));
            } else {                                /* regular or new: a temporary in its folder */
                char *slash = strrchr(canon, '/');
                char dir[PATH_MAX];
                snprintf(dir, sizeof dir, "%.*s", slash == canon ? 1 : (int)(slash - canon), canon);
                if (access(dir, W_OK | X_OK) != 0) rc = cli_error("%s: cannot write in its folder %s: %s", path, dir, strerror(errno));
            }
        }
        free(canon);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

int cli_finish_stdout(int rc) {
    errno = 0;
    int bad = ferror(stdout), e = errno;
    if (fflush(stdout) != 0) { bad = 1; e = errno; }
    if (fclose(stdout) != 0 && !bad) { bad = 1; e = errno; }
    if (!bad || rc != CLI_OK) return rc;   /* a failed command has said why already */
    fprintf(stderr, "clipadapt: error: standard output: write failed: %s\n", strerror(e ? e : EIO));
    return CLI_FAIL;
}
