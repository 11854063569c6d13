/* dsnn/dsnn.h - everything a plugin needs. */
#ifndef DSNN_DSNN_H
#define DSNN_DSNN_H

#include "dsnn/coactivation.h"
#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/dataset_util.h"
#include "dsnn/dynsparse_rules.h"
#include "dsnn/export.h"
#include "dsnn/gzin.h"
#include "dsnn/io.h"
#include "dsnn/isa.h"
#include "dsnn/keys.h"
#include "dsnn/layer.h"
#include "dsnn/layers.h"
#include "dsnn/metrics.h"
#include "dsnn/net.h"
#include "dsnn/optim.h"
#include "dsnn/plugin.h"
#include "dsnn/prune_grow.h"
#include "dsnn/rng.h"
#include "dsnn/schedules.h"
#include "dsnn/scheme.h"
#include "dsnn/search_space.h"
#include "dsnn/sparse.h"
#include "dsnn/sparse_model.h"
#include "dsnn/status.h"
#include "dsnn/train.h"

/* The SDK's version: the one source of the project's, the CMake package's and the .deb's
 * version (CMakeLists.txt reads it from here). It is tied to the plugin ABI (plugin.h): while
 * the major is 0, the minor is DSNN_ABI_MAJOR (an ABI break is a new minor, so that
 * find_package(dsnn 0.M) refuses an SDK of another ABI major); from 1.0 on, the major is.
 * CMake checks the rule at configure time. */
#define DSNN_VERSION_MAJOR 0
#define DSNN_VERSION_MINOR 3
#define DSNN_VERSION_PATCH 1
#define DSNN_VERSION_STRING "0.3.1"

#endif
