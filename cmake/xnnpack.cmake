# XNNPACK CPU kernels (Debian libxnnpack-dev + libpthreadpool-dev +
# libcpuinfo-dev). With GG_XNNPACK=ON and everything found, gpuguard_lib links
# them and defines GG_HAVE_XNNPACK; otherwise src/engine/xnn.c builds stubs that
# return GG_ENOTIMPL and the engine runs its own kernels.
if(GG_XNNPACK)
  find_path(GG_XNNPACK_INCLUDE_DIR xnnpack.h)
  find_path(GG_PTHREADPOOL_INCLUDE_DIR pthreadpool.h)
  find_library(GG_XNNPACK_LIBRARY NAMES XNNPACK xnnpack)
  find_library(GG_PTHREADPOOL_LIBRARY NAMES pthreadpool)
  find_library(GG_CPUINFO_LIBRARY NAMES cpuinfo)
  if(GG_XNNPACK_INCLUDE_DIR AND GG_PTHREADPOOL_INCLUDE_DIR AND GG_XNNPACK_LIBRARY
     AND GG_PTHREADPOOL_LIBRARY AND GG_CPUINFO_LIBRARY)
    message(STATUS "gpuguard: XNNPACK found (${GG_XNNPACK_LIBRARY}); CPU engine uses it")
    target_include_directories(gpuguard_lib PRIVATE ${GG_XNNPACK_INCLUDE_DIR}
                               ${GG_PTHREADPOOL_INCLUDE_DIR})
    target_link_libraries(gpuguard_lib PUBLIC ${GG_XNNPACK_LIBRARY} ${GG_PTHREADPOOL_LIBRARY}
                          ${GG_CPUINFO_LIBRARY} Threads::Threads m)
    target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_XNNPACK=1)
    set(GG_HAVE_XNNPACK ON)
  else()
    message(STATUS "gpuguard: XNNPACK not found (need xnnpack.h, pthreadpool.h, libXNNPACK, "
                   "libpthreadpool, libcpuinfo: apt-get install libxnnpack-dev "
                   "libpthreadpool-dev libcpuinfo-dev); the CPU engine uses its naive kernels")
    set(GG_HAVE_XNNPACK OFF)
  endif()
else()
  message(STATUS "gpuguard: XNNPACK disabled (-DGG_XNNPACK=OFF); the CPU engine uses its naive kernels")
  set(GG_HAVE_XNNPACK OFF)
endif()
