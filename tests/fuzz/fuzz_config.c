/* tests/fuzz/fuzz_config.c - the configuration as `dsnn-host run` checks it before anything
 * runs: libconfig text parsed (dsnn_config_file_load), the experiment group read and
 * range-checked, every group checked against its plugin's keys in a registry of all shipped
 * plugins (rn_setup), then every trial the search strategy proposes up front built and
 * validated (rn_validate_upfront). Nothing runs and nothing is written.
 *
 * Input: a configuration file. */
#include "runner_impl.h"

#include <unistd.h>

#include "fuzz_plugins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4096];
    fuzz_write(fuzz_path(path, "experiment.cfg"), data, size);
    struct experiment ex = {.cfg_path = path, .quiet = true, .lock_fd = -1};
    struct dsnn_error err = {0};
    int code = 0;
    if (fuzz_report("setup", rn_setup(&ex, fuzz_registry(), &code, &err), &err) == DSNN_OK)
        (void)fuzz_report("upfront", rn_validate_upfront(&ex, &err), &err);
    rn_experiment_release(&ex);
    unlink(path);
    return 0;
}
