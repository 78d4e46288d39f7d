# ASan + UBSan for everything built after this point (tests included).
# Under ASan jemalloc is not linked: ASan's allocator takes over (facts.md).
if(SPINDLE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SPINDLE_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SPINDLE_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
  endif()
  # Instrument every library for coverage; the fuzz targets add -fsanitize=fuzzer to the link.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
