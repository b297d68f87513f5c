# gpuguard check-backend (src/cli/check.c) writes reasons into fixed-size
# fields of its report (they are truncated, never overflowed): GCC's
# speculative -Wformat-truncation warnings there are noise, as in doctor.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/cli/check.c
  PROPERTIES COMPILE_OPTIONS "-Wno-format-truncation")
