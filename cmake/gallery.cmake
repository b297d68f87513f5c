# The face gallery (src/gallery): identities, embeddings and events stored in
# SQLite (apt-get install libsqlite3-dev), behind a storage interface
# (src/gallery/store.h) so another database can be added as one more file.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
file(GLOB _gg_gallery_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/gallery/*.c)
target_sources(gpuguard_lib PRIVATE ${_gg_gallery_src})
target_link_libraries(gpuguard_lib PUBLIC PkgConfig::SQLITE3)
