# wolfSSL for io/tls.c: the fast local build first, Debian's library second.
#
# scripts/build_wolfssl.sh builds wolfSSL 5.5.4 from Debian's source package
# with AES-NI and the Intel assembly (about 11x Debian's AES-GCM speed) into
#   SPINDLE_WOLFSSL_PREFIX (default: `scripts/build_wolfssl.sh --print-prefix`,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/spindle/wolfssl-5.5.4-aesni-<options id>)
# as a static, PIC library. If <prefix>/lib/pkgconfig/wolfssl.pc exists it is
# used; otherwise pkg-config's `wolfssl` (PKG_CONFIG_PATH, then the system).
# The choice is made again at every configure, so running the script later
# and re-running cmake picks the fast build up.
#
# Result: the imported target spindle::wolfssl (include directory, as SYSTEM
# so wolfSSL's headers are not held to our warnings, and the library), and
#   SPINDLE_WOLFSSL_VERSION, SPINDLE_WOLFSSL_AESNI (ON/OFF), SPINDLE_WOLFSSL_FROM.
#
# wolfSSL's pkg-config cflags are empty: its feature macros live in
# <wolfssl/options.h>, which every file must include before any other
# wolfSSL header (docs/facts.md). Mixing the headers of one build with the
# library of the other breaks struct layouts silently, so both always come
# from the same place here.
find_package(PkgConfig REQUIRED)

# The default prefix is named after the build options; the script is the
# one place that knows them (--print-prefix). A cache entry set by hand
# wins; the unnamed default of earlier versions is replaced.
execute_process(COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/../scripts/build_wolfssl.sh" --print-prefix
                OUTPUT_VARIABLE _spindle_wolfssl_default OUTPUT_STRIP_TRAILING_WHITESPACE)
if(SPINDLE_WOLFSSL_PREFIX MATCHES "/spindle/wolfssl-5\\.5\\.4-aesni$")
  unset(SPINDLE_WOLFSSL_PREFIX CACHE)
endif()
set(SPINDLE_WOLFSSL_PREFIX "${_spindle_wolfssl_default}"
    CACHE PATH "Prefix of the local wolfSSL build (scripts/build_wolfssl.sh)")

if(EXISTS "${SPINDLE_WOLFSSL_PREFIX}/lib/pkgconfig/wolfssl.pc")
  # Look in the prefix only, so a wolfssl.pc elsewhere cannot win.
  # (An empty but set PKG_CONFIG_LIBDIR means "no directories": restore
  # the variables exactly, unset when they were unset.)
  foreach(_v PKG_CONFIG_PATH PKG_CONFIG_LIBDIR)
    set(_had_${_v} OFF)
    if(DEFINED ENV{${_v}})
      set(_had_${_v} ON)
      set(_saved_${_v} "$ENV{${_v}}")
    endif()
  endforeach()
  unset(ENV{PKG_CONFIG_PATH})
  set(ENV{PKG_CONFIG_LIBDIR} "${SPINDLE_WOLFSSL_PREFIX}/lib/pkgconfig")
  pkg_check_modules(SPINDLE_WOLFSSL_LOCAL REQUIRED wolfssl)
  foreach(_v PKG_CONFIG_PATH PKG_CONFIG_LIBDIR)
    if(_had_${_v})
      set(ENV{${_v}} "${_saved_${_v}}")
    else()
      unset(ENV{${_v}})
    endif()
  endforeach()
  set(_pc SPINDLE_WOLFSSL_LOCAL)
  set(SPINDLE_WOLFSSL_FROM "${SPINDLE_WOLFSSL_PREFIX}")
  # The script builds a static archive only: link it and its private deps.
  if(EXISTS "${SPINDLE_WOLFSSL_PREFIX}/lib/libwolfssl.a")
    # wolfssl.pc names no private deps; libwolfssl.la says -lm -lpthread.
    set(_libs "${SPINDLE_WOLFSSL_PREFIX}/lib/libwolfssl.a" ${${_pc}_STATIC_LIBRARIES} m pthread)
    list(REMOVE_ITEM _libs wolfssl)
    list(REMOVE_DUPLICATES _libs)
  else()
    set(_libs ${${_pc}_LINK_LIBRARIES})
  endif()
else()
  pkg_check_modules(SPINDLE_WOLFSSL_SYS REQUIRED wolfssl)
  set(_pc SPINDLE_WOLFSSL_SYS)
  set(_libs ${${_pc}_LINK_LIBRARIES})
  set(SPINDLE_WOLFSSL_FROM "${_libs}")
endif()

set(SPINDLE_WOLFSSL_VERSION "${${_pc}_VERSION}")
set(_inc "${${_pc}_INCLUDEDIR}")
if(NOT _inc)
  set(_inc "${${_pc}_INCLUDE_DIRS}")
endif()

set(SPINDLE_WOLFSSL_AESNI OFF)
if(EXISTS "${_inc}/wolfssl/options.h")
  file(STRINGS "${_inc}/wolfssl/options.h" _aesni REGEX "^#define WOLFSSL_AESNI")
  if(_aesni)
    set(SPINDLE_WOLFSSL_AESNI ON)
  endif()
else()
  message(FATAL_ERROR "spindle: ${_inc}/wolfssl/options.h is missing (wolfSSL "
                      "from ${SPINDLE_WOLFSSL_FROM}); rebuild with "
                      "SPINDLE_WOLFSSL_REBUILD=1 scripts/build_wolfssl.sh")
endif()

if(NOT TARGET spindle::wolfssl)
  add_library(spindle::wolfssl INTERFACE IMPORTED)
  # Include directories of an imported target are SYSTEM for its users.
  # /usr/include is the compiler's own and needs no flag.
  if(NOT _inc STREQUAL "/usr/include")
    set_property(TARGET spindle::wolfssl PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
  endif()
  set_property(TARGET spindle::wolfssl PROPERTY INTERFACE_LINK_LIBRARIES "${_libs}")
endif()

if(SPINDLE_WOLFSSL_AESNI)
  set(_yn yes)
else()
  set(_yn "no: slow AES-GCM; run scripts/build_wolfssl.sh")
endif()
message(STATUS "spindle: wolfSSL ${SPINDLE_WOLFSSL_VERSION} from ${SPINDLE_WOLFSSL_FROM} (AES-NI: ${_yn})")
unset(_yn)
unset(_aesni)
unset(_inc)
unset(_libs)
unset(_pc)
