# check_isolation.cmake - proto/ stays sans-IO (the CTest test proto_isolation).
#
#   cmake -DPROTO_DIR=<proto source dir> -DPROTO_LIB=<libspindle_proto.a>
#         -DNM=<nm> -P check_isolation.cmake
#
# Fails when
#  1. a file under PROTO_DIR includes a header that is neither in proto/ itself
#     (a quoted include resolving inside PROTO_DIR) nor one of the libc headers
#     in ALLOWED_HEADERS: no liburing, no wolfSSL, nothing from core/ or io/;
#  2. `nm -u` on the archive shows an undefined reference to I/O, threads or a
#     clock: io_uring*, wolfSSL*, pthread*, clock_gettime, gettimeofday, time,
#     sockets, file descriptors (read/write/...), or their fortified __*_chk
#     forms.
# Also fails when it scanned nothing, so a moved directory cannot pass vacuously.
cmake_minimum_required(VERSION 3.18)

set(ALLOWED_HEADERS
  stdint.h stddef.h stdbool.h string.h stdlib.h limits.h assert.h
  sys/uio.h errno.h stdio.h)

# Undefined symbols proto/ must not reference (exact names; the check also
# catches __NAME and __NAME_chk, which _FORTIFY_SOURCE and glibc emit).
set(FORBIDDEN_SYMBOLS
  # clocks and sleeping
  time clock clock_gettime clock_getres gettimeofday timespec_get
  nanosleep clock_nanosleep sleep usleep
  # sockets
  socket socketpair bind listen accept accept4 connect shutdown
  recv recvfrom recvmsg recvmmsg send sendto sendmsg sendmmsg sendfile splice
  setsockopt getsockopt getsockname getpeername
  # file descriptors and polling
  open openat creat close read write readv writev pread pwrite preadv pwritev
  preadv2 pwritev2 pread64 pwrite64 poll ppoll select pselect
  epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait ioctl fcntl
  mmap munmap syscall
)
# Undefined symbols matching these prefixes are forbidden too.
set(FORBIDDEN_PREFIXES io_uring __io_uring wolfSSL wolfCrypt wc_ pthread)

foreach(var PROTO_DIR PROTO_LIB NM)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_isolation: -D${var}=... is required")
  endif()
endforeach()

set(violations "")

# ---- 1. includes -------------------------------------------------------------
file(GLOB_RECURSE sources LIST_DIRECTORIES false
  "${PROTO_DIR}/*.c" "${PROTO_DIR}/*.h" "${PROTO_DIR}/*.inc" "${PROTO_DIR}/*.def")
list(LENGTH sources n_sources)
if(n_sources EQUAL 0)
  message(FATAL_ERROR "check_isolation: no sources found under ${PROTO_DIR}")
endif()
get_filename_component(proto_real "${PROTO_DIR}" REALPATH)

foreach(src IN LISTS sources)
  file(STRINGS "${src}" lines REGEX "^[ \t]*#[ \t]*include")
  file(RELATIVE_PATH rel "${PROTO_DIR}" "${src}")
  get_filename_component(src_dir "${src}" DIRECTORY)
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*<([^>]+)>")
      set(hdr "${CMAKE_MATCH_1}")
      if(NOT hdr IN_LIST ALLOWED_HEADERS)
        string(APPEND violations "  ${rel}: includes <${hdr}> (not in the libc allow-list)\n")
      endif()
    elseif(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(hdr "${CMAKE_MATCH_1}")
      get_filename_component(target "${src_dir}/${hdr}" REALPATH)
      string(FIND "${target}/" "${proto_real}/" pos)
      if(NOT pos EQUAL 0)
        string(APPEND violations "  ${rel}: includes \"${hdr}\" from outside proto/\n")
      elseif(NOT EXISTS "${target}")
        # Not found next to the includer: the compiler would search the -I
        # paths, i.e. outside proto/.
        string(APPEND violations "  ${rel}: includes \"${hdr}\", which is not in proto/\n")
      endif()
    else()
      # A macro include (#include SOME_MACRO) cannot be checked here: forbid it.
      string(STRIP "${line}" l)
      string(APPEND violations "  ${rel}: unrecognized include: ${l}\n")
    endif()
  endforeach()
endforeach()

# ---- 2. undefined symbols of the archive ---------------------------------------
if(NOT EXISTS "${PROTO_LIB}")
  message(FATAL_ERROR "check_isolation: ${PROTO_LIB} does not exist (build spindle_proto first)")
endif()
execute_process(COMMAND "${NM}" -u "${PROTO_LIB}"
  OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err RESULT_VARIABLE nm_rc)
if(NOT nm_rc EQUAL 0)
  message(FATAL_ERROR "check_isolation: ${NM} -u ${PROTO_LIB} failed (${nm_rc}): ${nm_err}")
endif()

string(REPLACE "\n" ";" nm_lines "${nm_out}")
set(n_undef 0)
set(member "")
foreach(line IN LISTS nm_lines)
  if(line MATCHES "^(.+\\.o):$")
    set(member "${CMAKE_MATCH_1}")
    continue()
  endif()
  if(NOT line MATCHES "^[ \t]*U[ \t]+([^ \t@]+)")
    continue()
  endif()
  set(sym "${CMAKE_MATCH_1}")
  math(EXPR n_undef "${n_undef} + 1")
  set(base "${sym}")
  if(base MATCHES "^__(.+)_chk$")
    set(base "${CMAKE_MATCH_1}")
  elseif(base MATCHES "^__(.+)$")
    set(base "${CMAKE_MATCH_1}")
  endif()
  set(bad FALSE)
  if(sym IN_LIST FORBIDDEN_SYMBOLS OR base IN_LIST FORBIDDEN_SYMBOLS)
    set(bad TRUE)
  else()
    foreach(prefix IN LISTS FORBIDDEN_PREFIXES)
      string(FIND "${sym}" "${prefix}" pos)
      if(pos EQUAL 0)
        set(bad TRUE)
      endif()
    endforeach()
  endif()
  if(bad)
    string(APPEND violations "  ${member}: references ${sym}\n")
  endif()
endforeach()

if(NOT violations STREQUAL "")
  message(FATAL_ERROR "proto/ isolation violated (proto/ is sans-IO: libc only, no I/O, no threads, no clock):\n${violations}")
endif()
message(STATUS "proto/ isolation ok: ${n_sources} files, ${n_undef} undefined symbols checked")
