# The web pages (web/*.html) driven in the system's headless Chromium by
# playwright-core (tests/browser/pages.test.js; docs/web.md). make-y4m turns
# a sample photo into the fake camera's video. Node, Chromium and
# playwright-core are checked when the test runs, not here: a machine without
# them gets a failing test that names scripts/install.sh --test (or a skip
# with GG_BROWSER_SKIP=1), never a silently missing one.
add_executable(make-y4m ${CMAKE_SOURCE_DIR}/tests/browser/make-y4m.c)
target_link_libraries(make-y4m PRIVATE gpuguard_lib)

add_test(NAME test-web-pages
         COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/pages.test.js)
set_tests_properties(test-web-pages PROPERTIES
  TIMEOUT 180
  SKIP_RETURN_CODE 77
  ENVIRONMENT "GG_BIN=$<TARGET_FILE:gpuguard>;GG_MAKE_Y4M=$<TARGET_FILE:make-y4m>;GG_BROWSER_OUT=${CMAKE_BINARY_DIR}")
