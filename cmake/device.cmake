# Device layer test support: a FAKE libcuda.so.1 (tests/fixtures/doctor/
# fake-libcuda.c) that implements the driver API entry points gpuguard uses
# on host memory, so the cuda backend's dlopen path, symbol names, context
# discipline and error mapping are tested on machines without a GPU. It is
# only ever loaded by tests through GPUGUARD_LIBCUDA.
add_library(gg_fake_cuda SHARED ${CMAKE_SOURCE_DIR}/tests/fixtures/doctor/fake-libcuda.c)
set_target_properties(gg_fake_cuda PROPERTIES
  PREFIX "lib" OUTPUT_NAME "cuda" SUFFIX ".so.1"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fake-cuda)

# FAKE libcudnn.so.9 and libcublas.so.13 (tests/fixtures/cuda/) for the CUDA
# compute backend's tests: they compute on the host pointers the fake
# libcuda hands out, so test-cuda-backend compares graphs run through the
# backend with the naive kernels. Loaded through GPUGUARD_LIBCUDNN /
# GPUGUARD_CUDNN_PATH and GPUGUARD_LIBCUBLAS only.
add_library(gg_fake_cudnn SHARED ${CMAKE_SOURCE_DIR}/tests/fixtures/cuda/fake-libcudnn.c)
set_target_properties(gg_fake_cudnn PROPERTIES
  PREFIX "lib" OUTPUT_NAME "cudnn" SUFFIX ".so.9"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fake-cuda)
target_link_libraries(gg_fake_cudnn PRIVATE m)
# The fakes' host convolutions run the four models in test-cuda-backend:
# optimised even in Debug/sanitizer builds (they stay instrumented there, so
# a descriptor that makes cuDNN read past a buffer is still caught).
target_compile_options(gg_fake_cudnn PRIVATE -O2)
add_library(gg_fake_cublas SHARED ${CMAKE_SOURCE_DIR}/tests/fixtures/cuda/fake-libcublas.c)
set_target_properties(gg_fake_cublas PROPERTIES
  PREFIX "lib" OUTPUT_NAME "cublas" SUFFIX ".so.13"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fake-cuda)
target_compile_options(gg_fake_cublas PRIVATE -O2)

# The test targets are defined after cmake/*.cmake are included: wire the
# fakes into their tests at the end of the directory.
function(gg_device_wire_fake_cuda)
  foreach(t test-device-cuda-fake test-cuda-backend)
    if(TARGET ${t})
      target_compile_definitions(${t} PRIVATE
        GG_FAKE_LIBCUDA="$<TARGET_FILE:gg_fake_cuda>"
        GG_FAKE_LIBCUDNN="$<TARGET_FILE:gg_fake_cudnn>"
        GG_FAKE_LIBCUBLAS="$<TARGET_FILE:gg_fake_cublas>")
      add_dependencies(${t} gg_fake_cuda gg_fake_cudnn gg_fake_cublas)
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL gg_device_wire_fake_cuda)
