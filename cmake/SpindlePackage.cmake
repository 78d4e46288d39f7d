# CPack: `cpack -G DEB` in a build tree makes spindle_<version>_<arch>.deb
# with everything `cmake --install` puts in /usr: libspindle.so and .a, the
# header, lib/cmake/spindle/, lib/pkgconfig/spindle.pc (plus
# lib/spindle/libwolfssl.a with the local AES-NI wolfSSL) and the example
# servers spindle-hello and spindle-static.  The test consumer.deb builds it
# and builds tests/consumer against it.
set(CPACK_PACKAGE_NAME spindle)
set(CPACK_PACKAGE_VENDOR "spindle")
set(CPACK_PACKAGE_CONTACT "spindle developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# Install with DESTDIR and prefix /usr, so spindle.pc (written at install
# time) says prefix=/usr, not the staging directory.
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_PACKAGE_DESCRIPTION
    "The shared and static library, its header, CMake and pkg-config files,\nand the example servers spindle-hello and spindle-static.")
# Run-time libraries from the ELF files (dpkg-shlibdeps); the -dev packages
# of what spindle.pc's Requires.private and the static target name.
find_program(SPINDLE_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(SPINDLE_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
set(_deb_dev liburing-dev)
if(NOT SPINDLE_SANITIZE)
  list(APPEND _deb_dev libjemalloc-dev)
endif()
if(NOT SPINDLE_WOLFSSL_BUNDLED)
  list(APPEND _deb_dev libwolfssl-dev)
endif()
list(JOIN _deb_dev ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
unset(_deb_dev)
include(CPack)
