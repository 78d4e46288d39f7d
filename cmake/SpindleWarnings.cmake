# Warnings are set per target (nghttp2's PickyWarningsC habit), never globally,
# so third-party code and generated tables are not held to them by accident.
function(spindle_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion
    -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith -Wvla
    -Wformat=2 -Wundef -Wcast-align)
  if(SPINDLE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
