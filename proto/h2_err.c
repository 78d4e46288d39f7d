#include "h2_err.h"

const char *h2_code_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    };
    return code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN";
}

const char *h2_rv_name(h2_rv rv)
{
    switch (rv) {
    case H2_OK: return "H2_OK";
    case H2_E_AGAIN: return "H2_E_AGAIN";
    case H2_E_INVAL: return "H2_E_INVAL";
    case H2_E_STATE: return "H2_E_STATE";
    case H2_E_NOSTREAM: return "H2_E_NOSTREAM";
    case H2_E_COMPRESSION: return "H2_E_COMPRESSION";
    case H2_E_LIMIT: return "H2_E_LIMIT";
    case H2_E_PROTO: return "H2_E_PROTO";
    case H2_E_NOMEM: return "H2_E_NOMEM";
    case H2_E_CLOSED: return "H2_E_CLOSED";
    }
    return "H2_E_UNKNOWN";
}
