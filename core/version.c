/* version.c - spindle_version(), and the header's constants checked
 * against the engine's. */
#include <spindle.h>

#include "h2_err.h"

#define SAME_CODE(name)                                                                            \
    _Static_assert((int)SPINDLE_H2_##name == (int)H2_##name, "SPINDLE_H2_" #name)
SAME_CODE(NO_ERROR);
SAME_CODE(PROTOCOL_ERROR);
SAME_CODE(INTERNAL_ERROR);
SAME_CODE(FLOW_CONTROL_ERROR);
SAME_CODE(SETTINGS_TIMEOUT);
SAME_CODE(STREAM_CLOSED);
SAME_CODE(FRAME_SIZE_ERROR);
SAME_CODE(REFUSED_STREAM);
SAME_CODE(CANCEL);
SAME_CODE(COMPRESSION_ERROR);
SAME_CODE(CONNECT_ERROR);
SAME_CODE(ENHANCE_YOUR_CALM);
SAME_CODE(INADEQUATE_SECURITY);
SAME_CODE(HTTP_1_1_REQUIRED);

uint32_t spindle_version(void)
{
    return SPINDLE_VERSION_NUM;
}
