/* features.h — internals of the feature-set handle that other layers may read (not public API):
 * its path, for messages that must name the user's file. */
#ifndef CA_FEATURES_H
#define CA_FEATURES_H

#include "core/core.h"

/* The path the set was loaded from (owned by fs, lives as long as it); "" for NULL. */
const char *ca_features_path(const ca_featureset *fs);

#endif
