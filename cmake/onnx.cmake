# ONNX import (src/engine/onnx.c, docs/ONNX.md): the protobuf is read with
# protobuf-c; its C code is generated at build time from Debian's onnx.proto
# (apt-get install libprotobuf-c-dev protobuf-c-compiler libonnx-dev) into the
# build tree, never committed. Optional: without them (or -DGG_ONNX=OFF) the
# build still works and loading an .onnx file answers GG_ENOTIMPL with the
# packages named. GG_HAVE_ONNX and the generated header's folder are PUBLIC
# so tests and fuzz targets that read ONNX protobufs (the node tests' .pb
# tensors) use the same generated code.
option(GG_ONNX "Import ONNX models (needs protobuf-c and onnx.proto; turns itself off if missing)" ON)
if(GG_ONNX)
  pkg_check_modules(PROTOBUF_C IMPORTED_TARGET libprotobuf-c)
  find_program(GG_PROTOC_C NAMES protoc-c)
  find_file(GG_ONNX_PROTO onnx.proto PATHS /usr/include/onnx /usr/local/include/onnx NO_DEFAULT_PATH)
endif()
if(GG_ONNX AND PROTOBUF_C_FOUND AND GG_PROTOC_C AND GG_ONNX_PROTO)
  set(_gg_onnx_gen ${CMAKE_BINARY_DIR}/onnx-gen)
  get_filename_component(_gg_onnx_proto_dir ${GG_ONNX_PROTO} DIRECTORY)
  file(MAKE_DIRECTORY ${_gg_onnx_gen})
  add_custom_command(
    OUTPUT ${_gg_onnx_gen}/onnx.pb-c.c ${_gg_onnx_gen}/onnx.pb-c.h
    COMMAND ${GG_PROTOC_C} --proto_path=${_gg_onnx_proto_dir} --c_out=${_gg_onnx_gen} ${GG_ONNX_PROTO}
    DEPENDS ${GG_ONNX_PROTO}
    COMMENT "protoc-c: generating the ONNX protobuf reader from ${GG_ONNX_PROTO}")
  # Generated code: compiled without the project's warning flags.
  add_library(gg_onnx_proto STATIC ${_gg_onnx_gen}/onnx.pb-c.c)
  set_target_properties(gg_onnx_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(gg_onnx_proto PRIVATE -w)
  target_include_directories(gg_onnx_proto PUBLIC ${_gg_onnx_gen})
  target_link_libraries(gg_onnx_proto PUBLIC PkgConfig::PROTOBUF_C)
  target_link_libraries(gpuguard_lib PUBLIC gg_onnx_proto)
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_ONNX=1)
  message(STATUS "gpuguard: ONNX import with protobuf-c ${PROTOBUF_C_VERSION} (${GG_ONNX_PROTO})")
else()
  message(STATUS "gpuguard: ONNX import off (GG_ONNX=${GG_ONNX}; needs libprotobuf-c-dev, protobuf-c-compiler, libonnx-dev)")
endif()
