# The installed library: one libspindle, static and shared, made of the
# objects of every layer `spindle` links (core, io, proto), plus the header,
# the CMake package (spindle::spindle, spindle::spindle_static) and
# spindle.pc.  Included from the root after the layers.
#
#   lib/libspindle.a                     every layer; dependencies are the user's link
#   lib/libspindle.so.<abi>.<patch>      SONAME libspindle.so.<abi>: only spindle_* exported
#   lib/spindle/libwolfssl.a             only with the local AES-NI wolfSSL (static links)
#   include/spindle.h
#   lib/cmake/spindle/                   spindleConfig.cmake, -ConfigVersion, -Targets
#   lib/pkgconfig/spindle.pc
#
# The layers are compiled position-independent and with hidden visibility
# (root CMakeLists.txt); include/spindle.h gives its declarations default
# visibility, so the shared library exports exactly the public API, and
# -Wl,--exclude-libs,ALL keeps the archives linked into it (wolfSSL, liburing)
# from being re-exported.  The in-tree targets (apps, tests) keep linking the
# layer archives.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# spindle_version() joins the core archive from here, so that
# core/CMakeLists.txt's source list stays as it is.
target_sources(spindle PRIVATE ${PROJECT_SOURCE_DIR}/core/version.c)

# A fuzz build (clang, -fsanitize=fuzzer-no-link) makes no library to
# install: clang links no sanitizer runtime into shared libraries.
if(SPINDLE_FUZZ)
  message(STATUS "spindle: SPINDLE_FUZZ build, no installable library")
  return()
endif()

# ABI: before 1.0 every minor release may break it (0.1 and 0.2 differ).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SPINDLE_ABI_VERSION 0.${PROJECT_VERSION_MINOR})
  set(_spindle_compat SameMinorVersion)
else()
  set(SPINDLE_ABI_VERSION ${PROJECT_VERSION_MAJOR})
  set(_spindle_compat SameMajorVersion)
endif()

# The layers: this project's static libraries that `spindle` links,
# transitively, found from the targets (no source list repeated here).
set(_spindle_layers)
set(_todo spindle)
while(_todo)
  list(POP_FRONT _todo _t)
  if(_t IN_LIST _spindle_layers)
    continue()
  endif()
  get_target_property(_type ${_t} TYPE)
  get_target_property(_imported ${_t} IMPORTED)
  if(_imported OR NOT _type STREQUAL "STATIC_LIBRARY")
    continue()
  endif()
  list(APPEND _spindle_layers ${_t})
  get_target_property(_links ${_t} LINK_LIBRARIES)
  foreach(_l IN LISTS _links)
    if(TARGET "${_l}")
      list(APPEND _todo ${_l})
    endif()
  endforeach()
endwhile()
set(_spindle_objects)
foreach(_t IN LISTS _spindle_layers)
  list(APPEND _spindle_objects $<TARGET_OBJECTS:${_t}>)
endforeach()
message(STATUS "spindle: libspindle ${PROJECT_VERSION} (ABI ${SPINDLE_ABI_VERSION}) from ${_spindle_layers}")

# --- Dependencies, as plain paths and names (exportable as they are) -------
# wolfSSL: the build io/ links (cmake/SpindleWolfSSL.cmake).  The local
# AES-NI archive is installed next to the library for static users, so an
# installed tree (or the .deb) does not point into a home directory.
get_target_property(_wolfssl_libs spindle::wolfssl INTERFACE_LINK_LIBRARIES)
set(_wolfssl_a "${SPINDLE_WOLFSSL_PREFIX}/lib/libwolfssl.a")
if(_wolfssl_a IN_LIST _wolfssl_libs)
  set(SPINDLE_WOLFSSL_BUNDLED ON)
  list(REMOVE_ITEM _wolfssl_libs "${_wolfssl_a}")
  # One item: the build tree's archive, or the installed copy.
  set(_wolfssl_link
      "$<BUILD_INTERFACE:${_wolfssl_a}>$<INSTALL_INTERFACE:$<INSTALL_PREFIX>/${CMAKE_INSTALL_LIBDIR}/spindle/libwolfssl.a>"
      ${_wolfssl_libs})
  install(FILES "${_wolfssl_a}" DESTINATION ${CMAKE_INSTALL_LIBDIR}/spindle)
  set(_pc_requires "")
  set(_pc_libs_private "\${libdir}/spindle/libwolfssl.a")
else()
  set(SPINDLE_WOLFSSL_BUNDLED OFF)
  set(_wolfssl_link ${_wolfssl_libs})
  set(_pc_requires "wolfssl")
  set(_pc_libs_private "")
endif()

# liburing: the archive io/ prefers (io/CMakeLists.txt), else the shared one.
pkg_check_modules(SPINDLE_PC_URING REQUIRED liburing)
if(SPINDLE_LIBURING_A)
  set(_uring_link ${SPINDLE_LIBURING_A})
else()
  set(_uring_link ${SPINDLE_PC_URING_LINK_LIBRARIES})
endif()
list(APPEND _pc_requires liburing)

# jemalloc: not under the sanitizers (ASan's allocator takes over).
set(_jemalloc_link)
if(NOT SPINDLE_SANITIZE)
  pkg_check_modules(SPINDLE_PC_JEMALLOC REQUIRED jemalloc)
  set(_jemalloc_link ${SPINDLE_PC_JEMALLOC_LINK_LIBRARIES})
  list(APPEND _pc_requires jemalloc)
endif()

set(_spindle_deps ${_wolfssl_link} ${_uring_link} ${_jemalloc_link} Threads::Threads m)

# A sanitizer build's library needs its runtime in every program linking it.
set(_spindle_san_link)
if(SPINDLE_SANITIZE)
  set(_spindle_san_link -fsanitize=address,undefined)
endif()

# --- The two libraries -----------------------------------------------------
add_library(spindle_static STATIC ${_spindle_objects})
add_library(spindle_shared SHARED ${_spindle_objects})
foreach(_t spindle_static spindle_shared)
  target_include_directories(${_t} INTERFACE
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_options(${_t} INTERFACE ${_spindle_san_link})
endforeach()
set_target_properties(spindle_static PROPERTIES
  OUTPUT_NAME spindle
  EXPORT_NAME spindle_static
  ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
target_link_libraries(spindle_static PRIVATE ${_spindle_deps})
set_target_properties(spindle_shared PROPERTIES
  OUTPUT_NAME spindle
  EXPORT_NAME spindle
  VERSION ${PROJECT_VERSION}
  SOVERSION ${SPINDLE_ABI_VERSION}
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
target_link_libraries(spindle_shared PRIVATE ${_spindle_deps})
# Self-contained (no undefined symbols left to the program), and the
# archives linked in stay private.
target_link_options(spindle_shared PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL)

# --- Install -----------------------------------------------------------------
set(SPINDLE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
install(FILES ${PROJECT_SOURCE_DIR}/include/spindle.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS spindle_static spindle_shared EXPORT spindleTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT spindleTargets NAMESPACE spindle:: DESTINATION ${SPINDLE_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/spindleConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/spindleConfig.cmake
  INSTALL_DESTINATION ${SPINDLE_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/spindleConfigVersion.cmake
  COMPATIBILITY ${_spindle_compat})
install(FILES ${PROJECT_BINARY_DIR}/cmake/spindleConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/spindleConfigVersion.cmake
        DESTINATION ${SPINDLE_CMAKE_DIR})

# spindle.pc: written at install time, so that prefix is the one installed
# to (cmake --install --prefix P, or /usr when CPack stages the .deb with
# DESTDIR), straight into the destination: parallel installs to different
# prefixes share no file in the build tree.
list(JOIN _pc_requires " " SPINDLE_PC_REQUIRES_PRIVATE)
set(SPINDLE_PC_LIBS_PRIVATE "${_pc_libs_private} -lm -pthread")
string(STRIP "${SPINDLE_PC_LIBS_PRIVATE}" SPINDLE_PC_LIBS_PRIVATE)
set(SPINDLE_PC_LIBS_EXTRA)
foreach(_f IN LISTS _spindle_san_link)
  string(APPEND SPINDLE_PC_LIBS_EXTRA " ${_f}")
endforeach()
set(SPINDLE_PC_PREFIX "@SPINDLE_PC_PREFIX@") # kept for the install-time pass
configure_file(${PROJECT_SOURCE_DIR}/cmake/spindle.pc.in ${PROJECT_BINARY_DIR}/cmake/spindle.pc.in
               @ONLY)
install(CODE "
  set(SPINDLE_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(_pc \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/spindle.pc\")
  message(STATUS \"Installing: \${_pc}\")
  configure_file(\"${PROJECT_BINARY_DIR}/cmake/spindle.pc.in\" \"\${_pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_pc}\")")

unset(_spindle_layers)
unset(_spindle_objects)
unset(_spindle_deps)
unset(_todo)
unset(_t)
unset(_l)
unset(_links)
unset(_type)
unset(_imported)
