/* version.c - spindle_version(): the version this library was built as. */
#include <spindle.h>

uint32_t spindle_version(void)
{
    return SPINDLE_VERSION_NUM;
}
