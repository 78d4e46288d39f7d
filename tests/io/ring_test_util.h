/*
 * tests/io/ring_test_util.h - what the io/ring tests share: loopback
 * sockets, a ring made or the test fails, CQE collection, client threads.
 * Every helper asserts with Criterion, so it is called from inside a test.
 */
#ifndef SPINDLE_TESTS_IO_RING_TEST_UTIL_H
#define SPINDLE_TESTS_IO_RING_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* Every SETUP flag ring_new insists on (values from the kernel ABI). */
#define SETUP_CQSIZE        (1u << 3)
#define SETUP_SUBMIT_ALL    (1u << 7)
#define SETUP_SINGLE_ISSUER (1u << 12)
#define SETUP_DEFER_TASKRUN (1u << 13)

#define MS                  (1000000ull)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Byte i of the test pattern the client threads write and check. */
uint8_t pat(size_t i);

/* ring_new(cfg) or fail the test. */
ring *mk_ring(const ring_config *cfg);

/* A listener on 127.0.0.1, a kernel-chosen port in *port. */
int mk_listener(int *port);

/* A blocking client connected to the loopback address of family. */
int connect_to(int family, int port);

/* A connected pair: *srv is the accepted end (the ring's side). */
void tcp_pair(int *srv, int *cli);

/* Wait and reap until `want` CQEs are collected or timeout_ms passes. */
unsigned collect(ring *r, ring_cqe *out, unsigned want, unsigned max, uint64_t timeout_ms);

/* recv() exactly len bytes or fail the test. */
void read_exact(int fd, void *buf, size_t len);

/* Client threads. Their arguments are static in each test: a failed
 * assertion leaves the test function while the thread may still run, and a
 * static outlives the frame (each test is its own forked process). */
struct writer {
    int fd;
    size_t total;
    size_t chunk;
    bool shut; /* shutdown(SHUT_WR) at the end: the ring sees EOF */
};

/* Writes w->total pattern bytes in w->chunk pieces (a pthread start). */
void *writer_main(void *arg);

struct reader {
    int fd;
    size_t total;
    size_t got;
    bool pattern_ok;
};

/* Reads rd->total bytes, checking the pattern (a pthread start). */
void *reader_main(void *arg);

#endif
