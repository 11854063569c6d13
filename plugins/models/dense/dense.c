/* dense - model plugin: plain supervised training of a dense network (nupic BaseModel).
 *
 *     model = { plugin = "dense"; optim_alg = "SGD"; learning_rate = 0.01; momentum = 0.9;
 *               lr_scheduler = "StepLR"; lr_step_size = 1; lr_gamma = 0.9; };
 *
 * Per epoch: train_loss, train_acc, learning_rate, val_loss, val_acc, n_params. */
#include <dsnn/dsnn.h>

static const struct dsnn_key_spec dense_keys[] = {
    DSNN_KEY_PLUGIN("dense"),
    DSNN_BASE_MODEL_KEYS,
};

static const struct dsnn_scheme dense_scheme = {.flags = DSNN_SCHEME_DENSE};
DSNN_SCHEME_PLUGIN("dense", "1.0.0",
                   "Dense supervised training (nupic BaseModel): SGD/Adam, StepLR/MultiStepLR",
                   dense_scheme, dense_keys)
