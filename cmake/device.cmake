# Device layer test support: a FAKE libcuda.so.1 (tests/fixtures/doctor/
# fake-libcuda.c) that implements the driver API entry points gpuguard uses
# on host memory, so the cuda backend's dlopen path, symbol names, context
# discipline and error mapping are tested on machines without a GPU. It is
# only ever loaded by test-device-cuda-fake through GPUGUARD_LIBCUDA.
add_library(gg_fake_cuda SHARED ${CMAKE_SOURCE_DIR}/tests/fixtures/doctor/fake-libcuda.c)
set_target_properties(gg_fake_cuda PROPERTIES
  PREFIX "lib" OUTPUT_NAME "cuda" SUFFIX ".so.1"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fake-cuda)

# The test targets are defined after cmake/*.cmake are included: wire the
# fake into its test at the end of the directory.
function(gg_device_wire_fake_cuda)
  if(TARGET test-device-cuda-fake)
    target_compile_definitions(test-device-cuda-fake PRIVATE
      GG_FAKE_LIBCUDA="$<TARGET_FILE:gg_fake_cuda>")
    add_dependencies(test-device-cuda-fake gg_fake_cuda)
  endif()
endfunction()
cmake_language(DEFER CALL gg_device_wire_fake_cuda)
