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

#define DSNN_VERSION_MAJOR 0
#define DSNN_VERSION_MINOR 1
#define DSNN_VERSION_PATCH 0
#define DSNN_VERSION_STRING "0.1.0"

#endif
