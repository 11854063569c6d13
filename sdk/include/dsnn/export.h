/* dsnn/export.h - symbol visibility for libdsnn and plugins. */
#ifndef DSNN_EXPORT_H
#define DSNN_EXPORT_H

#if defined(__GNUC__)
#define DSNN_VISIBLE __attribute__((visibility("default")))
#else
#define DSNN_VISIBLE
#endif

/* DSNN_API marks the public functions of libdsnn (everything else is hidden). */
#define DSNN_API DSNN_VISIBLE
/* DSNN_PLUGIN_EXPORT marks the one symbol a plugin exports. */
#define DSNN_PLUGIN_EXPORT DSNN_VISIBLE

#if defined(__GNUC__)
#define DSNN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define DSNN_PRINTF(fmt, args)
#endif

#endif
