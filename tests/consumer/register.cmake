# Tests of spindle as a user outside the tree gets it (included from
# tests/CMakeLists.txt; they run after the main build, on the installed tree):
#
#   consumer.cmake      install to a temporary prefix; nm: only spindle_* exported,
#                       SONAME; find_package(spindle) -> libspindle.so; curl
#   consumer.pkgconfig  the same through spindle.pc
#   consumer.static     spindle::spindle_static, and pkg-config --static in a
#                       static-only prefix
#   consumer.deb        cpack -G DEB, dpkg-deb -x into a scratch root, the
#                       consumer (find_package and pkg-config) and the packaged
#                       spindle-hello and spindle-static against it
#   docs.examples       README.md's and spindle.h's examples: -Wall -Wextra -Werror
#   docs.links          the documents README.md and spindle.h point to exist
find_program(SPINDLE_CONSUMER_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SPINDLE_CONSUMER_PYTHON)
  message(WARNING "consumer tests: /usr/bin/python3 not found, not registered")
  return()
endif()
set(_dir ${CMAKE_CURRENT_LIST_DIR})
set(_env "PYTHONDONTWRITEBYTECODE=1;PYTHONUNBUFFERED=1")

add_test(NAME docs.examples
  COMMAND ${SPINDLE_CONSUMER_PYTHON} ${_dir}/check_docs.py examples
          --root ${PROJECT_SOURCE_DIR} --cc ${CMAKE_C_COMPILER})
add_test(NAME docs.links
  COMMAND ${SPINDLE_CONSUMER_PYTHON} ${_dir}/check_docs.py links
          --root ${PROJECT_SOURCE_DIR})
set_tests_properties(docs.examples docs.links PROPERTIES
  TIMEOUT 60 LABELS docs ENVIRONMENT "${_env}")

if(NOT TARGET spindle_shared)
  message(STATUS "consumer tests: no installable library in this build, not registered")
  unset(_dir)
  unset(_env)
  return()
endif()
foreach(_mode cmake pkgconfig static deb)
  add_test(NAME consumer.${_mode}
    COMMAND ${SPINDLE_CONSUMER_PYTHON} ${_dir}/run.py ${_mode}
            --build ${PROJECT_BINARY_DIR} --version ${PROJECT_VERSION}
            --cc ${CMAKE_C_COMPILER} --cmake ${CMAKE_COMMAND} --cpack ${CMAKE_CPACK_COMMAND})
  set_tests_properties(consumer.${_mode} PROPERTIES
    TIMEOUT 120 LABELS consumer ENVIRONMENT "${_env}")
endforeach()

unset(_dir)
unset(_env)
unset(_mode)
