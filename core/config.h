/* config.h - internal side of spindle_config. */
#ifndef SPINDLE_CORE_CONFIG_H
#define SPINDLE_CORE_CONFIG_H

#include "h2_limits.h"
#include "spindle.h"

/* The protocol core's limits for a public configuration (fields spindle
 * does not expose keep their h2_limits defaults). */
void config_to_h2_limits(const spindle_config *cfg, h2_limits *out);

#endif
