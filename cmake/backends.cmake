# Optional GPU backends: -DGG_CUDA=ON|OFF, -DGG_OPENCL=ON|OFF.
#
# Both device kinds talk to the driver through dlopen() at run time
# (libcuda.so.1, libOpenCL.so.1) with embedded kernels (PTX, OpenCL C), so the
# binary starts on machines without any GPU library and needs no toolkit to
# build. What a toolkit adds at build time is checking: with CUDA, ptxas
# assembles the embedded validation PTX in test-device; with OpenCL, the
# ICD loader and PoCL run the OpenCL tests. When a toolkit is missing, that
# part turns itself off with the message below; the device kind stays in the
# build. -DGG_CUDA=OFF / -DGG_OPENCL=OFF remove the device kind entirely:
# opening cuda:N / opencl:P.D then fails with "built without ...".

if(GG_CUDA)
  set(_gg_cuda_hints)
  foreach(v CUDA_HOME CUDA_PATH)
    if(DEFINED ENV{${v}} AND NOT "$ENV{${v}}" STREQUAL "")
      list(APPEND _gg_cuda_hints "$ENV{${v}}/bin")
    endif()
  endforeach()
  list(APPEND _gg_cuda_hints /usr/local/cuda/bin /usr/lib/cuda/bin)
  find_program(GG_NVCC nvcc HINTS ${_gg_cuda_hints})
  find_program(GG_PTXAS ptxas HINTS ${_gg_cuda_hints})
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_CUDA=1)
  if(GG_NVCC AND GG_PTXAS)
    execute_process(COMMAND ${GG_NVCC} --version OUTPUT_VARIABLE _gg_nvcc_out ERROR_QUIET)
    string(REGEX MATCH "release [0-9]+\\.[0-9]+" _gg_nvcc_rel "${_gg_nvcc_out}")
    message(STATUS "gpuguard: CUDA backend ON: cuda:N devices (driver API via dlopen at run "
                   "time); toolkit ${_gg_nvcc_rel} at ${GG_NVCC}: the validation PTX is "
                   "checked with ${GG_PTXAS}")
    set(GG_CUDA_PTXAS "${GG_PTXAS}")
  else()
    message(STATUS "gpuguard: CUDA toolkit not found (no nvcc/ptxas in $CUDA_HOME/bin, "
                   "$CUDA_PATH/bin, /usr/local/cuda/bin, /usr/lib/cuda/bin or PATH): the "
                   "build-time PTX check is off. cuda:N devices are still built; they need "
                   "only the NVIDIA driver at run time (gpuguard doctor checks it)")
    set(GG_CUDA_PTXAS "")
  endif()
else()
  message(STATUS "gpuguard: CUDA backend OFF (-DGG_CUDA=OFF): cuda:N devices are not in this build")
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_CUDA=0)
  set(GG_CUDA_PTXAS "")
endif()

if(GG_OPENCL)
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_OPENCL=1)
  find_library(GG_OPENCL_LOADER NAMES OpenCL libOpenCL.so.1)
  file(GLOB _gg_icds /etc/OpenCL/vendors/*.icd)
  if(GG_OPENCL_LOADER AND _gg_icds)
    list(LENGTH _gg_icds _gg_nicd)
    message(STATUS "gpuguard: OpenCL backend ON: opencl:P.D devices (dlopen at run time); "
                   "ICD loader ${GG_OPENCL_LOADER}, ${_gg_nicd} ICD(s) in /etc/OpenCL/vendors")
    if(GG_SANITIZE)
      # Sanitizer builds only: link the ICD loader so its thread-local storage
      # is static TLS. When libOpenCL.so.1 comes in through dlopen, its TLS is
      # dynamic, and GCC 12's LeakSanitizer misreads the glibc 2.36 DTV entry
      # for it (google/sanitizers#1322: the "glibc 2.19 header" guess) and
      # crashes at exit ("Tracer caught signal 11", DTLS range from 0x39b)
      # in any process that has called into OpenCL, e.g. gpuguard doctor.
      # Release builds keep loading it with dlopen, so gpuguard starts on
      # machines without it. docs/TESTING.md has the reproduction.
      target_link_libraries(gpuguard_lib PUBLIC
        "-Wl,--push-state,--no-as-needed" ${GG_OPENCL_LOADER} "-Wl,--pop-state")
      message(STATUS "gpuguard: sanitizer build links ${GG_OPENCL_LOADER} (static TLS, see "
                     "cmake/backends.cmake)")
    endif()
  else()
    message(STATUS "gpuguard: OpenCL ICD loader or ICDs not found (apt-get install "
                   "ocl-icd-libopencl1 pocl-opencl-icd): the OpenCL tests will skip. "
                   "opencl:P.D devices are still built; they need libOpenCL.so.1 at run time")
  endif()
else()
  message(STATUS "gpuguard: OpenCL backend OFF (-DGG_OPENCL=OFF): opencl:P.D devices are not "
                 "in this build")
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_OPENCL=0)
endif()

function(gg_backends_wire_tests)
  if(TARGET test-device)
    target_compile_definitions(test-device PRIVATE GG_PTXAS="${GG_CUDA_PTXAS}")
  endif()
endfunction()
cmake_language(DEFER CALL gg_backends_wire_tests)
