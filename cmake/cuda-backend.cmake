# The CUDA compute backend (src/backend/cuda/): cuDNN for convolutions,
# pooling and softmax, cuBLAS for GEMM, and the shared kernels of
# src/backend/kernels/kernels.cl compiled by nvcc (through cl-compat.cuh)
# for everything else. libcuda.so.1, libcudnn.so.9 and libcublas.so.13/.12
# are loaded with dlopen at run time, so the binary starts, and says why
# CUDA is off, on machines without them.
#
# Built when GG_CUDA is ON and nvcc is found (backends.cmake looks for it):
# the kernels are compiled at build time into one fatbin (SASS for sm_75,
# the GTX 1660 Ti class, and sm_90, plus sm_90 PTX that newer GPUs JIT) and
# embedded as a byte array. With -Werror: a kernel that does not compile
# as CUDA fails the build. Without nvcc the backend is left out (message
# below) and cuda:N devices run sessions on the host, as before.
#
# The PTX of the same kernels is also written to the build folder for
# test-opencl-ops, which checks every launch's argument list (built by the
# shared kx-ops.c) against the CUDA kernels' signatures.

function(gg_kx_sources)
  get_property(_done GLOBAL PROPERTY GG_KX_ADDED)
  if(NOT _done)
    target_sources(gpuguard_lib PRIVATE ${CMAKE_SOURCE_DIR}/src/backend/kernels/kx-ops.c)
    set_property(GLOBAL PROPERTY GG_KX_ADDED TRUE)
  endif()
endfunction()

set(GG_CUDA_BACKEND OFF)
if(GG_CUDA AND GG_NVCC)
  set(GG_CUDA_BACKEND ON)
  set(_gg_cu_dir ${CMAKE_SOURCE_DIR}/src/backend/cuda)
  set(_gg_cu_gen ${CMAKE_BINARY_DIR}/generated/backend/cuda)
  file(MAKE_DIRECTORY ${_gg_cu_gen})
  set(_gg_cu_deps ${_gg_cu_dir}/kernels.cu ${_gg_cu_dir}/cl-compat.cuh
                  ${CMAKE_SOURCE_DIR}/src/backend/kernels/kernels.cl)
  set(_gg_nvcc_flags -std=c++17 -O3 -Werror all-warnings -I${CMAKE_SOURCE_DIR}/src)
  add_custom_command(
    OUTPUT ${_gg_cu_gen}/kernels.fatbin
    COMMAND ${GG_NVCC} -fatbin ${_gg_nvcc_flags}
            -gencode arch=compute_75,code=sm_75
            -gencode arch=compute_90,code=sm_90
            -gencode arch=compute_90,code=compute_90
            -o ${_gg_cu_gen}/kernels.fatbin ${_gg_cu_dir}/kernels.cu
    DEPENDS ${_gg_cu_deps}
    COMMENT "nvcc: CUDA kernels (sm_75, sm_90, PTX) from src/backend/kernels/kernels.cl"
    VERBATIM)
  add_custom_command(
    OUTPUT ${_gg_cu_gen}/kernels.ptx
    COMMAND ${GG_NVCC} -ptx ${_gg_nvcc_flags} -arch=compute_75
            -o ${_gg_cu_gen}/kernels.ptx ${_gg_cu_dir}/kernels.cu
    DEPENDS ${_gg_cu_deps}
    COMMENT "nvcc: PTX of the CUDA kernels (for test-cuda-kernels)"
    VERBATIM)
  add_custom_command(
    OUTPUT ${_gg_cu_gen}/kernels-fatbin.h
    COMMAND ${CMAKE_COMMAND} -DIN=${_gg_cu_gen}/kernels.fatbin
            -DOUT=${_gg_cu_gen}/kernels-fatbin.h -DNAME=gg_cu_kernels_fatbin
            -P ${CMAKE_SOURCE_DIR}/cmake/scripts/embed-bin.cmake
    DEPENDS ${_gg_cu_gen}/kernels.fatbin ${CMAKE_SOURCE_DIR}/cmake/scripts/embed-bin.cmake
    VERBATIM)
  add_custom_target(gg_cuda_kernels DEPENDS ${_gg_cu_gen}/kernels-fatbin.h
                                            ${_gg_cu_gen}/kernels.ptx)
  add_dependencies(gpuguard_lib gg_cuda_kernels)
  set_source_files_properties(${_gg_cu_gen}/kernels-fatbin.h PROPERTIES GENERATED TRUE)

  file(GLOB _gg_cu_src CONFIGURE_DEPENDS ${_gg_cu_dir}/*.c)
  target_sources(gpuguard_lib PRIVATE ${_gg_cu_src})
  gg_kx_sources()
  target_include_directories(gpuguard_lib PRIVATE ${CMAKE_BINARY_DIR}/generated)
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_CUDA_BACKEND=1)
  # backend-cuda.c registers the "cuda" engine backend from a constructor;
  # keep it in static links (as the OpenCL backend does).
  target_link_options(gpuguard_lib INTERFACE "LINKER:--undefined=gg__backend_cuda_anchor")
  set(GG_CUDA_KERNELS_PTX ${_gg_cu_gen}/kernels.ptx)
  message(STATUS "gpuguard: CUDA compute backend ON (src/backend/cuda: cuDNN/cuBLAS by dlopen "
                 "at run time; kernels built by ${GG_NVCC} for sm_75, sm_90 + PTX)")
else()
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_CUDA_BACKEND=0)
  set(GG_CUDA_KERNELS_PTX "")
  if(GG_CUDA)
    message(STATUS "gpuguard: CUDA compute backend OFF: nvcc not found (the kernels are built "
                   "at build time); cuda:N devices run sessions on the host. Install the CUDA "
                   "toolkit or set CUDA_HOME to build it")
  endif()
endif()

function(gg_cuda_wire_tests)
  if(TARGET test-opencl-ops AND GG_CUDA_BACKEND)
    target_compile_definitions(test-opencl-ops PRIVATE GG_CUDA_KERNELS_PTX="${GG_CUDA_KERNELS_PTX}")
    add_dependencies(test-opencl-ops gg_cuda_kernels)
  endif()
endfunction()
cmake_language(DEFER CALL gg_cuda_wire_tests)
