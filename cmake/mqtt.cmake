# Recognition events over MQTT (src/server/app-events.c, docs/mqtt.md) with
# libmosquitto (apt-get install libmosquitto-dev). Optional: without it (or
# with -DGG_MQTT=OFF) the build still works and `gpuguard serve --mqtt URL`
# refuses to start with a message that names the package. The library and
# GG_HAVE_MOSQUITTO are PUBLIC so tests that link gpuguard_lib
# (tests/test-mqtt.c subscribes with libmosquitto) see the same choice.
option(GG_MQTT "Publish recognition events over MQTT (needs libmosquitto; turns itself off if missing)" ON)
if(GG_MQTT)
  pkg_check_modules(MOSQUITTO IMPORTED_TARGET libmosquitto)
endif()
if(GG_MQTT AND MOSQUITTO_FOUND)
  target_link_libraries(gpuguard_lib PUBLIC PkgConfig::MOSQUITTO)
  target_compile_definitions(gpuguard_lib PUBLIC GG_HAVE_MOSQUITTO=1)
  message(STATUS "gpuguard: MQTT events with libmosquitto ${MOSQUITTO_VERSION}")
else()
  message(STATUS "gpuguard: MQTT events off (GG_MQTT=${GG_MQTT}; libmosquitto: apt-get install libmosquitto-dev); serve --mqtt will refuse to start")
endif()
