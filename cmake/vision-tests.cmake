# test-image writes CMYK and YCCK JPEGs with libjpeg's own compressor (the
# TurboJPEG API can only write YCCK), so it links libjpeg when present;
# without it those cases are skipped. Test targets are defined after this
# file, hence the deferral.
pkg_check_modules(GG_TEST_LIBJPEG IMPORTED_TARGET libjpeg)
function(_gg_vision_test_libjpeg)
  if(TARGET test-image AND GG_TEST_LIBJPEG_FOUND)
    target_link_libraries(test-image PRIVATE PkgConfig::GG_TEST_LIBJPEG)
    target_compile_definitions(test-image PRIVATE GG_TEST_HAVE_LIBJPEG=1)
  endif()
endfunction()
cmake_language(DEFER CALL _gg_vision_test_libjpeg)
