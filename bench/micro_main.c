/* micro_main.c - spindle-micro: microbenchmarks of spindle's I/O path.
 * See harness.h for the command line; `spindle-micro --list` names the cases. */
#include <stdlib.h>

#include "micro.h"

int main(int argc, char **argv)
{
    int rc = 0;
    bench *b = bench_new(argc, argv, &rc);
    if (!b)
        return rc;
    micro_frame(b);
    micro_hpack(b);
    micro_spsc(b);
    micro_timer(b);
    micro_conn(b);
    micro_hop(b);
    micro_h1(b);
    micro_ring(b);
    micro_tls(b);
    return bench_finish(b);
}
