# gpuguard doctor: path and message buffers are bounded on purpose (snprintf
# truncates a 4 KiB path rather than overflowing), so GCC's speculative
# -Wformat-truncation warnings are noise in these files only.
set_source_files_properties(
  ${CMAKE_SOURCE_DIR}/src/doctor/checks.c
  ${CMAKE_SOURCE_DIR}/src/doctor/output.c
  PROPERTIES COMPILE_OPTIONS "-Wno-format-truncation")
