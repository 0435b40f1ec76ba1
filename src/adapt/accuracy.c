/* accuracy.c — top-1 accuracy of logits against labels. It sits in adapt/ because the methods'
 * hyperparameter searches score themselves with it; eval/ (reports, plots) builds on it too. */
#include "core/core.h"

double ca_accuracy(const float *logits, const int32_t *labels, int n, int num_classes) {
    if (!logits || !labels || n <= 0 || num_classes <= 0) return 0.0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *r = logits + (size_t)i * (size_t)num_classes;
        int best = 0;
        for (int j = 1; j < num_classes; j++)
            if (r[j] > r[best]) best = j; /* first maximum wins, as torch.argmax */
        correct += best == labels[i];
    }
    return 100.0 * correct / n;
}
