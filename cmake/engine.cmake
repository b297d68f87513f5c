# Engine (src/engine) and image input (src/vision): pthreadpool threads the
# naive kernels; libturbojpeg and libpng decode images. Each is optional:
# without it the matching code returns GG_ENOTIMPL or runs single-threaded.
find_path(GG_ENG_PTHREADPOOL_INCLUDE pthreadpool.h)
find_library(GG_ENG_PTHREADPOOL_LIB NAMES pthreadpool)
if(GG_ENG_PTHREADPOOL_INCLUDE AND GG_ENG_PTHREADPOOL_LIB)
  target_include_directories(gpuguard_lib PRIVATE ${GG_ENG_PTHREADPOOL_INCLUDE})
  target_link_libraries(gpuguard_lib PUBLIC ${GG_ENG_PTHREADPOOL_LIB})
  target_compile_definitions(gpuguard_lib PRIVATE GG_HAVE_PTHREADPOOL=1)
else()
  message(STATUS "gpuguard: pthreadpool not found; naive engine kernels run on one thread "
                 "(apt-get install libpthreadpool-dev)")
endif()

pkg_check_modules(TURBOJPEG IMPORTED_TARGET libturbojpeg)
if(TURBOJPEG_FOUND)
  target_link_libraries(gpuguard_lib PUBLIC PkgConfig::TURBOJPEG)
  target_compile_definitions(gpuguard_lib PRIVATE GG_HAVE_TURBOJPEG=1)
else()
  message(STATUS "gpuguard: libturbojpeg not found; JPEG input disabled (apt-get install libturbojpeg0-dev)")
endif()
pkg_check_modules(LIBPNG IMPORTED_TARGET libpng)
if(LIBPNG_FOUND)
  target_link_libraries(gpuguard_lib PUBLIC PkgConfig::LIBPNG)
  target_compile_definitions(gpuguard_lib PRIVATE GG_HAVE_PNG=1)
else()
  message(STATUS "gpuguard: libpng not found; PNG input disabled (apt-get install libpng-dev)")
endif()

# libFuzzer targets for the model readers: configure with
#   CC=clang cmake -S . -B build-fuzz -DGG_FUZZ=ON
if(GG_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "gpuguard: GG_FUZZ needs clang (CC=clang); fuzz targets not built")
  else()
    target_compile_options(gpuguard_lib PRIVATE -fsanitize=fuzzer-no-link,address
                           -fno-omit-frame-pointer)
    target_link_options(gpuguard_lib PUBLIC -fsanitize=address)
    file(GLOB _gg_fuzz CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz-*.c)
    foreach(f ${_gg_fuzz})
      get_filename_component(name ${f} NAME_WE)
      add_executable(${name} ${f})
      target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
      target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address -fno-omit-frame-pointer)
      target_link_options(${name} PRIVATE -fsanitize=fuzzer,address)
      target_link_libraries(${name} PRIVATE gpuguard_lib)
    endforeach()
  endif()
endif()

# test-engine-hotpath counts every malloc/calloc/realloc made while a
# prepared session runs (link-time wrapping), to prove the run allocates
# nothing. Test targets are defined after this file, hence the deferral.
function(_gg_engine_hotpath_wrap)
  if(TARGET test-engine-hotpath)
    target_link_options(test-engine-hotpath PRIVATE
      -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc
      -Wl,--wrap=posix_memalign)
  endif()
endfunction()
cmake_language(DEFER CALL _gg_engine_hotpath_wrap)
