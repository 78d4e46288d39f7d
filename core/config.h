/* config.h - internal side of spindle_config. */
#ifndef SPINDLE_CORE_CONFIG_H
#define SPINDLE_CORE_CONFIG_H

#include "h1_limits.h"
#include "h2_limits.h"
#include "spindle.h"

/* The protocol core's limits for a public configuration (fields spindle
 * does not expose keep their h2_limits defaults). */
void config_to_h2_limits(const spindle_config *cfg, h2_limits *out);

/* The same for the HTTP/1.1 codec's limits. */
void config_to_h1_limits(const spindle_config *cfg, h1_limits *out);

#endif
