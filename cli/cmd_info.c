/* cmd_info.c — `clipadapt info`: what a CLIP checkpoint is, as inferred from its tensor shapes
 * (towers, architecture, sizes, parameter count, weight dtype). Loads whichever towers exist.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *config = NULL;
    int act = CA_ACTIVATION_AUTO;
    cli_opt t[] = {
        cli_opt_str("--model", &model, "WEIGHTS", "CLIP checkpoint: safetensors, PyTorch .pt/.bin, TorchScript, "
                                                  "a sharded index or a folder (required)"),
        cli_opt_str("--config", &config, "CONFIG.json", "Hugging Face config.json (optional)"),
        cli_opt_act(&act),
    };
    cli_cmd cmd = {"info", "--model WEIGHTS [--config CONFIG.json] [--act quickgelu|gelu]",
                   "Print the file format found (safetensors, pytorch-zip, torchscript, pytorch-legacy, sharded),\n"
                   "the architecture inferred from a CLIP checkpoint's tensor shapes (towers, ViT or\n"
                   "ModifiedResNet sizes, text transformer sizes, embedding dimension, parameter count, dtype)\n"
                   "and the MLP activation with where it came from. A checkpoint holding one tower only is\n"
                   "described as such.",
                   NULL, t, (int)(sizeof t / sizeof t[0]), NULL};
    int r = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (r) return r == CLI_HELP ? CLI_OK : r;
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
