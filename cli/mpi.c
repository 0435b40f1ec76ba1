/* mpi.c — `mpirun -np N clipadapt-mpi extract|predict ...`: rank R runs the command as
 * `--shard R/N --output OUT.part-R-of-N`, then rank 0 merges the parts into OUT (byte-identical to
 * one process) and removes them. Parts are named preds.part-R-of-N.jsonl (extension last). Built only into build/clipadapt-mpi (make MPI=1 or when mpicc
 * exists); build/clipadapt stays MPI-free, and this file compiles to nothing there. */
#ifdef CA_MPI
#include "cli.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OUT's part for rank r: "preds.part-2-of-4.jsonl", the extension kept last because predict
 * chooses its format from it. */
static void part_name(char *buf, size_t n, const char *out, int r, int size) {
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out)) dot = out + strlen(out);
    snprintf(buf, n, "%.*s.part-%d-of-%d%s", (int)(dot - out), out, r, size, dot);
}

int cli_mpi_run(int (*run)(int, char **), int argc, char **argv) {
    int rank = 0, size = 1;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rc = CLI_OK, shardable = !strcmp(argv[0], "extract") || !strcmp(argv[0], "predict");
    if (size == 1 || !shardable) {   /* one rank, or a command with nothing to split: rank 0 does it */
        rc = rank == 0 ? run(argc, argv) : CLI_OK;
        MPI_Finalize();
        return rc;
    }
    const char *out = NULL;
    int oi = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shard")) { out = NULL; oi = -2; break; }
        if (!strcmp(argv[i], "--output") && i + 1 < argc) { out = argv[i + 1]; oi = i + 1; }
        else if (!strncmp(argv[i], "--output=", 9)) { out = argv[i] + 9; oi = i; }
    }
    if (oi == -2) rc = rank == 0 ? cli_usage(argv[0], "under mpirun the ranks are the shards; leave out --shard") : CLI_USAGE;
    else if (!out || !*out || !strcmp(out, "-")) rc = rank == 0 ? cli_usage(argv[0], "under mpirun give --output FILE (each rank writes a part beside it)") : CLI_USAGE;
    char shard[32], *part = NULL, **av = NULL;
    if (rc == CLI_OK) {
        size_t pl = strlen(out) + 48;
        part = malloc(pl);
        av = calloc((size_t)argc + 3, sizeof(char *));
        if (!part || !av) rc = cli_error("out of memory");
        else {
            int eq = !strncmp(argv[oi], "--output=", 9);   /* --output=F: the slot holds the flag too */
            if (eq) strcpy(part, "--output=");
            part_name(part + (eq ? 9 : 0), pl - 9, out, rank, size);
            snprintf(shard, sizeof shard, "%d/%d", rank, size);
            for (int i = 0; i < argc; i++) av[i] = i == oi ? part : argv[i];
            av[argc] = "--shard"; av[argc + 1] = shard;
            rc = run(argc + 2, av);
        }
    }
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    const char *mine = part ? (!strncmp(part, "--output=", 9) ? part + 9 : part) : NULL;
    if (worst == CLI_OK) {
        if (rank == 0) {   /* merge the parts, named in rank order */
            char **mv = calloc((size_t)size + 4, sizeof(char *));
            size_t pl = strlen(out) + 48;
            int ok = mv != NULL;
            if (mv) mv[0] = "merge";
            for (int r = 0; ok && r < size; r++) {
                if (!(mv[r + 1] = malloc(pl))) { ok = 0; break; }
                part_name(mv[r + 1], pl, out, r, size);
            }
            if (ok) {
                mv[size + 1] = "--output"; mv[size + 2] = (char *)out;
                worst = cmd_merge(size + 3, mv);
                for (int r = 0; worst == CLI_OK && r < size; r++) remove(mv[r + 1]);
            } else {
                worst = cli_error("out of memory");
            }
            for (int r = 0; mv && r < size; r++) free(mv[r + 1]);
            free(mv);
        }
        MPI_Bcast(&worst, 1, MPI_INT, 0, MPI_COMM_WORLD);
    } else if (mine && rc == CLI_OK) {
        remove(mine);   /* another rank failed: no partial result (its own message says why) */
    }
    free(part); free(av);
    MPI_Finalize();
    return rank == 0 ? worst : (worst == CLI_OK ? CLI_OK : rc);
}
#endif
