/* cmd_info.c — `clipadapt info`: what a CLIP checkpoint is, as inferred from its tensor shapes
 * (towers, architecture, sizes, parameter count, weight dtype). Loads whichever towers exist.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char *HELP =
    "usage: clipadapt info --model WEIGHTS [--config CONFIG.json] [--act quickgelu|gelu]\n\n"
    "Print the file format found (safetensors, pytorch-zip, torchscript, pytorch-legacy, sharded),\n"
    "the architecture inferred from a CLIP checkpoint's tensor shapes (towers, ViT or\n"
    "ModifiedResNet sizes, text transformer sizes, embedding dimension, parameter count, dtype)\n"
    "and the MLP activation with where it came from. A checkpoint holding one tower only is\n"
    "described as such.\n";

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *v;
    int act = CA_ACTIVATION_AUTO;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(HELP, stdout); return CLI_OK; }
        if ((r = cli_take(argc, argv, &i, "--model", &model)) || (r = cli_take(argc, argv, &i, "--config", &config))) {
            if (r < 0) return cli_usage("info", "%s needs a value", argv[i]);
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--act", &v))) {
            if (r < 0 || cli_act(v, &act)) return cli_usage("info", "--act needs quickgelu or gelu");
            continue;
        }
        return cli_usage("info", "unknown option '%s'", argv[i]);
    }
    if (!model) return cli_usage("info", "--model is required");

    /* Both towers first; a one-tower checkpoint then loads as such. The first error is the one
     * reported when nothing loads. */
    static const int towers[3][2] = {{1, 1}, {1, 0}, {0, 1}};
    ca_model *m = NULL;
    ca_status st = CA_OK, first = CA_OK;
    char err[1024] = "";
    for (int k = 0; k < 3 && !m; k++) {
        ca_model_params p = ca_model_default_params();
        p.config_path = config;
        p.activation = act;
        p.load_vision = towers[k][0];
        p.load_text = towers[k][1];
        m = ca_model_load(model, &p, &st);
        if (!m && k == 0) {
            first = st;
            snprintf(err, sizeof err, "%s", ca_last_error());
            if (st != CA_E_NOTFOUND) break; /* only a missing tower is worth retrying */
        }
    }
    if (!m) return cli_error("%s", err[0] ? err : ca_strerror(first));
    ca_model_info in;
    ca_model_get_info(m, &in);
    printf("model:       %s\n", model);
    printf("format:      %s\n", in.format);
    printf("names:       %s\n", in.naming);
    printf("dtype:       %s\n", ca_dtype_name(in.dtype));
    if (in.has_vision && in.is_vit)
        printf("vision:      ViT, image %d, patch %d, width %d, layers %d, heads %d\n", in.image_size, in.patch_size,
               in.vision_width, in.vision_layers, in.vision_heads);
    else if (in.has_vision)
        printf("vision:      ModifiedResNet, image %d, width %d, stages (%d,%d,%d,%d), attention-pool heads %d\n",
               in.image_size, in.vision_width, in.rn_layers[0], in.rn_layers[1], in.rn_layers[2], in.rn_layers[3],
               in.vision_heads);
    else
        printf("vision:      (none)\n");
    if (in.has_text)
        printf("text:        width %d, layers %d, heads %d, context %d, vocab %d\n", in.text_width, in.text_layers,
               in.text_heads, in.context_length, in.vocab_size);
    else
        printf("text:        (none)\n");
    printf("embed dim:   %d\n", in.embed_dim);
    printf("activation:  %s (%s)\n", in.activation, in.activation_source);
    printf("parameters:  %lld (%.2f M)\n", (long long)in.n_params, in.n_params / 1e6);
    printf("logit scale: %.4f\n", ca_model_logit_scale(m));
    ca_model_free(m);
    return CLI_OK;
}
